"""notebooks/classify.ipynb runs top to bottom in a real Jupyter kernel."""

from __future__ import annotations

import os

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT


def test_classify_notebook_executes(tmp_path, monkeypatch):
    nb = nbformat.read(ROOT / "notebooks" / "classify.ipynb", as_version=4)
    # The kernel is a child process: it must see this checkout and use this interpreter.
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("DLBOX_PROGRESS", "0")
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("precision@1" in o.get("text", "") for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs)  # predictions shown with their images
