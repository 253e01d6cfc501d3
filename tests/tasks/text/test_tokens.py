"""Chinese segmentation with its filters and user dictionary, the English tokenizer, OpenCC configs."""

from __future__ import annotations

import pytest

from dlbox.base.errors import UserError
from dlbox.tasks.text.tokens import ZhSegmenter, converter, en_tokens, opencc_configs
from tests.conftest import assert_user_error
from tests.tasks.text.conftest import run

MIXED = "苹果公司在2012年发布了iPhone 5，售价６４９美元。"


def test_zh_segmentation_keeps_only_chinese_words_by_default():
    words = ZhSegmenter()(MIXED)
    assert words == ["苹果公司", "在", "年", "发布", "了", "售价", "美元"]


def test_keep_latin_and_keep_digits_bring_back_words_and_numbers_lower_cased():
    assert ZhSegmenter(keep_latin=True)(MIXED) == ["苹果公司", "在", "年", "发布", "了", "iphone", "售价", "美元"]
    assert ZhSegmenter(keep_digits=True)(MIXED) == ["苹果公司", "在", "2012", "年", "发布", "了", "5", "售价",
                                                    "649", "美元"]  # fmt: skip


@pytest.mark.parametrize("segmenter", ["jieba", "rjieba"])
def test_a_user_dictionary_makes_a_new_word_one_token(tmp_path, segmenter):
    text = "我们研究人工智能芯片的设计"
    assert ZhSegmenter(segmenter)(text) == ["我们", "研究", "人工智能", "芯片", "的", "设计"]
    user_dict = tmp_path / "words.txt"
    user_dict.write_text("人工智能芯片 1000 n\n", encoding="utf-8")
    assert ZhSegmenter(segmenter, user_dict=str(user_dict))(text) == ["我们", "研究", "人工智能芯片", "的", "设计"]


def test_rjieba_segments_the_generated_chinese_corpus_exactly_like_jieba(zh_dump, tmp_path):
    from dlbox.tasks.text.corpus import prepare

    a = prepare(zh_dump, tmp_path / "jieba.txt", workers=1, segmenter="jieba")
    b = prepare(zh_dump, tmp_path / "rjieba.txt", workers=1, segmenter="rjieba")
    assert a["tokens"] == b["tokens"] > 10_000
    assert (tmp_path / "jieba.txt").read_bytes() == (tmp_path / "rjieba.txt").read_bytes()


def test_a_malformed_user_dictionary_is_a_user_error(tmp_path):
    bad = tmp_path / "words.txt"
    bad.write_text("麒凰湾 many\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 1"):
        ZhSegmenter(user_dict=str(bad))


def test_english_tokens_are_lower_cased_runs_of_letters_with_digits_optional():
    text = "Don't panic: the R2-D2 unit (1977) met Zoë in café №5."
    assert en_tokens(text) == ["don", "t", "panic", "the", "r", "d", "unit", "met", "zoë", "in", "café"]
    assert en_tokens(text, keep_digits=True) == ["don", "t", "panic", "the", "r2", "d2", "unit", "1977", "met",
                                                 "zoë", "in", "café", "5"]  # fmt: skip


def test_bundled_opencc_configs_convert_both_ways():
    assert {"t2s", "s2t", "tw2sp", "s2twp"} <= set(opencc_configs())
    assert converter("t2s")("鳳凰與麒麟的傳說") == "凤凰与麒麟的传说"
    assert converter("t2s.json")("漢語") == "汉语"
    assert converter("s2t")("汉语") == "漢語"
    assert converter("s2twp")("软件") == "軟體"  # Taiwan phrases, not only characters


def test_an_unknown_opencc_config_names_the_close_one(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("漢語\n", encoding="utf-8")
    assert_user_error(run("text", "convert", src, "--out", tmp_path / "out.txt", "--opencc", "t2ss"),
                      "unknown OpenCC config 't2ss'", "'t2s'")  # fmt: skip
