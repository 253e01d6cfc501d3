"""word2vec with gensim: train on a corpus file, save a model directory, query and evaluate it.

A model directory holds ``word2vec.model`` (the full model: training can continue from it), ``vectors.kv``
(the KeyedVectors alone, what the queries load, memory-mapped), optionally ``vectors.txt`` or ``vectors.bin``
(the original word2vec format, readable by other tools), and ``meta.json`` (options, corpus, vocabulary size,
speed), written last. The directory is built beside its destination and renamed into place when complete.

Training reads the corpus with gensim's ``corpus_file`` mode (one sentence a line, words separated by
spaces: what ``dlbox text prepare`` writes), whose worker threads run without the GIL and so scale with
cores. With ``workers=1`` and a fixed ``seed`` two runs give identical vectors.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from dlbox.base import progress
from dlbox.base.errors import UserError, not_found
from dlbox.config import from_dict, opt

KIND = "dlbox-word2vec"
TRAIN_HINT = "train one with: dlbox text w2v train CORPUS --out MODEL_DIR"


@dataclass
class W2VConfig:
    dim: int = opt(300, "vector size", ge=1, le=4096)
    window: int = opt(5, "context window (words each side)", ge=1, le=100)
    min_count: int = opt(5, "ignore words seen fewer times", ge=1, le=10**9)
    sg: bool = opt(False, "skip-gram (--sg) instead of CBOW (--cbow, the default)")
    negative: int = opt(5, "negative samples per word", ge=0, le=100)
    epochs: int = opt(5, "passes over the corpus", ge=1, le=100_000)
    workers: int | None = opt(None, "training threads (default: all cores; 1 with --seed is reproducible)", ge=1, le=256)
    seed: int = opt(1, "random seed", ge=0, le=2**32 - 1)
    sample: float = opt(1e-3, "down-sampling threshold of frequent words", ge=0, lt=1)
    alpha: float = opt(0.025, "initial learning rate (decays linearly)", gt=0, le=10)
    format: Literal["none", "text", "binary"] = opt("none", "also save the vectors in word2vec text or binary format")

    def validate(self) -> None:
        for name in ("dim", "window", "min_count", "epochs"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.negative < 1:
            raise UserError(f"negative must be >= 1, got {self.negative}")
        if self.workers is not None and self.workers < 1:
            raise UserError(f"workers must be >= 1, got {self.workers}")
        if not 0 < self.alpha < 1:
            raise UserError(f"alpha must be in (0, 1), got {self.alpha}")


def _check_corpus(corpus: Path) -> None:
    if not corpus.exists():
        raise UserError(f"corpus {str(corpus)!r} does not exist", "make one with: dlbox text prepare DUMP --out corpus.txt")
    if corpus.is_dir():
        raise UserError(f"corpus {str(corpus)!r} is a directory", "give a text file, one sentence a line")
    with open(corpus, "rb") as f:
        while block := f.read(1 << 20):
            if block.strip():
                return
    raise UserError(f"corpus {str(corpus)!r} is empty (no words)", "check the output of dlbox text prepare")


def _check_out(out: Path) -> None:
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or _is_model_dir(out))):
        raise UserError(f"--out {str(out)!r} exists and is not a word2vec model directory", "choose another --out")


def _is_model_dir(path: Path) -> bool:
    try:
        return json.loads((path / "meta.json").read_text()).get("kind") == KIND
    except (OSError, ValueError):
        return False


class _GensimProgress(logging.Handler):
    """gensim logs its progress ("EPOCH 0 - PROGRESS: at 51.00% examples, 812345 words/s"): a bar and
    one line per epoch from those records."""

    def __init__(self, epochs: int):
        super().__init__(logging.INFO)
        self.bar = progress.bar(epochs * 100, "w2v train", unit="%")
        self.epochs = epochs
        self.words_per_sec: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg, args = str(record.msg), record.args
        if not isinstance(args, tuple):
            return
        if msg.startswith("EPOCH %i - PROGRESS") and len(args) >= 3:
            epoch, pct, wps = args[0], args[1], args[2]
            self.bar.update(max(0, int(epoch * 100 + pct) - self.bar.n))
            self.bar.set_postfix_str(f"{wps:,.0f} words/s", refresh=False)
        elif msg.startswith("EPOCH %i: training on") and len(args) >= 5:
            epoch, raw, effective, seconds, wps = args[:5]
            self.words_per_sec.append(float(wps))
            self.bar.update(max(0, (epoch + 1) * 100 - self.bar.n))
            progress.log(f"epoch {epoch + 1}/{self.epochs}: {raw:,} words ({effective:,} after down-sampling) in "
                         f"{seconds:.1f} s, {wps:,.0f} words/s")  # fmt: skip


def train(corpus: str | Path, out: str | Path, cfg: W2VConfig | None = None, **overrides) -> dict[str, Any]:
    """Train word2vec on ``corpus`` (one sentence a line, words separated by spaces); save into ``out``."""
    from gensim.models import Word2Vec

    if cfg is None or overrides:
        cfg = from_dict(W2VConfig, overrides, base=cfg)
    corpus, out = Path(corpus), Path(out)
    _check_corpus(corpus)
    _check_out(out)
    workers = cfg.workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    model = Word2Vec(vector_size=cfg.dim, window=cfg.window, min_count=cfg.min_count, sg=int(cfg.sg), hs=0,
                     negative=cfg.negative, workers=workers, seed=cfg.seed, sample=cfg.sample, alpha=cfg.alpha,
                     epochs=cfg.epochs)  # fmt: skip
    gensim_log = logging.getLogger("gensim.models.word2vec")
    handler = _GensimProgress(cfg.epochs)
    old_level, old_propagate = gensim_log.level, gensim_log.propagate
    gensim_log.addHandler(handler)
    gensim_log.setLevel(logging.INFO)
    gensim_log.propagate = False  # gensim's INFO lines are turned into the bar and epoch lines above
    t0 = time.perf_counter()
    try:
        model.build_vocab(corpus_file=str(corpus))
        if len(model.wv) == 0:
            raise UserError(f"no word occurs {cfg.min_count} times or more in {corpus} "
                            f"({model.corpus_total_words:,} words in all)", "lower --min-count")  # fmt: skip
        t_vocab = time.perf_counter() - t0
        progress.log(f"vocabulary: {len(model.wv):,} words (min count {cfg.min_count}) from "
                     f"{model.corpus_total_words:,} words in {t_vocab:.1f} s")  # fmt: skip
        t1 = time.perf_counter()
        trained, raw = model.train(corpus_file=str(corpus), total_examples=model.corpus_count,
                                   total_words=model.corpus_total_words, epochs=cfg.epochs)  # fmt: skip
        t_train = time.perf_counter() - t1
    finally:
        gensim_log.removeHandler(handler)
        gensim_log.setLevel(old_level)
        gensim_log.propagate = old_propagate
        handler.bar.close()
    meta = {
        "kind": KIND, "corpus": str(corpus.resolve()), "config": asdict(cfg), "workers": workers,
        "vocab_size": len(model.wv), "corpus_words": model.corpus_total_words, "corpus_lines": model.corpus_count,
        "trained_words": int(trained), "train_seconds": round(t_train, 3), "vocab_seconds": round(t_vocab, 3),
        "words_per_sec": round(raw / t_train, 1) if t_train else None, "gensim": _gensim_version(),
    }  # fmt: skip
    meta = _save(model, out, meta, cfg.format)
    return {**meta, "out": str(out)}


def _gensim_version() -> str:
    import gensim

    return gensim.__version__


def _save(model, out: Path, meta: dict, fmt: str) -> dict:
    """Write the model directory beside ``out`` and rename it into place (an old model is replaced whole)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        model.save(str(tmp / "word2vec.model"))
        model.wv.save(str(tmp / "vectors.kv"))
        files = ["word2vec.model", "vectors.kv"]
        if fmt != "none":
            name = "vectors.txt" if fmt == "text" else "vectors.bin"
            model.wv.save_word2vec_format(str(tmp / name), binary=fmt == "binary")
            files.append(name)
        meta = {**meta, "files": files}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        for p in tmp.iterdir():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def load(path: str | Path):
    """KeyedVectors from a model directory, a ``.kv``/``.model`` file (gensim pickles: load only models you
    trust), or a word2vec ``.txt``/``.vec``/``.bin`` file."""
    from gensim.models import KeyedVectors, Word2Vec

    p = Path(path)
    if not p.exists():
        raise UserError(f"model {str(p)!r} does not exist", TRAIN_HINT)
    try:
        if p.is_dir():
            if (p / "vectors.kv").is_file():
                return KeyedVectors.load(str(p / "vectors.kv"), mmap="r")
            if (p / "word2vec.model").is_file():
                return Word2Vec.load(str(p / "word2vec.model"), mmap="r").wv
            raise UserError(f"{p} is not a word2vec model directory (no vectors.kv)", TRAIN_HINT)
        if p.suffix == ".kv":
            return KeyedVectors.load(str(p), mmap="r")
        if p.suffix == ".model":
            return Word2Vec.load(str(p), mmap="r").wv
        if p.suffix in (".bin", ".txt", ".vec"):
            return KeyedVectors.load_word2vec_format(str(p), binary=p.suffix == ".bin")
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"cannot read model {p}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                        TRAIN_HINT) from None  # fmt: skip
    raise UserError(f"{p}: unknown model file type {p.suffix!r}", "give a model directory, a .kv, .model, .bin or .txt")


