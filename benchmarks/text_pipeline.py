"""`dlbox text prepare` versus a naive serial pipeline on the same dump: articles/s, tokens/s, MB/s.

    python benchmarks/text_pipeline.py [--zh-articles 4000] [--workers N] [--repeats 1]

The naive pipeline is what the old demo did, in one process: gensim's page reader and ``filter_wiki``, OpenCC
t2s, ``jieba.lcut``, drop the non-Chinese tokens, write a line. ``prepare`` streams the same dump through a
pool of worker processes (and a faster template pass); it is timed with 1 worker (the code alone) and with
all cores, with jieba and with rjieba. A last row times reading the dump alone (the parent's serial share:
the ceiling of the parallel rate). Two inputs: a generated Chinese dump (traditional characters and real
markup, see dlbox/tasks/text/fakewiki.py) and gensim's shortened English dump (the naive English pipeline
is gensim's filter_wiki and the same letters tokenizer). Wall-clock times; the machine's load is printed,
since other work on the cores changes the parallel figures.
"""

from __future__ import annotations

import argparse
import bz2
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlbox.tasks.text import fakewiki  # noqa: E402
from dlbox.tasks.text.corpus import prepare  # noqa: E402
from dlbox.tasks.text.pipeline import default_workers  # noqa: E402
from dlbox.tasks.text.tokens import en_tokens, zh_token_filter  # noqa: E402

ENWIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def naive(dump: Path, out: Path, lang: str) -> dict:
    """One process, one article after the other: the old demo's loop."""
    import re

    import jieba
    import opencc
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    t2s = opencc.OpenCC("t2s")
    keep = zh_token_filter()
    redirect = re.compile(r"\s*#\s*(redirect|重定向)", re.IGNORECASE)
    t0 = time.perf_counter()
    n_articles = n_tokens = 0
    with open(out, "w", encoding="utf-8") as f:
        for _title, text, _pageid in extract_pages(bz2.open(dump), filter_namespaces=("0",)):
            if not text.strip() or redirect.match(text):
                continue
            plain = filter_wiki(text)
            if lang == "zh":
                tokens = [t for t in jieba.lcut(t2s.convert(plain)) if keep(t)]
            else:
                tokens = en_tokens(plain)
            f.write(" ".join(tokens) + "\n")
            n_articles += 1
            n_tokens += len(tokens)
    return {"articles": n_articles, "tokens": n_tokens, "seconds": time.perf_counter() - t0}


def read_only(dump: Path) -> dict:
    """The parent's share alone (bz2 + XML, no processing): the ceiling of the parallel pipeline."""
    from dlbox.tasks.text.wikidump import Dump

    t0 = time.perf_counter()
    n = sum(1 for _ in Dump(dump).articles())
    return {"articles": n, "tokens": 0, "seconds": time.perf_counter() - t0}


def timed_prepare(dump: Path, out: Path, **kw) -> dict:
    t0 = time.perf_counter()
    r = prepare(dump, out, restart=True, **kw)
    return {"articles": r["articles"], "tokens": r["tokens"], "seconds": time.perf_counter() - t0}


def best(fn, repeats: int) -> dict:
    runs = [fn() for _ in range(repeats)]
    return min(runs, key=lambda r: r["seconds"])


def table(title: str, size_mb: float, rows: list[tuple[str, dict]]) -> str:
    base = rows[0][1]["seconds"]
    lines = [f"\n{title} ({size_mb:.2f} MB compressed)",
             f"{'pipeline':<34} {'articles/s':>11} {'tokens/s':>11} {'MB/s':>6} {'speed-up':>8}"]  # fmt: skip
    for name, r in rows:
        s = r["seconds"]
        tokens = f"{r['tokens'] / s:>11,.0f}" if r["tokens"] else f"{'-':>11}"
        lines.append(f"{name:<34} {r['articles'] / s:>11,.0f} {tokens} {size_mb / s:>6.2f} {base / s:>7.2f}x")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zh-articles", type=int, default=4000, help="articles in the generated Chinese dump")
    ap.add_argument("--workers", type=int, default=default_workers(), help="workers for the parallel runs")
    ap.add_argument("--repeats", type=int, default=1, help="best of N runs")
    args = ap.parse_args()
    os.environ.setdefault("DLBOX_PROGRESS", "0")
    from gensim.test.utils import datapath

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"cores: {default_workers()}, workers: {args.workers}, load average before: "
          f"{', '.join(f'{x:.2f}' for x in load) if load else '?'}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        zh = fakewiki.write_dump(tmp / "zh.xml.bz2", fakewiki.zh_pages(args.zh_articles, seed=0))
        rows = [
            ("naive serial (gensim + jieba)", best(lambda: naive(zh, tmp / "n.txt", "zh"), args.repeats)),
            ("prepare, 1 worker", best(lambda: timed_prepare(zh, tmp / "p1.txt", workers=1), args.repeats)),
            (f"prepare, {args.workers} workers",
             best(lambda: timed_prepare(zh, tmp / "pn.txt", workers=args.workers), args.repeats)),
            (f"prepare, {args.workers} workers, rjieba",
             best(lambda: timed_prepare(zh, tmp / "pr.txt", workers=args.workers, segmenter="rjieba"), args.repeats)),
            ("(reading the dump alone)", best(lambda: read_only(zh), args.repeats)),
        ]  # fmt: skip
        print(table(f"Chinese: generated dump, {args.zh_articles} articles", zh.stat().st_size / 1e6, rows))
        en = Path(datapath(ENWIKI))
        rows = [
            ("naive serial (gensim)", best(lambda: naive(en, tmp / "n.txt", "en"), args.repeats)),
            ("prepare, 1 worker", best(lambda: timed_prepare(en, tmp / "p1.txt", workers=1), args.repeats)),
            (f"prepare, {args.workers} workers",
             best(lambda: timed_prepare(en, tmp / "pn.txt", workers=args.workers), args.repeats)),
            ("(reading the dump alone)", best(lambda: read_only(en), args.repeats)),
        ]  # fmt: skip
        print(table("English: gensim's shortened enwiki dump, 106 articles", en.stat().st_size / 1e6, rows))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in load) if load else '?'}")


if __name__ == "__main__":
    main()
