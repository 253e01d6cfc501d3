"""Verification metrics on pair distances: the LFW 10-fold protocol, TAR at a FAR, the ROC curve.

A pair is called "same person" when the Euclidean distance of its unit embeddings is below the threshold.
"""

from __future__ import annotations

import numpy as np


def pair_distances(emb: np.ndarray, pairs) -> tuple[np.ndarray, np.ndarray]:
    """(P,) distances and (P,) same flags of (i, j, same) pairs over the rows of ``emb`` (N, D)."""
    i = np.array([p[0] for p in pairs], dtype=np.int64)
    j = np.array([p[1] for p in pairs], dtype=np.int64)
    same = np.array([bool(p[2]) for p in pairs])
    return np.linalg.norm(emb[i] - emb[j], axis=1), same


def accuracy(dist: np.ndarray, same: np.ndarray, threshold: float) -> float:
    return float(np.mean((dist < threshold) == same)) if len(dist) else float("nan")


def best_threshold(dist: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the highest accuracy on these pairs.

    Candidates: midway between consecutive distinct distances, and just outside both ends (so "all same" and
    "all different" are candidates too). Ties go to the smallest candidate (fewest false accepts)."""
    d = np.unique(dist)
    candidates = np.concatenate([[d[0] - 1e-6], (d[:-1] + d[1:]) / 2, [d[-1] + 1e-6]])
    accs = [accuracy(dist, same, t) for t in candidates]
    return float(candidates[int(np.argmax(accs))])


def kfold_accuracy(dist: np.ndarray, same: np.ndarray, folds: np.ndarray | None = None, k: int = 10) -> dict:
    """LFW's protocol: for each fold, the threshold is chosen on the other folds and applied to it.

    ``folds``: (P,) fold index of each pair (LFW's pairs.txt: its 10 sets); default ``k`` contiguous folds
    (``np.array_split``). Returns per-fold accuracies and thresholds, their mean and std (population, as
    LFW's results pages use), and the best threshold over all pairs (the one stored with the model)."""
    dist, same = np.asarray(dist, float), np.asarray(same, bool)
    if folds is None:
        folds = np.concatenate([np.full(len(c), n) for n, c in enumerate(np.array_split(np.arange(len(dist)), k))])
    folds = np.asarray(folds)
    accs, thresholds = [], []
    for f in np.unique(folds):
        test = folds == f
        if test.all():  # one fold only: nothing to choose a threshold on
            continue
        t = best_threshold(dist[~test], same[~test])
        thresholds.append(t)
        accs.append(accuracy(dist[test], same[test], t))
    accs_arr = np.array(accs)
    return {
        "mean": float(accs_arr.mean()) if len(accs) else float("nan"),
        "std": float(accs_arr.std()) if len(accs) else float("nan"),
        "fold_accuracy": [float(a) for a in accs], "fold_threshold": thresholds,
        "threshold": best_threshold(dist, same), "pairs": int(len(dist)),
    }  # fmt: skip


def tar_at_far(dist: np.ndarray, same: np.ndarray, far: float) -> dict:
    """True accept rate at the largest threshold whose false accept rate is at most ``far``.

    With D different pairs the FAR moves in steps of 1/D: below that, the threshold sits at the smallest
    different-pair distance (FAR 0), and ``resolved`` says the target could not be measured exactly."""
    dist, same = np.asarray(dist, float), np.asarray(same, bool)
    neg = np.sort(dist[~same])
    allowed = int(np.floor(far * len(neg)))  # how many false accepts are within the target
    t = neg[allowed] if allowed < len(neg) else np.inf  # accepted: d < t, so neg[allowed] itself is rejected
    return {"far_target": far, "tar": float(np.mean(dist[same] < t)), "far": float(np.mean(neg < t)),
            "threshold": float(t), "resolved": len(neg) >= 1 / far}  # fmt: skip


def roc(dist: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(FPR, TPR) over every threshold, from (0, 0) to (1, 1), and the area under the curve."""
    dist, same = np.asarray(dist, float), np.asarray(same, bool)
    ts = np.concatenate([[-np.inf], np.unique(dist), [np.inf]])
    tpr = np.array([np.mean(dist[same] <= t) for t in ts])
    fpr = np.array([np.mean(dist[~same] <= t) for t in ts])
    return fpr, tpr, float(np.trapezoid(tpr, fpr))
