"""Tokenizers and the character converter: jieba for Chinese, a simple word tokenizer for English, OpenCC.

Chinese (``zh``): jieba (or rjieba, its Rust port, same dictionary and algorithm) segments the text, then a
token is kept when every character is in an allowed class: CJK ideographs always; Latin letters with
``keep_latin`` (lower-cased); digits with ``keep_digits``. Punctuation and anything else is dropped.

English (``en``): maximal runs of Unicode letters (any script, as gensim's tokenizer), lower-cased (``don't`` -> ``don``, ``t``); with
``keep_digits`` runs of letters and digits (``mp3``, ``1984``). No stemming, no stop words.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from dlbox.base.errors import UserError, close_matches, not_found

# CJK Unified Ideographs, Extension A, the compatibility block, Extensions B-H, and 〇 (ideographic zero).
CJK = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_CJK_ONLY = re.compile(f"[{CJK}]+")
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"  # ASCII and Latin-1/Extended-A/B letters
_DIGITS = "0-9\uff10-\uff19"  # ASCII and full-width digits
_EN_WORD = re.compile(r"[^\W\d_]+")
_EN_WORD_DIGITS = re.compile(r"[^\W_]+")
_FULLWIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)}
                           | {chr(0xFF21 + i): chr(0x41 + i) for i in range(26)}
                           | {chr(0xFF41 + i): chr(0x61 + i) for i in range(26)})  # fmt: skip

SEGMENTERS = ("jieba", "rjieba")


def en_tokens(text: str, keep_digits: bool = False) -> list[str]:
    return (_EN_WORD_DIGITS if keep_digits else _EN_WORD).findall(text.lower())


def zh_token_filter(keep_latin: bool = False, keep_digits: bool = False):
    """A compiled ``fullmatch`` for the tokens to keep."""
    allowed = CJK + (_LATIN if keep_latin else "") + (_DIGITS if keep_digits else "")
    return re.compile(f"[{allowed}]+").fullmatch


class ZhSegmenter:
    """jieba (or rjieba) + the token filter. Built once per process: loading the dictionary takes ~1 s."""

    def __init__(self, segmenter: str = "jieba", keep_latin: bool = False, keep_digits: bool = False,
                 user_dict: str | None = None):  # fmt: skip
        if segmenter not in SEGMENTERS:
            raise UserError(f"unknown segmenter {segmenter!r}", close_matches(segmenter, SEGMENTERS))
        self.keep = zh_token_filter(keep_latin, keep_digits)
        self.lower = keep_latin
        self.normalize = keep_latin or keep_digits
        if segmenter == "jieba":
            import jieba

            # jieba logs "Building prefix dict..." on stderr at INFO; only its warnings are wanted.
            jieba.setLogLevel(logging.WARNING)
            self._tk = jieba.Tokenizer()
            self._tk.initialize()
            self._cut = lambda text: self._tk.lcut(text, HMM=True)
        else:
            try:
                import rjieba
            except ImportError:
                raise UserError("segmenter 'rjieba' is not installed", "pip install rjieba, or use --segmenter jieba") from None
            self._tk = rjieba.Jieba()
            self._cut = lambda text: self._tk.cut(text, True)
        if user_dict:
            for word, freq, tag in read_user_dict(user_dict):
                self._tk.add_word(word, freq, tag)

    def __call__(self, text: str) -> list[str]:
        if self.normalize:
            text = text.translate(_FULLWIDTH)
        keep = self.keep
        tokens = [t for t in self._cut(text) if keep(t)]
        return [t.lower() for t in tokens] if self.lower else tokens


def read_user_dict(path: str | Path) -> list[tuple[str, int | None, str | None]]:
    """jieba's user dictionary format: ``word [frequency] [part-of-speech]``, one a line, UTF-8."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"user dictionary {str(p)!r} {not_found(p)}", "a UTF-8 file with one 'word [freq] [tag]' a line")
    entries = []
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"user dictionary {str(p)!r} is not UTF-8 text", "convert it with iconv -t utf-8") from None
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 3 or (len(parts) >= 2 and not parts[1].isdigit()):
            raise UserError(f"user dictionary {p}, line {n}: expected 'word [frequency] [tag]', got {line.strip()!r}", "one 'word [frequency] [tag]' a line, e.g. '深度学习 10 n'")
        entries.append((parts[0], int(parts[1]) if len(parts) >= 2 else None, parts[2] if len(parts) == 3 else None))
    return entries


# OpenCC's standard configs, for opencc releases that do not list theirs (opencc.CONFIGS came later).
STANDARD_CONFIGS = ["hk2s", "hk2t", "jp2t", "s2hk", "s2t", "s2tw", "s2twp", "t2hk", "t2jp", "t2s", "t2tw", "tw2s",
                    "tw2sp", "tw2t"]  # fmt: skip


def opencc_configs() -> list[str]:
    import opencc

    listed = getattr(opencc, "CONFIGS", None)
    return sorted(c.removesuffix(".json") for c in listed) if listed else STANDARD_CONFIGS


def converter(config: str):
    """``OpenCC(config).convert``; ``config`` is a bundled name (``t2s``, ``s2twp``, ``t2s.json``) or a path."""
    import opencc

    names = opencc_configs()
    stem = config.removesuffix(".json")
    if stem not in names and not Path(config).is_file():
        raise UserError(f"unknown OpenCC config {config!r}", close_matches(stem, names) or f"one of {', '.join(names)}")
    try:  # "t2s.json" is the spelling every opencc release accepts for a bundled config
        return opencc.OpenCC(f"{stem}.json" if stem in names else config).convert
    except Exception as e:  # the C library's own error for an unreadable config file
        raise UserError(f"OpenCC cannot load config {config!r}: {e}") from None
