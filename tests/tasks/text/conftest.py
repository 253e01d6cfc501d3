"""Shared, session-scoped: gensim's real enwiki dump, a generated Chinese dump, their corpora and models.

Most commands run in this process through ``dlbox.cli.main`` (same parser, same error handling, same
output as the ``dlbox`` command, without the interpreter start-up per call); the tests that need a separate
process (signals, hash seeds) use ``tests.conftest.run_cli``.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from tests.conftest import Result

ENWIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
# Small but real word2vec settings that give a clearly positive wordsim353 Spearman on the enwiki test dump
# (0.27-0.33 over seeds), in a few seconds on one thread.
EN_W2V = ["--dim", "32", "--window", "10", "--min-count", "5", "--epochs", "10", "--workers", "1", "--seed", "1"]
ZH_W2V = ["--dim", "24", "--window", "3", "--min-count", "2", "--epochs", "20", "--workers", "1", "--seed", "1"]
ZH_ARTICLES = 400


def run(*args) -> Result:
    """``dlbox ARGS`` in this process: exit code, stdout, stderr."""
    from dlbox.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse errors
            code = e.code if isinstance(e.code, int) else 2
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def enwiki_dump() -> Path:
    from gensim.test.utils import datapath

    return Path(datapath(ENWIKI))


@pytest.fixture(scope="session")
def en_corpus(enwiki_dump, tmp_path_factory) -> dict:
    """`dlbox text prepare` on the enwiki dump, two workers and small chunks (so order matters)."""
    out = tmp_path_factory.mktemp("en") / "corpus.txt"
    res = run("text", "prepare", enwiki_dump, "--out", out, "--workers", "2", "--chunk-size", "8", "--json")
    assert res.returncode == 0, res.stderr
    return {"path": out, "result": res.json()}


@pytest.fixture(scope="session")
def en_model(en_corpus, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("en-model") / "w2v"
    res = run("text", "w2v", "train", en_corpus["path"], "--out", out, *EN_W2V, "--format", "text", "--json")
    assert res.returncode == 0, res.stderr
    return {"path": out, "result": res.json(), "stderr": res.stderr}


@pytest.fixture(scope="session")
def zh_dump(tmp_path_factory) -> Path:
    from dlbox.tasks.text.fakewiki import write_dump, zh_pages

    return write_dump(tmp_path_factory.mktemp("zh") / "zhwiki-test.xml.bz2", zh_pages(ZH_ARTICLES, seed=0))


@pytest.fixture(scope="session")
def zh_corpus(zh_dump) -> dict:
    out = zh_dump.with_name("corpus.txt")
    res = run("text", "prepare", zh_dump, "--out", out, "--workers", "2", "--chunk-size", "16", "--json")
    assert res.returncode == 0, res.stderr
    return {"path": out, "result": res.json(), "lines": out.read_text(encoding="utf-8").splitlines()}


@pytest.fixture(scope="session")
def zh_model(zh_corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zh-model") / "w2v"
    res = run("text", "w2v", "train", zh_corpus["path"], "--out", out, *ZH_W2V, "--json")
    assert res.returncode == 0, res.stderr
    return out
