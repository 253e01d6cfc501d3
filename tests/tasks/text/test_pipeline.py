"""wiki2txt / convert / segment / prepare: article selection, parallel output equal to a serial reference,
the Chinese corpus clean, progress, and resume after an interruption."""

from __future__ import annotations

import bz2
import json
import re
import signal
import subprocess
import sys
import time

from gensim.corpora.wikicorpus import extract_pages

from dlbox.tasks.text import fakewiki
from dlbox.tasks.text.steps import Processor, Steps
from dlbox.tasks.text.tokens import converter
from tests.conftest import cli_env, fill_disk_after, run_main
from tests.tasks.text.conftest import run


def test_prepare_on_the_enwiki_dump_equals_a_plain_serial_reference(enwiki_dump, en_corpus):
    # The reference: gensim's own page reader, one article after the other in this process.
    proc = Processor(Steps(markup=True, lang="en"))
    expected = []
    for _title, text, _pageid in extract_pages(bz2.open(enwiki_dump), filter_namespaces=("0",)):
        if text.strip() and not re.match(r"\s*#redirect", text, re.IGNORECASE):
            expected.extend(proc.lines(text)[0])
    got = en_corpus["path"].read_text(encoding="utf-8").splitlines()
    assert len(expected) == 106
    assert got == expected
    assert en_corpus["result"]["workers"] == 2 and en_corpus["result"]["tokens"] == sum(len(x.split()) for x in got)


def test_only_articles_are_kept_redirects_and_other_namespaces_are_counted_and_dropped(en_corpus, zh_corpus):
    r = en_corpus["result"]
    assert (r["pages"], r["articles"], r["redirects"], r["other_namespaces"]) == (206, 106, 99, 1)
    z = zh_corpus["result"]
    assert (z["pages"], z["articles"], z["redirects"], z["other_namespaces"]) == (402, 400, 1, 1)


def test_zh_prepare_gives_simplified_segmented_markup_free_text_without_english_or_digits(zh_corpus):
    lines = zh_corpus["lines"]
    assert zh_corpus["result"]["lang"] == "zh" and zh_corpus["result"]["opencc"] == "t2s"
    assert len(lines) == 400
    text = "\n".join(lines)
    t2s = converter("t2s")
    assert t2s(text) == text  # simplified: OpenCC t2s has nothing left to change
    assert "凤凰" in text and "鳳凰" not in text
    assert not re.search(r"[A-Za-z0-9０-９]", text)  # iPhone 5, 2012, Python 3.12, 200px, wikitable: gone
    assert not re.search(r"[\[\]{}|=<>'*#!&;:\"，。！？；]", text)  # markup and punctuation
    tokens = [t for line in lines for t in line.split(" ")]
    assert all(tokens) and all(re.fullmatch(r"[\u4e00-\u9fff]+", t) for t in tokens)
    assert sum(len(t) > 1 for t in tokens) > 0.8 * len(tokens)  # words, not characters
    for word in fakewiki.MUST_VANISH:  # template arguments, refs, comments, link targets, redirect, Template:
        assert word not in text, word
    for word in fakewiki.MUST_KEEP:  # link labels, file captions, table cells, external-link labels
        assert word in tokens, word


def test_wiki2txt_writes_plain_text_one_sentence_a_line(zh_dump, tmp_path):
    out = tmp_path / "zh.txt"
    res = run("text", "wiki2txt", zh_dump, "--out", out, "--per-line", "sentence", "--workers", "2", "--json")
    assert res.returncode == 0, res.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert res.json()["articles"] == 400 and len(lines) == res.json()["lines"] > 10 * 400
    assert "鳳凰" in "".join(lines)  # no conversion in wiki2txt
    assert sum(line.endswith(("。", "！", "？", "；")) for line in lines) > 0.5 * len(lines)
    assert not any(ch in "".join(lines) for ch in "[]{}|=<>'")


def test_convert_maps_each_line_and_another_opencc_config_goes_back(tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("鳳凰與麒麟\n\n漢語 Chinese 123\n", encoding="utf-8")
    res = run("text", "convert", src, "--out", tmp_path / "s.txt", "--t2s", "--workers", "1")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "s.txt").read_text(encoding="utf-8") == "凤凰与麒麟\n\n汉语 Chinese 123\n"
    res = run("text", "convert", tmp_path / "s.txt", "--out", tmp_path / "back.txt", "--opencc", "s2t", "--json")
    assert res.returncode == 0 and res.json()["lines"] == 3
    assert (tmp_path / "back.txt").read_text(encoding="utf-8") == src.read_text(encoding="utf-8")


