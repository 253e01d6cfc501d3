"""Bad input gives one clear line and exit code 2, and leaves no output that looks complete."""

from __future__ import annotations

import bz2

from dlbox.tasks.text.fakewiki import dump_xml, zh_pages
from tests.conftest import assert_user_error
from tests.tasks.text.conftest import run


def test_a_truncated_bz2_dump_is_reported_and_leaves_no_output(zh_dump, tmp_path):
    data = zh_dump.read_bytes()
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "corpus.txt"
    assert_user_error(run("text", "prepare", cut, "--out", out, "--workers", "2"), "truncated", "download")
    assert list(tmp_path.iterdir()) == [cut]  # neither corpus.txt nor a partial file or checkpoint


def test_a_dump_whose_xml_stops_midway_is_reported(tmp_path):
    xml = dump_xml(zh_pages(20)).encode()
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes(bz2.compress(xml[: len(xml) // 2]))  # a complete bz2 stream of half a document
    assert_user_error(run("text", "wiki2txt", cut, "--out", tmp_path / "o.txt"), "XML ends early or is malformed")


def test_an_xml_file_that_is_not_a_wikipedia_dump_is_refused(tmp_path):
    rss = tmp_path / "feed.xml"
    rss.write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>')
    assert_user_error(run("text", "prepare", rss, "--out", tmp_path / "o.txt"), "not a MediaWiki XML dump", "<rss>")


def test_a_file_that_is_not_xml_is_refused(tmp_path):
    junk = tmp_path / "junk.xml.bz2"
    junk.write_bytes(bz2.compress(b"\x00\x01 binary, not xml " * 50))
    assert_user_error(run("text", "wiki2txt", junk, "--out", tmp_path / "o.txt"), "not a MediaWiki XML dump", "not XML")


def test_a_missing_dump_is_reported(tmp_path):
    assert_user_error(run("text", "prepare", tmp_path / "nope.xml.bz2", "--out", tmp_path / "o.txt"),
                      "does not exist", "dlbox hub download zhwiki")  # fmt: skip


def test_a_dump_without_articles_is_an_error_not_an_empty_corpus(tmp_path):
    only_redirects = tmp_path / "r.xml"
    only_redirects.write_text(dump_xml([{"title": "甲", "text": "#REDIRECT [[乙]]", "redirect": "乙"}]), encoding="utf-8")
    assert_user_error(run("text", "prepare", only_redirects, "--out", tmp_path / "o.txt"), "no articles", "1 redirects")
    assert not (tmp_path / "o.txt").exists()


def test_training_on_an_empty_corpus_is_refused(tmp_path):
    empty = tmp_path / "corpus.txt"
    empty.write_text("\n\n  \n")
    assert_user_error(run("text", "w2v", "train", empty, "--out", tmp_path / "m"), "is empty")
    assert not (tmp_path / "m").exists()


def test_a_min_count_above_every_word_count_suggests_lowering_it(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b c\nb c d\n")
    assert_user_error(run("text", "w2v", "train", corpus, "--out", tmp_path / "m", "--min-count", "5"),
                      "no word occurs 5 times", "lower --min-count")  # fmt: skip


def test_a_missing_model_path_is_reported(tmp_path):
    assert_user_error(run("text", "w2v", "similar", tmp_path / "nope", "war"), "does not exist", "w2v train")
    assert_user_error(run("text", "w2v", "evaluate", tmp_path / "nope"), "does not exist")


def test_a_word_outside_the_vocabulary_gets_close_spellings(en_model):
    line = assert_user_error(run("text", "w2v", "similar", en_model["path"], "philosphy"), "not in the vocabulary")
    assert "did you mean 'philosophy'" in line
    assert_user_error(run("text", "w2v", "analogy", en_model["path"], "man", "kingg", "woman"), "'kingg'", "'king'")


def test_training_into_a_folder_that_is_not_a_model_is_refused(tmp_path, zh_corpus):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "keep.jpg").write_bytes(b"x")
    assert_user_error(run("text", "w2v", "train", zh_corpus["path"], "--out", folder), "not a word2vec model directory")
    assert (folder / "keep.jpg").read_bytes() == b"x"


def test_a_language_that_leaves_no_words_is_an_error_not_an_empty_corpus(tmp_path):
    src = tmp_path / "en.txt"
    src.write_text("An English line, 2024.\nAnother one.\n", encoding="utf-8")
    assert_user_error(run("text", "segment", src, "--out", tmp_path / "o.txt", "--lang", "zh"),
                      "no zh words in any of the 2 lines", "check --lang")  # fmt: skip
    assert not (tmp_path / "o.txt").exists()


def test_an_empty_dump_file_is_reported(tmp_path):
    empty = tmp_path / "zhwiki.xml.bz2"
    empty.write_bytes(b"")
    assert_user_error(run("text", "wiki2txt", empty, "--out", tmp_path / "o.txt"), "is empty", "download the dump again")


def test_a_text_input_that_is_not_utf8_names_the_line(tmp_path):
    src = tmp_path / "big5.txt"
    src.write_bytes("第一行\n".encode() + "第二行\n".encode("big5"))
    assert_user_error(run("text", "convert", src, "--out", tmp_path / "o.txt", "--workers", "1"),
                      "line 2: not UTF-8", "convert the file to UTF-8")  # fmt: skip
    assert not (tmp_path / "o.txt").exists() and not (tmp_path / "o.txt.partial").exists()
