"""notebooks/detect.ipynb runs top to bottom in a real Jupyter kernel and shows drawn detections."""

from __future__ import annotations

import os

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT


def test_detect_notebook_executes_and_draws_detections(tmp_path, monkeypatch):
    nb = nbformat.read(ROOT / "notebooks" / "detect.ipynb", as_version=4)
    # The kernel is a child process: it must see this checkout and use this interpreter.
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("DLBOX_PROGRESS", "0")
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "val AP50" in text and "AP50" in text and "'ok': True" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # the three test images with their boxes
