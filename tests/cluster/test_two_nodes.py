"""Two nodes with two addresses (network namespaces joined by a veth pair): a 2-node job, one process per
node, rendezvous at the first node's address. dlbox picks the interface that reaches the master by itself
(gloo would otherwise bind to the host name's 127.0.0.1); the weights equal the single-machine run's."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from tests.cluster import netns
from tests.cluster.conftest import JOB, env, weights_digest
from tests.conftest import ROOT, all_exit_0


@pytest.fixture
def nodes():
    why = netns.unavailable()
    if why:
        pytest.skip(f"network namespaces cannot be created here: {why}")
    pair = netns.NetnsPair()
    try:
        yield pair.create()
    finally:
        pair.delete()


def test_two_namespaces_train_one_job_with_the_single_machine_weights(nodes, reference, tmp_path):
    master, port = netns.ADDRS[0], 29400
    procs = []
    for rank in (1, 0):
        runs = tmp_path / f"node{rank}"
        cmd = [*nodes.prefix(rank), sys.executable, "-m", "dlbox", *JOB, "--nnodes", "2", "--node-rank", str(rank),
               "--master-addr", master, "--master-port", str(port), "--runs-dir", str(runs), "--dist-timeout", "60"]  # fmt: skip
        procs.append(subprocess.Popen(cmd, env=env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))  # fmt: skip
    outs = all_exit_0(procs, 2, tail=2500)
    (_, err1), (out0, err0) = outs
    # each node found its own address on dlb0, the interface toward the master
    assert f"interface {netns.IFACE} ({netns.ADDRS[1]}) toward the master {master}:{port}" in err1, err1[-2000:]
    assert f"interface {netns.IFACE} ({netns.ADDRS[0]})" in err0, err0[-2000:]
    (row,) = json.loads(out0)["results"]
    assert row["processes"] == 2
    assert weights_digest(row["run_dir"]) == reference["digest"]


def test_an_unreachable_rendezvous_is_one_line_naming_address_and_port(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, "-m", "dlbox", *JOB, "--nnodes", "2", "--node-rank", "1",
                           "--master-addr", "127.0.0.1", "--master-port", str(port), "--dist-timeout", "3",
                           "--runs-dir", str(tmp_path)], env=env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode != 0 and proc.stdout == ""
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"cannot reach the rendezvous at 127.0.0.1:{port} within 3 s (--dist-timeout)" in errors[0], errors[0]
