"""Jobs shared by the distributed and elastic tests."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import cli_env

REPEATS = 5
# Short jobs: what is tested is how they end. The same options serve as the reference of the elastic tests.
JOB = ["env", "test", "--framework", "torch", "--epochs", "2", "--batch-size", "16", "--deterministic", "--json"]


@pytest.fixture(scope="session")
def spawned_runs(tmp_path_factory):
    """Five 2-process jobs spawned by dlbox: (return code, report or stderr) each."""
    out = []
    for i in range(REPEATS):
        runs = tmp_path_factory.mktemp(f"spawned{i}")
        proc = subprocess.run([sys.executable, "-m", "dlbox", *JOB, "--nproc-per-node", "2", "--runs-dir", str(runs)],
                              env=cli_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
        out.append((proc.returncode, json.loads(proc.stdout) if proc.returncode == 0 else proc.stderr[-2000:]))
    return out