def _require(wv, words: list[str]) -> None:
    for w in words:
        if w not in wv.key_to_index:
            raise UserError(f"{w!r} is not in the vocabulary ({len(wv):,} words)", suggest(wv, w))


def suggest(wv, word: str, n: int = 3) -> str:
    """Close spellings from the vocabulary (its 200,000 most frequent words), or a general hint."""
    import difflib

    if word.lower() in wv.key_to_index and word.lower() != word:
        return f"did you mean {word.lower()!r}?"
    pool = [w for w in wv.index_to_key[:200_000] if abs(len(w) - len(word)) <= 2]
    found = difflib.get_close_matches(word, pool, n=n, cutoff=0.6)
    if found:
        return f"did you mean {', '.join(repr(f) for f in found)}?"
    return "no close spelling in the vocabulary; words rarer than --min-count are left out"


def similar(model, words: str | list[str], topn: int = 10, negative: list[str] | None = None) -> dict[str, Any]:
    """The ``topn`` nearest words (cosine) to a word, or to the sum of several minus ``negative``."""
    wv = model if hasattr(model, "key_to_index") else load(model)
    words = [words] if isinstance(words, str) else list(words)
    negative = list(negative or [])
    _require(wv, words + negative)
    if topn < 1:
        raise UserError(f"topn must be >= 1, got {topn}")
    found = wv.most_similar(positive=words, negative=negative, topn=topn)
    return {"query": words, "negative": negative, "similar": [{"word": w, "score": round(float(s), 4)} for w, s in found]}


