"""notebooks/classify.ipynb runs top to bottom in a real Jupyter kernel."""

from __future__ import annotations

from tests.conftest import run_notebook


def test_classify_notebook_executes(tmp_path, monkeypatch):
    outputs = run_notebook("classify.ipynb", tmp_path, monkeypatch)
    assert any("precision@1" in o.get("text", "") for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs)  # predictions shown with their images
