"""CTC decoding (greedy, prefix beam search, timestamps) and error counting (S/D/I)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from dlbox.tasks.asr.decode import greedy, prefix_beam_search
from dlbox.tasks.asr.metrics import align, cer, wer


def frames(*rows) -> np.ndarray:
    """Per-frame probabilities (rows) -> (T, V) log-probabilities."""
    p = np.asarray(rows, dtype=np.float64)
    return np.log(p / p.sum(axis=1, keepdims=True))


def test_greedy_merges_repeats_drops_blanks_and_keeps_the_first_frame_of_each_token():
    # best path: 1 1 0 1 2 2 0 -> tokens 1, 1, 2 starting at frames 0, 3, 4
    lp = frames(*[[0.1, 0.8, 0.1]] * 2, [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], *[[0.1, 0.1, 0.8]] * 2, [0.8, 0.1, 0.1])
    h = greedy(lp)
    assert h.ids == [1, 1, 2] and h.frames == [0, 3, 4]


def brute_force_best(lp: np.ndarray) -> tuple[int, ...]:
    """The label sequence with the highest total probability over all its CTC paths (every path enumerated)."""
    scores: dict[tuple[int, ...], float] = {}
    t, v = lp.shape
    for path in itertools.product(range(v), repeat=t):
        labels = tuple(k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k))
        p = math.exp(sum(lp[i, k] for i, k in enumerate(path)))
        scores[labels] = scores.get(labels, 0.0) + p
    return max(scores, key=scores.get)


def test_prefix_beam_search_finds_the_most_probable_labelling_where_greedy_does_not():
    # greedy picks blank every frame (""), but "1" summed over its paths is more probable
    lp = frames([0.4, 0.35, 0.25], [0.4, 0.35, 0.25], [0.4, 0.35, 0.25])
    assert greedy(lp).ids == []
    assert brute_force_best(lp) == (1,)
    assert prefix_beam_search(lp, beam=3).ids == [1]


def test_prefix_beam_search_without_pruning_equals_exhaustive_search_on_random_posteriors():
    rng = np.random.default_rng(0)
    for _ in range(20):
        lp = frames(*rng.dirichlet(np.ones(3) * 0.7, size=5))
        assert tuple(prefix_beam_search(lp, beam=1000).ids) == brute_force_best(lp)


def test_error_counts_separate_substitutions_deletions_and_insertions():
    e = cer("一二三四", "一三三四五")  # 二->三 substituted, 五 inserted
    assert (e.sub, e.dels, e.ins, e.ref) == (1, 0, 1, 4) and e.rate == 0.5
    e = cer("一二三四", "一四")
    assert (e.sub, e.dels, e.ins) == (0, 2, 0)
    assert cer("一 二", "一二").total == 0  # spaces do not count for Mandarin
    w = wer("the cat sat", "the bat sat down")
    assert (w.sub, w.dels, w.ins, w.ref) == (1, 0, 1, 3)
    assert align([], [1, 2]).ins == 2
