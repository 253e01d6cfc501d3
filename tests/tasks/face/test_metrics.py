"""Verification metrics: LFW's 10-fold protocol, TAR at FAR, pairs files, drawn pairs."""

from __future__ import annotations

import numpy as np
import pytest

from dlbox.base.errors import UserError
from dlbox.tasks.face import metrics
from dlbox.tasks.face.data import draw_pairs
from dlbox.tasks.face.evaluate import read_pairs


def test_ten_fold_accuracy_equals_the_hand_computation():
    # 10 folds of 2 pairs (one same, one different). Folds 0-8 separate cleanly: same at 0.2 + 0.01k, different
    # at 1.0 + 0.01k. Fold 9 is inverted: same at 1.5, different at 0.5.
    same_d = [0.2 + 0.01 * k for k in range(9)] + [1.5]
    diff_d = [1.0 + 0.01 * k for k in range(9)] + [0.5]
    dist = np.array([d for pair in zip(same_d, diff_d, strict=True) for d in pair])
    same = np.array([True, False] * 10)
    folds = np.repeat(np.arange(10), 2)
    r = metrics.kfold_accuracy(dist, same, folds)
    # By hand. Testing fold k < 9: the other folds' best threshold makes one error (the 1.5 same pair) anywhere
    # between their largest clean same distance and 0.5; the smallest candidate is the midpoint,
    # (0.28 + 0.5) / 2 = 0.39 (for k = 8 the largest is 0.27: 0.385); fold k is then right: accuracy 1.
    # Testing fold 9: folds 0-8 are perfect between 0.28 and 1.0, midpoint 0.64; fold 9 is all wrong: 0.
    assert r["fold_threshold"] == pytest.approx([0.39] * 8 + [0.385, 0.64])
    assert r["fold_accuracy"] == [1.0] * 9 + [0.0]
    assert r["mean"] == pytest.approx(0.9) and r["std"] == pytest.approx(0.3)
    assert r["threshold"] == pytest.approx(0.39)  # over all 20 pairs: 19 right


def test_tar_at_far_takes_the_largest_threshold_within_the_false_accept_rate():
    diff = np.arange(1.0, 11.0)  # 10 different pairs at 1..10: FAR 0.1 allows one false accept (d < 2)
    same_d = np.array([0.5, 1.5, 2.5])
    dist = np.concatenate([same_d, diff])
    same = np.array([True] * 3 + [False] * 10)
    r = metrics.tar_at_far(dist, same, 0.1)
    assert r["threshold"] == 2.0 and r["far"] == pytest.approx(0.1) and r["tar"] == pytest.approx(2 / 3)
    assert r["resolved"]
    low = metrics.tar_at_far(dist, same, 1e-3)  # 10 pairs cannot resolve 1e-3: measured at FAR 0
    assert low["far"] == 0 and low["tar"] == pytest.approx(1 / 3) and not low["resolved"]


def test_roc_goes_from_origin_to_one_with_area_one_when_separable():
    fpr, tpr, auc = metrics.roc(np.array([0.1, 0.2, 0.9, 1.0]), np.array([True, True, False, False]))
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1) and auc == pytest.approx(1.0)


def test_lfw_pairs_file_is_read_with_its_folds(tmp_path):
    (tmp_path / "pairs.txt").write_text("2\t1\nAaron\t1\t2\nAaron\t1\tBob\t3\nCarl\t2\t4\nBob\t1\tCarl\t1\n")
    pairs, folds = read_pairs(tmp_path / "pairs.txt", tmp_path / "lfw")
    assert pairs[0] == (str(tmp_path / "lfw/Aaron/Aaron_0001.jpg"), str(tmp_path / "lfw/Aaron/Aaron_0002.jpg"), True)
    assert pairs[1][1] == str(tmp_path / "lfw/Bob/Bob_0003.jpg") and pairs[1][2] is False
    assert folds.tolist() == [0, 0, 1, 1]


def test_a_malformed_pairs_line_names_the_line(tmp_path):
    (tmp_path / "pairs.txt").write_text("1 1\nAaron 1 2\nAaron 1 Bob\n")
    with pytest.raises(UserError, match="line 3"):
        read_pairs(tmp_path / "pairs.txt")


def test_drawn_pairs_are_balanced_distinct_and_seeded():
    labels = np.repeat(np.arange(6), 4)  # 6 people, 4 photos each
    pairs = draw_pairs(labels, 40, seed=3)
    assert sum(s for *_, s in pairs) == 20 and len(pairs) == 40
    assert len({(a, b) for a, b, _ in pairs}) == 40
    assert all((labels[a] == labels[b]) == s for a, b, s in pairs)
    assert pairs == draw_pairs(labels, 40, seed=3) and pairs != draw_pairs(labels, 40, seed=4)