def test_segment_splits_lines_into_words_for_zh_and_en(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("我们研究人工智能芯片的设计，2024年。\nThe Quick brown fox, 42 times!\n", encoding="utf-8")
    res = run("text", "segment", src, "--out", tmp_path / "zh.txt", "--lang", "zh", "--workers", "2")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "zh.txt").read_text(encoding="utf-8") == "我们 研究 人工智能 芯片 的 设计 年\n"
    res = run("text", "segment", src, "--out", tmp_path / "en.txt", "--lang", "en", "--keep-digits")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "en.txt").read_text(encoding="utf-8").splitlines()[1] == "the quick brown fox 42 times"


def test_progress_reports_articles_and_input_megabytes_per_second(zh_dump, tmp_path, monkeypatch):
    monkeypatch.setenv("DLBOX_PROGRESS", "1")  # a bar even though stderr is not a terminal
    res = run("text", "wiki2txt", zh_dump, "--out", tmp_path / "o.txt", "--workers", "2")
    assert res.returncode == 0, res.stderr
    assert re.search(r"[\d.]+\s*[kM]?B/s", res.stderr) and "400 articles" in res.stderr
    assert res.stdout.startswith("wrote ") and "articles/s" in res.stdout


def test_an_interrupted_prepare_resumes_from_its_checkpoint_and_equals_an_uninterrupted_run(tmp_path):
    dump = fakewiki.write_dump(tmp_path / "big.xml.bz2", fakewiki.zh_pages(1500, seed=5))
    reference = tmp_path / "ref.txt"
    assert run("text", "prepare", dump, "--out", reference, "--workers", "1").returncode == 0
    out = tmp_path / "cut.txt"
    partial, ckpt = tmp_path / "cut.txt.partial", tmp_path / "cut.txt.partial.json"
    cmd = [sys.executable, "-m", "dlbox", "text", "prepare", str(dump), "--out", str(out), "--workers", "2",
           "--chunk-size", "8"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (partial.exists() and partial.stat().st_size > 0):  # the first chunks are on disk
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to continue" in err and "Traceback" not in err
    assert not out.exists()  # no half corpus under the final name
    state = json.loads(ckpt.read_text())
    assert 0 < state["items"] < 1500 and partial.stat().st_size >= state["bytes"]

    res = run("text", "prepare", dump, "--out", out, "--workers", "2", "--chunk-size", "8", "--json")
    assert res.returncode == 0, res.stderr
    assert res.json()["resumed_after"] == state["items"] and res.json()["articles"] == 1500
    assert out.read_bytes() == reference.read_bytes()
    assert not partial.exists() and not ckpt.exists()


def test_a_checkpoint_from_other_options_is_not_used(zh_dump, tmp_path):
    out = tmp_path / "c.txt"
    (tmp_path / "c.txt.partial").write_text("garbage from another run\n")
    stale = {"version": 1, "key": {"task": "prepare", "other": True}, "items": 100, "bytes": 10, "lines": 1, "tokens": 1}
    (tmp_path / "c.txt.partial.json").write_text(json.dumps(stale))
    res = run("text", "prepare", zh_dump, "--out", out, "--workers", "1", "--json")
    assert res.returncode == 0, res.stderr
    assert res.json()["resumed_after"] == 0 and "starting over" in res.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 400 and "garbage" not in out.read_text(encoding="utf-8")


def test_a_full_disk_is_one_line_and_the_text_written_so_far_is_kept(tmp_path, small_disk, monkeypatch, capsys):
    """The output's disk fills up: one line naming the file and the free space, not a traceback."""
    src = tmp_path / "t.txt"
    src.write_text("鳳凰與麒麟\n" * 40_000, encoding="utf-8")  # ~640 KB in, as much out
    disk = small_disk("256k")
    args = ("text", "convert", src, "--out", (disk or tmp_path) / "s.txt", "--t2s", "--workers", "1")
    if disk is None:  # no tmpfs here: the same OSError, raised at the write, in this process
        from dlbox.tasks.text import pipeline

        fill_disk_after(monkeypatch, pipeline)
        res = run_main(capsys, *args)
    else:
        res = run(*args)
    assert res.returncode == 1, res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert "Traceback" not in res.stderr
    assert "No space left on device" in line and "free there" in line and "the same command resumes" in line, line
