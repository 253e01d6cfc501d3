"""Typed options of the text commands (one dataclass per command; the CLI options are made from them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlbox.config import opt
from dlbox.errors import UserError


@dataclass
class PipelineConfig:
    workers: int | None = opt(None, "worker processes (default: all cores; 1 runs in this process)", ge=1)
    chunk_size: int = opt(64, "items per chunk: the unit of parallel work and of resume", ge=1)
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
    chunk_size: int = opt(2000, "lines per chunk: the unit of parallel work and of resume", ge=1)
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
    chunk_size: int = opt(256, "lines per chunk: the unit of parallel work and of resume", ge=1)
    lang: Literal["zh", "en"] = opt("zh", "zh: jieba words; en: lower-cased words of letters")
    per_line: Literal["article", "sentence"] = opt("article", "article: one output line per input line; "
                                                              "sentence: one sentence a line")  # fmt: skip


@dataclass
class PrepareConfig(TokenOptions, PipelineConfig):
    lang: Literal["auto", "zh", "en"] = opt("auto", "auto: from the dump's xml:lang (zh or en)")
    opencc: str = opt("auto", "OpenCC config applied before segmenting; auto: t2s for zh, none for en; none: skip")
    per_line: Literal["article", "sentence"] = opt("article", "one article or one sentence a line")
