"""notebooks/word2vec.ipynb runs top to bottom in a real Jupyter kernel: corpus, training, queries."""

from __future__ import annotations

import os
import re
import sys

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT


def test_word2vec_notebook_trains_on_the_enwiki_dump_and_queries_similar_words(tmp_path, monkeypatch):
    nb = nbformat.read(ROOT / "notebooks" / "word2vec.ipynb", as_version=4)
    # The kernel is a child process: it must see this checkout and run this interpreter.
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("DLBOX_PROGRESS", "0")
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys; print('kernel python:', sys.executable)"))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    kernel_python = re.search(r"kernel python: (.+)", text).group(1).strip()
    assert os.path.realpath(kernel_python) == os.path.realpath(sys.executable)
    assert "106 articles" in text
    spearman = float(re.search(r"Spearman (-?[\d.]+)", text).group(1))
    assert spearman > 0.15
    for word in ("war", "music", "philosophy"):
        assert f"nearest to {word}:" in text
    assert "did you mean 'philosophy'" in text
    assert re.search(r"nearest to 麒麟:\n\s+[\d.]+\s+凤凰", text)
