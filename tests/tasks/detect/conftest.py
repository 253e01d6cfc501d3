"""Shared, session-scoped: the shapes-det sample and one tinydet trained on it (reused by many tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

# The acceptance configuration: from scratch, CPU, one thread (robust on a shared 2-core machine).
TRAIN = ["--epochs", "8", "--img-size", "160", "--batch-size", "16", "--threads", "1", "--device", "cpu", "--channels-last"]


@pytest.fixture(scope="session")
def shapes_det(tmp_path_factory) -> Path:
    from dlbox.data.shapes_det import write_shapes_det

    out = tmp_path_factory.mktemp("det") / "shapes-det"
    write_shapes_det(out, seed=0)  # 500 images: 400 train, 50 val, 50 test
    return out


@pytest.fixture(scope="session")
def tinydet_run(shapes_det, tmp_path_factory) -> dict:
    """`dlbox detect train --json` on the sample; the run directory and the reported result."""
    runs = tmp_path_factory.mktemp("runs")
    res = run_cli("detect", "train", "--data", shapes_det, *TRAIN, "--runs-dir", runs, "--name", "tiny", "--json", timeout=900)
    assert res.returncode == 0, res.stderr
    return {"run_dir": Path(res.json()["run_dir"]), "result": res.json(), "stderr": res.stderr}


@pytest.fixture(scope="session")
def tinydet_onnx(tinydet_run) -> dict:
    res = run_cli("detect", "export", tinydet_run["run_dir"], "--format", "onnx", "--json")
    assert res.returncode == 0, res.stderr
    return res.json()


@pytest.fixture(scope="session")
def tiny_det(tmp_path_factory) -> Path:
    """20 images (16 train, 2 val, 2 test): for the slow torchvision models and the resume test."""
    from dlbox.data.shapes_det import write_shapes_det

    out = tmp_path_factory.mktemp("tiny") / "tiny-det"
    write_shapes_det(out, seed=5, n_images=20)
    return out