def analogy(model, a: str, b: str, c: str, topn: int = 5) -> dict[str, Any]:
    """``a`` is to ``b`` as ``c`` is to ? (3CosAdd: nearest to b - a + c, the three inputs excluded)."""
    wv = model if hasattr(model, "key_to_index") else load(model)
    _require(wv, [a, b, c])
    found = wv.most_similar(positive=[b, c], negative=[a], topn=topn)
    return {"a": a, "b": b, "c": c, "answers": [{"word": w, "score": round(float(s), 4)} for w, s in found]}


def default_pairs() -> str:
    from gensim.test.utils import datapath

    return datapath("wordsim353.tsv")


def default_analogies() -> str:
    from gensim.test.utils import datapath

    return datapath("questions-words.txt")


def evaluate(model, pairs: str | Path | None = None, analogies: str | Path | None = None,
             restrict_vocab: int = 300_000) -> dict[str, Any]:  # fmt: skip
    """Word-pair similarity (Spearman, Pearson vs human scores) and analogy accuracy, each with its OOV ratio
    (the share of pairs or questions skipped because a word is not among the ``restrict_vocab`` most frequent).
    With neither file given both gensim's bundled English sets are used (wordsim353, Google analogies)."""
    wv = model if hasattr(model, "key_to_index") else load(model)
    if pairs is None and analogies is None:
        pairs, analogies = default_pairs(), default_analogies()
    result: dict[str, Any] = {"vocab_size": len(wv)}
    if pairs is not None:
        result["pairs"] = _eval_pairs(wv, Path(pairs), restrict_vocab)
    if analogies is not None:
        result["analogies"] = _eval_analogies(wv, Path(analogies), restrict_vocab)
    return result


def _readable(path: Path, what: str) -> None:
    if not path.is_file():
        raise UserError(f"{what} file {str(path)!r} {not_found(path)}",
                        "pairs: 'word1<TAB>word2<TAB>score' lines; analogies: ': section' then 'a b c d' lines")  # fmt: skip


