"""Fault tolerance, the elastic way: a worker lost mid-epoch.

With ``--max-restarts 1`` elastic launch restarts the group, which resumes from the newest mid-epoch
checkpoint (``--save-every``) in the same run directory and ends with the uninterrupted run's weights, bit
for bit. Without a restart budget the job ends promptly with one line: which rank died and how, the newest
checkpoint, and the command that continues it. A peer that hangs is caught by ``--dist-timeout``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.conftest import cli_env
from tests.engine.conftest import JOB

SAVE_EVERY = ["--save-every", "10"]  # ~50 steps an epoch per rank: the kill lands in epoch 1


def _workers(pid: int) -> list[psutil.Process]:
    """The launcher's worker processes, in rank order (elastic spawns local rank 0 first)."""
    kids = [c for c in psutil.Process(pid).children() if "spawn_main" in " ".join(c.cmdline())]
    return sorted(kids, key=lambda c: (c.create_time(), c.pid))


def _start_and_hit(runs: Path, *extra: str, sig=signal.SIGKILL):
    """Start a 2-process job and send ``sig`` to rank 1 once the first mid-epoch checkpoint exists."""
    cmd = [sys.executable, "-m", "dlbox", *JOB, "--nproc-per-node", "2", "--runs-dir", str(runs), *SAVE_EVERY, *extra]
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if list(runs.glob("env-test/*/checkpoints/last.pt")):
            workers = _workers(proc.pid)
            if len(workers) == 2:
                workers[1].send_signal(sig)
                return proc, workers, time.monotonic()
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"the job ended or never checkpointed: {proc.communicate()[1][-2000:]}")


def test_a_killed_worker_is_restarted_and_the_run_ends_with_the_uninterrupted_weights(spawned_runs, tmp_path):
    proc, _, _ = _start_and_hit(tmp_path, "--max-restarts", "1")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "restart 1: resuming" in err
    (row,) = json.loads(out)["results"]
    assert len(list((tmp_path / "env-test").iterdir())) == 1  # the same run directory, continued
    (rc, reference), *_ = spawned_runs
    assert rc == 0, reference
    assert row["weights_digest"] == reference["results"][0]["weights_digest"]
    # The epoch metrics too: each rank's partial sums of the interrupted epoch came back with it.
    assert _metrics(row["run_dir"]) == _metrics(reference["results"][0]["run_dir"])


def _metrics(run_dir: str) -> list[dict]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(ln) for ln in lines]
    keep = ("epoch", "step", "lr", "train/", "val/")
    return [{k: v for k, v in r.items() if k.startswith(keep)} for r in records if "epoch" in r]


def test_without_restarts_a_killed_worker_ends_the_job_with_one_line(tmp_path):
    proc, _, hit = _start_and_hit(tmp_path)
    out, err = proc.communicate(timeout=120)
    assert time.monotonic() - hit < 60
    assert proc.returncode == 1 and out == ""
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err[-3000:]
    (line,) = errors
    run_dir = next((tmp_path / "env-test").iterdir())
    assert "rank 1" in line and "SIGKILL" in line, line
    assert f"{run_dir}/checkpoints/last.pt" in line and "mid-epoch" in line, line
    assert f"continue with: dlbox env test --resume {run_dir}" in line, line


def test_a_hung_peer_is_caught_by_the_dist_timeout(tmp_path):
    proc, (rank0, rank1), hit = _start_and_hit(tmp_path, "--dist-timeout", "3", sig=signal.SIGSTOP)
    try:
        # rank 0 waits in a collective for its stopped peer, gives up after --dist-timeout and exits.
        rank0.wait(timeout=60)
        waited = time.monotonic() - hit
        assert 2 <= waited < 40, waited
    finally:
        rank1.send_signal(signal.SIGKILL)  # elastic would wait 30 s for the stopped process to take SIGTERM
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert "stopped answering for 3 s (--dist-timeout)" in line or "SIGKILL" in line, line
