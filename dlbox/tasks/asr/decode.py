"""CTC decoding of one utterance's (T', V) log-probabilities: greedy and prefix beam search, each token with the
frame it was emitted at (the CTC alignment), in seconds as ``frame * subsampling * 10 ms`` like sherpa-onnx."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

BLANK = 0


@dataclass
class Hypothesis:
    ids: list[int]
    frames: list[int]  # the output frame at which each token started
    score: float  # log-probability (greedy: of the best path; beam: of the prefix, summed over its paths)


def greedy(log_probs: np.ndarray) -> Hypothesis:
    """Best path: argmax per frame, repeats merged, blanks dropped."""
    best = log_probs.argmax(axis=-1)
    ids, frames, prev = [], [], BLANK
    for t, k in enumerate(best.tolist()):
        if k != BLANK and k != prev:
            ids.append(k)
            frames.append(t)
        prev = k
    return Hypothesis(ids, frames, float(log_probs[np.arange(len(best)), best].sum()))


def _logadd(*xs: float) -> float:
    m = max(xs)
    if m == -math.inf:
        return m
    return m + math.log(sum(math.exp(x - m) for x in xs))


def _add(beams: dict, prefix: tuple[int, ...], pb: float, pnb: float, frames: tuple[int, ...]) -> None:
    cur = beams.get(prefix)
    if cur is None:
        beams[prefix] = [pb, pnb, frames]
    else:
        cur[0], cur[1] = _logadd(cur[0], pb), _logadd(cur[1], pnb)


def prefix_beam_search(log_probs: np.ndarray, beam: int = 4) -> Hypothesis:
    """CTC prefix beam search (Hannun et al. 2014) without a language model.

    Each prefix keeps the log-probability of its paths ending in blank (pb) and in its last token (pnb); only
    the ``beam`` most likely tokens of each frame are expanded."""
    neg = -math.inf
    # prefix -> (pb, pnb, frames)
    beams: dict[tuple[int, ...], tuple[float, float, tuple[int, ...]]] = {(): (0.0, neg, ())}
    for t in range(log_probs.shape[0]):
        row = log_probs[t]
        top = np.argsort(row)[::-1][:beam].tolist()
        nxt: dict[tuple[int, ...], list] = {}
        add = functools.partial(_add, nxt)
        for prefix, (pb, pnb, frames) in beams.items():
            total = _logadd(pb, pnb)
            for k in top:
                p = float(row[k])
                if k == BLANK:
                    add(prefix, total + p, neg, frames)
                    continue
                last = prefix[-1] if prefix else None
                ext = (*prefix, k)
                if k == last:
                    add(prefix, neg, pnb + p, frames)  # the same token continues
                    add(ext, neg, pb + p, (*frames, t))  # a new token after a blank
                else:
                    add(ext, neg, total + p, (*frames, t))
        ranked = sorted(nxt.items(), key=lambda kv: _logadd(kv[1][0], kv[1][1]), reverse=True)[:beam]
        beams = {k: (v[0], v[1], v[2]) for k, v in ranked}
    prefix, (pb, pnb, frames) = max(beams.items(), key=lambda kv: _logadd(kv[1][0], kv[1][1]))
    return Hypothesis(list(prefix), list(frames), _logadd(pb, pnb))


def decode(log_probs: np.ndarray, beam: int = 1) -> Hypothesis:
    """``beam`` 1: greedy; more: prefix beam search with that width."""
    return greedy(log_probs) if beam <= 1 else prefix_beam_search(log_probs, beam)
