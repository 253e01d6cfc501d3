"""Fixtures of the cluster tests: the reference run, a one-node SLURM cluster, network namespaces.

Every fixture stops what it started: the SLURM daemons by their pid files, the namespaces and their
/etc/netns entries deleted. Every wait has a timeout."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, cli_env

# The training of every cluster test: the env integrity LeNet on the embedded digits, 2 short epochs.
# One intra-op thread per process everywhere: a thread count is part of what makes CPU results bit-identical.
JOB = ["env", "test", "--framework", "torch", "--epochs", "2", "--batch-size", "16", "--deterministic",
       "--threads", "1", "--monitor-interval", "0", "--json"]  # fmt: skip
TASK_DIR = "env-test"  # runs/<task>/ of that training


def env(**extra: str) -> dict[str, str]:
    """The CLI's test environment, with `dlbox` on PATH (job scripts call it by name)."""
    base = cli_env()
    base["PATH"] = f"{Path(sys.executable).parent}:{base.get('PATH', '')}"
    for k in ("MASTER_ADDR", "MASTER_PORT", "GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):
        base.pop(k, None)  # (cli_env drops SLURM_* and PET_*)
    return {**base, **extra}


def weights_digest(run_dir: str | Path) -> str:
    """sha256 of the model weights in a run's last checkpoint (the same bytes as trainer.state_digest)."""
    state = torch.load(Path(run_dir) / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)["model"]
    h = hashlib.sha256()
    for key, t in sorted(state.items()):
        h.update(key.encode())
        h.update(t.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def checkpoint_position(run_dir: str | Path) -> tuple[int, int]:
    st = torch.load(Path(run_dir) / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    return st["epoch"], st["batch_in_epoch"]


def wait_for(path_glob: tuple[Path, str], procs, timeout: float) -> Path:
    """The first file matching ``glob`` under ``base`` once it exists; fails if a process ends or time runs out."""
    base, pattern = path_glob
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(base.glob(pattern))
        if found:
            return found[0]
        ended = [p for p in procs if p.poll() is not None]
        if ended:
            raise AssertionError(f"a process ended before {pattern} appeared: "
                                 f"{[(p.returncode, p.communicate()[1][-1500:]) for p in ended]}")  # fmt: skip
        time.sleep(0.05)
    raise AssertionError(f"{base}/{pattern} did not appear within {timeout} s")


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> dict:
    """The 2-process single-machine run every cluster run must equal: its report and weights digest."""
    runs = tmp_path_factory.mktemp("reference")
    proc = subprocess.run([sys.executable, "-m", "dlbox", *JOB, "--nproc-per-node", "2", "--runs-dir", str(runs)],
                          env=env(), capture_output=True, text=True, timeout=300, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads(proc.stdout)["results"]
    return {"row": row, "digest": weights_digest(row["run_dir"]), "run_dir": row["run_dir"]}


@pytest.fixture(scope="session")
def slurm():
    """A one-node SLURM cluster (munged, slurmctld, slurmd) for the session; stopped at its end."""
    from tests.cluster.slurm import SlurmCluster, missing_tools

    if os.geteuid() != 0:
        pytest.skip("the SLURM daemons need root (CI runs as root)")
    missing = missing_tools()
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing): make slurm (apt-get install slurm-wlm munge)")
    cluster = SlurmCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()
