"""The layers of docs/architecture.md, enforced: `lint-imports` with the contracts in pyproject.toml (layers,
tasks independent of each other, nothing below the tools importing bench, no import cycles)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports is missing: install the test extra (pip install -e '.[test]')")
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = proc.stdout[proc.stdout.find("Contracts") :] if "Contracts" in proc.stdout else proc.stdout
    assert proc.returncode == 0, report + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout and " kept, 0 broken" in proc.stdout
