"""DDP through torch's launcher: spawned by dlbox, by two separate node launches, and by torchrun itself."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.conftest import cli_env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_end_with_identical_weights_and_learn(cli, tmp_path):
    res = cli("env", "test", "--framework", "torch", "--distributed", "2", "--runs-dir", tmp_path, "--json")
    assert res.returncode == 0, res.stderr
    report = res.json()
    (row,) = report["results"]
    assert row["processes"] == 2
    assert report["identical_weights"] is True
    assert row["accuracy"] >= 0.95


def test_two_node_launches_form_one_job(tmp_path):
    port = _free_port()
    common = ["env", "test", "--framework", "torch", "--epochs", "2", "--nnodes", "2",
              "--master-addr", "127.0.0.1", "--master-port", str(port), "--runs-dir", str(tmp_path), "--json"]  # fmt: skip
    procs = [
        subprocess.Popen([sys.executable, "-m", "dlbox", *common, "--node-rank", str(rank)], env=cli_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for rank in (1, 0)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    import json

    node1, node0 = (json.loads(o[0]) for o in outs)
    assert node0["results"][0]["processes"] == 2 and node0["identical_weights"] is True
    assert node1["results"] is None and node1["node_rank"] == 1


def test_started_by_torchrun_directly(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "dlbox", "env", "test", "--framework", "torch", "--epochs", "2", "--runs-dir", str(tmp_path), "--json"]  # fmt: skip
    proc = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    report = json.loads(proc.stdout)  # only rank 0 prints
    assert report["results"][0]["processes"] == 2 and report["identical_weights"] is True
    assert len(list((tmp_path / "env-test").iterdir())) == 1  # one run directory, written by rank 0
