"""notebooks/word2vec.ipynb runs top to bottom in a real Jupyter kernel: corpus, training, queries."""

from __future__ import annotations

import os
import re
import sys

from tests.conftest import run_notebook


def test_word2vec_notebook_trains_on_the_enwiki_dump_and_queries_similar_words(tmp_path, monkeypatch):
    outputs = run_notebook("word2vec.ipynb", tmp_path, monkeypatch,
                           prepend=["import sys; print('kernel python:', sys.executable)"])
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
