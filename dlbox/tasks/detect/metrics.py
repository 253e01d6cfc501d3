"""COCO box metrics, strictly through pycocotools' COCOeval (crowd regions kept, nothing rounded)."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

from dlbox.data import coco
from dlbox.data.coco import AREA_LARGE, AREA_SMALL

# COCOeval.stats order for iouType="bbox".
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def coco_eval(gt: dict[str, Any], detections: list[dict[str, Any]], image_ids: list[int] | None = None) -> dict[str, Any]:
    """Metrics of ``detections`` (COCO results: image_id, category_id, bbox [x, y, w, h], score) against ``gt``.

    Returns AP, AP50, AP75, APs/APm/APl, AR1/AR10/AR100 (fractions in [0, 1]) and ``per_class`` AP (IoU
    0.50:0.95) by category name. A value COCO cannot compute (no ground truth in that size range) is None.
    ``image_ids`` restricts the evaluation to those images (default: all of ``gt``).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = coco.with_defaults(gt)
    ids = sorted(image_ids) if image_ids is not None else sorted(int(im["id"]) for im in gt["images"])
    names = coco.categories_by_id(gt)
    if not detections:
        # COCO's loadRes cannot take an empty list; no detections means zero precision and recall wherever
        # there is ground truth (None where there is none, as COCOeval reports it).
        wanted = set(ids)
        real = [a for a in gt["annotations"] if not a["iscrowd"] and int(a["image_id"]) in wanted]
        ranges = {"s": (0, AREA_SMALL), "m": (AREA_SMALL, AREA_LARGE), "l": (AREA_LARGE, float("inf"))}
        stats = {}
        for k in STAT_NAMES:
            r = ranges.get(k[-1]) if k[-1] in "sml" else None
            has = any(r[0] <= a["area"] < r[1] for a in real) if r else bool(real)
            stats[k] = 0.0 if has else None
        per_class = {names[c]: (0.0 if any(int(a["category_id"]) == c for a in real) else None) for c in sorted(names)}
        return {**stats, "per_class": per_class, "detections": 0, "images": len(ids)}
    quiet = io.StringIO()  # pycocotools prints progress on stdout, which --json keeps for the result
    with contextlib.redirect_stdout(quiet):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        cd = cg.loadRes([dict(d) for d in detections])
        ev = COCOeval(cg, cd, iouType="bbox")
        ev.params.imgIds = ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = {k: (float(v) if v >= 0 else None) for k, v in zip(STAT_NAMES, ev.stats, strict=True)}
    # precision: (IoU thresholds T, recall points R, categories K, area ranges A, max dets M); -1 = no GT.
    precision = ev.eval["precision"]
    per_class = {}
    for k, cid in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        per_class[names[cid]] = float(np.mean(p[p > -1])) if (p > -1).any() else None
    return {**stats, "per_class": per_class, "detections": len(detections), "images": len(ids)}


def to_coco_results(image_id: int, boxes: np.ndarray, scores: np.ndarray, category_ids: np.ndarray) -> list[dict[str, Any]]:
    """boxes (K, 4) xyxy in original image pixels -> COCO result dicts (xywh)."""
    out = []
    for (x1, y1, x2, y2), s, c in zip(boxes.tolist(), scores.tolist(), category_ids.tolist(), strict=True):
        out.append({"image_id": int(image_id), "category_id": int(c), "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(s)})
    return out


def render(result: dict[str, Any]) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}"

    lines = [f"{k:<6} {pct(result.get(k)):>7}" for k in ("AP", "AP50", "AP75", "APs", "APm", "APl") if k in result]
    if result.get("per_class"):
        width = max(len(c) for c in result["per_class"])
        lines.append("")
        lines.append(f"{'class':<{width}}  {'AP':>7}")
        lines += [f"{c:<{width}}  {pct(v):>7}" for c, v in result["per_class"].items()]
    lines.append("")
    lines.append(f"{result.get('images', '?')} images, {result.get('detections', '?')} detections; "
                 "AP = COCO mAP@[.5:.95] in %, computed by pycocotools")  # fmt: skip
    return "\n".join(lines)
