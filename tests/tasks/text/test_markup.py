"""Markup removal equals gensim's filter_wiki, leaves clean paragraphs, and keeps Chinese text whole."""

from __future__ import annotations

import bz2
import random
from xml.etree.ElementTree import iterparse

from gensim.corpora import wikicorpus

from dlbox.tasks.text import markup
from dlbox.tasks.text.tokens import ZhSegmenter


def test_fast_remove_template_equals_gensims_on_random_brace_strings():
    rng = random.Random(0)
    for _ in range(20_000):
        s = "".join(rng.choice("{}{}ab |\n") for _ in range(rng.randint(0, 40)))
        assert markup.remove_template(s) == wikicorpus.remove_template(s), s


def test_filter_wiki_equals_gensims_on_every_page_of_the_enwiki_dump(enwiki_dump):
    texts = []
    for _, elem in iterparse(bz2.open(enwiki_dump)):
        if elem.tag.endswith("}text"):
            texts.append(elem.text or "")
    assert len(texts) == 206
    for raw in texts:
        assert markup.filter_wiki(raw) == wikicorpus.filter_wiki(raw)


def test_strip_markup_leaves_plain_paragraphs():
    raw = ("__NOTOC__\n{{Infobox|name=x}}'''Bold''' and ''italic'' text.<ref>cite</ref>\n"
           "== Heading ==\n* item one\n# item two\n[[Target|label]] and [[Plain]].\n"
           '{| class="wikitable"\n|-\n| cell || other\n|}\n')  # fmt: skip
    text = markup.strip_markup(raw)
    assert text.split("\n") == ["Bold and italic text.", "Heading", "item one", "item two", "label and Plain.",
                                "cell", "other"]  # fmt: skip


def test_sentences_split_at_chinese_and_latin_sentence_ends():
    text = "第一句。第二句！第三句？甲；乙\nOne. Two! Three? Mr.Smith stays"
    assert markup.sentences(text) == ["第一句。", "第二句！", "第三句？", "甲；", "乙", "One.", "Two!", "Three?",
                                      "Mr.Smith stays"]  # fmt: skip


def test_chinese_clauses_longer_than_15_characters_survive_extraction_and_segmentation():
    clause = "中华人民共和国国务院总理在北京人民大会堂举行记者招待会"  # 26 characters, no spaces
    raw = f"'''{clause}'''。{{{{模板|参数}}}}"
    # gensim's WikiCorpus tokenizer drops any token longer than 15 characters: the whole clause (issue #1534).
    assert wikicorpus.tokenize(wikicorpus.filter_wiki(raw)) == []
    text = markup.strip_markup(raw)
    assert text == clause + "。"
    words = ZhSegmenter()(text)
    assert "".join(words) == clause and len(words) > 3
