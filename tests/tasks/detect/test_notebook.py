"""notebooks/detect.ipynb runs top to bottom in a real Jupyter kernel and shows drawn detections."""

from __future__ import annotations

from tests.conftest import run_notebook


def test_detect_notebook_executes_and_draws_detections(tmp_path, monkeypatch):
    outputs = run_notebook("detect.ipynb", tmp_path, monkeypatch)
    text = "".join(o.get("text", "") for o in outputs)
    assert "val AP50" in text and "AP50" in text and "'ok': True" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # the three test images with their boxes
