"""notebooks/face.ipynb runs top to bottom in a real Jupyter kernel."""

from __future__ import annotations

from tests.conftest import run_notebook


def test_face_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBOX_HOME", str(tmp_path / "home"))
    # One thread, as the other face tests: on the shared 2-core CI machine spinning OpenMP threads cost more.
    outputs = run_notebook("face.ipynb", tmp_path, monkeypatch, prepend=["import torch; torch.set_num_threads(1)"])
    text = "".join(o.get("text", "") for o in outputs)
    assert "1 face(s)" in text and "held-out verification accuracy" in text and "distances" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # the detection and the heat map
