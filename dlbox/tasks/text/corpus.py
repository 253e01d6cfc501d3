"""Wikipedia dump -> corpus: `wiki2txt`, `convert`, `segment` and the one-pass `prepare`.

Each takes its config (or keyword overrides of the defaults: ``prepare(dump, out, lang="en", workers=2)``)
and returns the figures of the run (items, lines, tokens, seconds, rates).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError
from dlbox.config import from_dict
from dlbox.tasks.text import pipeline
from dlbox.tasks.text.config import ConvertConfig, PrepareConfig, SegmentConfig, Wiki2TxtConfig
from dlbox.tasks.text.steps import Steps
from dlbox.tasks.text.wikidump import Dump


def _cfg(cls, cfg, overrides: dict[str, Any]):
    if cfg is None:
        return from_dict(cls, overrides)
    return from_dict(cls, overrides, base=cfg) if overrides else cfg


def _run_dump(task: str, dump: Dump, steps: Steps, out, cfg) -> dict:
    # The dump's page counts are whole even after a resume: the skipped articles are read again.
    return pipeline.run(task, dump, dump.articles(), steps, out, workers=cfg.workers, chunk_size=cfg.chunk_size,
                        restart=cfg.restart, unit="articles", on_done=dump.stats.as_dict)  # fmt: skip


def wiki2txt(dump: str | Path, out: str | Path, cfg: Wiki2TxtConfig | None = None, **overrides) -> dict:
    """Article text without markup, one article (or sentence) a line; no conversion, no segmentation."""
    cfg = _cfg(Wiki2TxtConfig, cfg, overrides)
    d = Dump(dump)
    return _run_dump("wiki2txt", d, Steps(markup=True, layout=cfg.per_line), out, cfg)


def convert(inp: str | Path, out: str | Path, cfg: ConvertConfig | None = None, **overrides) -> dict:
    """OpenCC conversion of a text file, line by line (line n of the output is line n of the input)."""
    cfg = _cfg(ConvertConfig, cfg, overrides)
    src = pipeline.TextFile(inp)
    return pipeline.run("convert", src, src.items(), Steps(opencc=cfg.opencc, layout="line"), out,
                        workers=cfg.workers, chunk_size=cfg.chunk_size, restart=cfg.restart, unit="lines")  # fmt: skip


def segment(inp: str | Path, out: str | Path, cfg: SegmentConfig | None = None, **overrides) -> dict:
    """Words separated by spaces; empty results dropped."""
    cfg = _cfg(SegmentConfig, cfg, overrides)
    src = pipeline.TextFile(inp)
    steps = Steps(lang=cfg.lang, layout=cfg.per_line, **_token_options(cfg))
    return pipeline.run("segment", src, src.items(), steps, out, workers=cfg.workers, chunk_size=cfg.chunk_size,
                        restart=cfg.restart, unit="lines")  # fmt: skip


def prepare(dump: str | Path, out: str | Path, cfg: PrepareConfig | None = None, **overrides) -> dict:
    """Dump -> markup removed -> OpenCC -> segmented words, in one streaming pass with no intermediate files."""
    cfg = _cfg(PrepareConfig, cfg, overrides)
    d = Dump(dump)
    lang = cfg.lang
    if lang == "auto":
        found = d.detect_lang()
        if found not in ("zh", "en"):
            raise UserError(f"cannot tell the language of {d.path} (xml:lang={found!r})", "pass --lang zh or --lang en")
        lang = found
    opencc = cfg.opencc
    if opencc == "auto":
        opencc = "t2s" if lang == "zh" else "none"
    steps = Steps(markup=True, opencc=None if opencc == "none" else opencc, lang=lang, layout=cfg.per_line,
                  **_token_options(cfg))  # fmt: skip
    result = _run_dump("prepare", d, steps, out, cfg)
    return {**result, "lang": lang, "opencc": opencc}


def _token_options(cfg) -> dict:
    user_dict = str(Path(cfg.user_dict).resolve()) if cfg.user_dict else None
    return {"keep_latin": cfg.keep_latin, "keep_digits": cfg.keep_digits, "user_dict": user_dict,
            "segmenter": cfg.segmenter}  # fmt: skip


def render(r: dict) -> str:
    unit = "articles" if "articles" in r else "lines"
    lines = [f"wrote {r['output']}: {r[unit]:,} {unit} -> {r['lines']:,} lines, {r['tokens']:,} tokens "
             f"in {r['seconds']:.1f} s with {r['workers']} worker(s)"]  # fmt: skip
    rates = [f"{r[f'{unit}_per_sec']:,.0f} {unit}/s"]
    if r.get("tokens_per_sec"):
        rates.append(f"{r['tokens_per_sec']:,.0f} tokens/s")
    if r.get("input_mb_per_sec"):
        rates.append(f"{r['input_mb_per_sec']:.2f} MB/s of input")
    lines.append("rate: " + ", ".join(rates))
    if r.get("resumed_after"):
        lines.append(f"resumed after {r['resumed_after']:,} {unit} done by an earlier run")
    if "pages" in r:
        lines.append(f"dump: {r['pages']:,} pages, {r['redirects']:,} redirects, {r['other_namespaces']:,} in "
                     f"other namespaces, {r['empty']:,} empty")  # fmt: skip
    return "\n".join(lines)
