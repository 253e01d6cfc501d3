"""Typed options of the text commands (one dataclass per command; the CLI options are made from them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlbox.base.errors import UserError
from dlbox.config import REQUIRED, opt, positional, section
from dlbox.tasks.text.w2v import W2VConfig


@dataclass
class PipelineConfig:
    workers: int | None = opt(None, "worker processes (default: all cores; 1 runs in this process)", ge=1, le=256)
    chunk_size: int = opt(64, "items per chunk: the unit of parallel work and of resume", ge=1, le=1_000_000)
    restart: bool = opt(False, "ignore the checkpoint of an interrupted run and start over")

    def validate(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise UserError(f"workers must be >= 1, got {self.workers}")
        if self.chunk_size < 1:
            raise UserError(f"chunk_size must be >= 1, got {self.chunk_size}")


@dataclass
class Wiki2TxtConfig(PipelineConfig):
    per_line: Literal["article", "sentence"] = opt("article", "one article or one sentence a line")


@dataclass
class ConvertConfig(PipelineConfig):
    chunk_size: int = opt(2000, "lines per chunk: the unit of parallel work and of resume", ge=1, le=1_000_000)
    opencc: str = opt("t2s", "OpenCC config: t2s (traditional -> simplified), s2t, s2twp, tw2sp, t2hk, ... "
                             "or the path of a config .json")  # fmt: skip


@dataclass
class TokenOptions:
    keep_latin: bool = opt(False, "zh: keep words of Latin letters (lower-cased)")
    keep_digits: bool = opt(False, "keep numbers (zh: digit words; en: words with digits)")
    user_dict: str | None = opt(None, "zh: a jieba user dictionary, one 'word [freq] [tag]' a line")
    segmenter: Literal["jieba", "rjieba"] = opt("jieba", "zh: jieba, or rjieba (its Rust port, same dictionary, faster)")


@dataclass
class SegmentConfig(TokenOptions, PipelineConfig):
    chunk_size: int = opt(256, "lines per chunk: the unit of parallel work and of resume", ge=1, le=1_000_000)
    lang: Literal["zh", "en"] = opt("zh", "zh: jieba words; en: lower-cased words of letters")
    per_line: Literal["article", "sentence"] = opt("article", "article: one output line per input line; "
                                                              "sentence: one sentence a line")  # fmt: skip


@dataclass
class PrepareConfig(TokenOptions, PipelineConfig):
    lang: Literal["auto", "zh", "en"] = opt("auto", "auto: from the dump's xml:lang (zh or en)")
    opencc: str = opt("auto", "OpenCC config applied before segmenting; auto: t2s for zh, none for en; none: skip")
    per_line: Literal["article", "sentence"] = opt("article", "one article or one sentence a line")


# The commands' arguments, declared for dlbox.cliutil.Command: the files, and the options above as a section.
DUMP = "a pages-articles dump: .xml.bz2, .xml.gz or .xml"
OUT = "the output file (written as OUT.partial, renamed when complete)"
CONFIG = "a YAML file of options (typed options win)"
MODEL = "a model directory, or a .kv, .model, word2vec .bin or .txt file"


@dataclass(kw_only=True)
class Wiki2TxtArgs:
    dump: str = positional(DUMP)
    out: str = opt(REQUIRED, OUT, output="file")
    config: str | None = opt(None, CONFIG)
    options: Wiki2TxtConfig = section("extraction")


@dataclass(kw_only=True)
class ConvertArgs:
    input: str = positional("a UTF-8 text file")
    out: str = opt(REQUIRED, OUT, output="file")
    config: str | None = opt(None, CONFIG)
    # --t2s: a shorthand that sets --opencc (of the options below)
    opencc: str | None = opt(None, "traditional -> simplified Chinese (= --opencc t2s)", flag="--t2s",
                             action="store_const", const="t2s")  # fmt: skip
    options: ConvertConfig = section("conversion")


@dataclass(kw_only=True)
class SegmentArgs:
    input: str = positional("a UTF-8 text file, one article or sentence a line")
    out: str = opt(REQUIRED, OUT, output="file")
    config: str | None = opt(None, CONFIG)
    options: SegmentConfig = section("segmentation")


@dataclass(kw_only=True)
class PrepareArgs:
    dump: str = positional(DUMP)
    out: str = opt(REQUIRED, OUT, output="file")
    config: str | None = opt(None, CONFIG)
    options: PrepareConfig = section("corpus")


@dataclass(kw_only=True)
class W2VTrainArgs:
    corpus: str = positional("the corpus file (from dlbox text prepare)")
    out: str = opt(REQUIRED, "the model directory (built beside it, renamed when complete)", output="dir")
    config: str | None = opt(None, CONFIG)
    # --cbow: a shorthand that sets --no-sg (of the options below)
    sg: bool | None = opt(None, "CBOW (the default; = --no-sg)", flag="--cbow", action="store_const", const=False)
    options: W2VConfig = section("word2vec")


@dataclass(kw_only=True)
class W2VSimilarArgs:
    model: str = positional(MODEL)
    words: list[str] = positional("one or more words (their vectors are added)")
    negative: list[str] = opt([], "words whose vectors are subtracted", nargs="*", metavar="WORD")
    topn: int = opt(10, "how many words (default: 10)", ge=1, le=100_000)


@dataclass(kw_only=True)
class W2VAnalogyArgs:
    model: str = positional(MODEL)
    a: str = positional()
    b: str = positional()
    c: str = positional()
    topn: int = opt(5, "how many answers (default: 5)", ge=1, le=100_000)


@dataclass(kw_only=True)
class W2VEvaluateArgs:
    model: str = positional(MODEL)
    pairs: str | None = opt(None, "word pairs 'w1<TAB>w2<TAB>score' (default: gensim's wordsim353 when neither "
                                  "file is given)")  # fmt: skip
    analogies: str | None = opt(None, "analogy questions ': section' / 'a b c d' (default: gensim's "
                                      "questions-words.txt when neither file is given)")  # fmt: skip
    restrict_vocab: int = opt(300_000, "only the N most frequent words count as known (default: 300000)", ge=1,
                              metavar="N", le=10**9)  # fmt: skip