def _eval_pairs(wv, path: Path, restrict_vocab: int) -> dict[str, Any]:
    _readable(path, "pairs")
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line and not line.startswith("#") and len(line.split("\t")) == 3:
            total += 1
    if total == 0:
        raise UserError(f"{path} holds no word pairs", "expected 'word1<TAB>word2<TAB>score' lines ('#' comments)")
    out: dict[str, Any] = {"file": str(path), "pairs": total}
    try:
        pearson, spearman, oov = wv.evaluate_word_pairs(str(path), restrict_vocab=restrict_vocab)
    except ValueError:  # gensim: no pair has both words in the vocabulary
        return {**out, "used": 0, "oov_ratio": 1.0, "spearman": None, "spearman_p": None, "pearson": None,
                "pearson_p": None}  # fmt: skip
    return {**out, "used": round(total * (1 - oov / 100)), "oov_ratio": round(oov / 100, 4),
            "spearman": round(float(spearman.statistic), 4), "spearman_p": float(spearman.pvalue),
            "pearson": round(float(pearson.statistic), 4), "pearson_p": float(pearson.pvalue)}  # fmt: skip


def _eval_analogies(wv, path: Path, restrict_vocab: int) -> dict[str, Any]:
    _readable(path, "analogies")
    total = sum(1 for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()
                if ln.strip() and not ln.startswith(":") and len(ln.split()) == 4)  # fmt: skip
    if total == 0:
        raise UserError(f"{path} holds no analogy questions", "expected ': section' lines, then 'a b c d' lines")
    try:
        score, sections = wv.evaluate_word_analogies(str(path), restrict_vocab=restrict_vocab)
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    total_section = sections[-1] if sections else {"correct": [], "incorrect": []}
    correct, used = len(total_section["correct"]), len(total_section["correct"]) + len(total_section["incorrect"])
    rows = [{"section": s["section"], "correct": len(s["correct"]), "used": len(s["correct"]) + len(s["incorrect"])}
            for s in sections[:-1]]  # fmt: skip
    return {"file": str(path), "questions": total, "used": used, "correct": correct,
            "accuracy": round(correct / used, 4) if used else None, "oov_ratio": round(1 - used / total, 4),
            "sections": rows}  # fmt: skip


def render_similar(r: dict) -> str:
    head = " + ".join(r["query"]) + "".join(f" - {w}" for w in r["negative"])
    return "\n".join([f"nearest to {head}:"] + [f"  {x['score']:.3f}  {x['word']}" for x in r["similar"]])


def render_analogy(r: dict) -> str:
    lines = [f"{r['a']} : {r['b']} :: {r['c']} : ?"]
    return "\n".join(lines + [f"  {x['score']:.3f}  {x['word']}" for x in r["answers"]])


def render_evaluate(r: dict) -> str:
    lines = [f"vocabulary: {r['vocab_size']:,} words"]
    if "pairs" in r:
        p = r["pairs"]
        if p["spearman"] is None:
            lines.append(f"word pairs ({Path(p['file']).name}): no pair has both words in the vocabulary")
        else:
            lines.append(f"word pairs ({Path(p['file']).name}): Spearman {p['spearman']:.3f} (p={p['spearman_p']:.2g}), "
                         f"Pearson {p['pearson']:.3f}, {p['used']}/{p['pairs']} pairs used "
                         f"(OOV {100 * p['oov_ratio']:.1f}%)")  # fmt: skip
    if "analogies" in r:
        a = r["analogies"]
        acc = f"{100 * a['accuracy']:.1f}%" if a["accuracy"] is not None else "-"
        lines.append(f"analogies ({Path(a['file']).name}): accuracy {acc} ({a['correct']}/{a['used']} answered, "
                     f"OOV {100 * a['oov_ratio']:.1f}% of {a['questions']} questions)")  # fmt: skip
    return "\n".join(lines)


def render_train(r: dict) -> str:
    wps = f"{r['words_per_sec']:,.0f}" if r.get("words_per_sec") else "-"
    return (f"saved {r['out']}: {r['vocab_size']:,} words x {r['config']['dim']} dims, "
            f"{r['corpus_words']:,} corpus words x {r['config']['epochs']} epochs in {r['train_seconds']:.1f} s "
            f"({wps} words/s, {r['workers']} worker(s))")  # fmt: skip
