"""DDP through torch's launcher: spawned by dlbox, by two separate node launches, and by torchrun itself.

Each way is run five times: a job whose training succeeded must exit 0 on every rank every time (one of
four torchrun runs used to end with SIGABRT on rank 1 at exit, after both epochs had finished)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from tests.conftest import cli_env
from tests.engine.conftest import JOB, REPEATS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def test_spawned_by_dlbox_exits_0_every_time_with_identical_weights(spawned_runs):
    assert [rc for rc, _ in spawned_runs] == [0] * REPEATS, [r for rc, r in spawned_runs if rc]
    for _, report in spawned_runs:
        (row,) = report["results"]
        assert row["processes"] == 2 and report["identical_weights"] is True
    # --deterministic on CPU: the same weights, run after run.
    assert len({r["results"][0]["weights_digest"] for _, r in spawned_runs}) == 1


def test_two_processes_learn(cli, tmp_path):
    res = cli("env", "test", "--framework", "torch", "--distributed", "2", "--runs-dir", tmp_path, "--json")
    assert res.returncode == 0, res.stderr
    report = res.json()
    (row,) = report["results"]
    assert row["processes"] == 2 and report["identical_weights"] is True
    assert row["accuracy"] >= 0.95


def test_two_node_launches_form_one_job_and_exit_0_every_time(tmp_path):
    for attempt in range(REPEATS):
        port = _free_port()
        common = [*JOB, "--epochs", "1", "--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port", str(port),
                  "--runs-dir", str(tmp_path / str(attempt))]  # fmt: skip
        procs = [
            subprocess.Popen([sys.executable, "-m", "dlbox", *common, "--node-rank", str(rank)], env=cli_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
            for rank in (1, 0)
        ]
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], (attempt, [o[1][-2000:] for o in outs])
        node1, node0 = (json.loads(o[0]) for o in outs)
        assert node0["results"][0]["processes"] == 2 and node0["identical_weights"] is True
        assert node1["results"] is None and node1["node_rank"] == 1


def test_started_by_torchrun_directly_exits_0_every_time(tmp_path):
    for attempt in range(REPEATS):
        runs = tmp_path / str(attempt)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "--log-dir", str(tmp_path / f"elastic-{attempt}"),  # not a /tmp/torchelastic_* folder left behind
               "-m", "dlbox", *JOB, "--epochs", "1", "--runs-dir", str(runs)]  # fmt: skip
        proc = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (attempt, proc.stderr[-3000:])
        report = json.loads(proc.stdout)  # only rank 0 prints
        assert report["results"][0]["processes"] == 2 and report["identical_weights"] is True
        assert len(list((runs / "env-test").iterdir())) == 1  # one run directory, written by rank 0
