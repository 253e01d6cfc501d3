"""`dlbox detect evaluate`: COCO metrics (pycocotools) of a run or an ONNX export on a split of a COCO directory."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dlbox.base.errors import UserError
from dlbox.base.progress import bar
from dlbox.data import coco
from dlbox.data.remote import resolve_data
from dlbox.tasks.detect.data import CocoDetection, load_split
from dlbox.tasks.detect.inference import Detector, load_detector, set_inference_threads
from dlbox.tasks.detect.metrics import coco_eval, to_coco_results


def run_detector(det: Detector, ds: CocoDetection, batch_size: int = 8, score_thresh: float | None = None) -> list[dict[str, Any]]:
    """COCO results (original image pixels, the dataset's category ids) for every image of ``ds``."""
    from dlbox.tasks.detect.inference import SCORE_THRESH

    id_of = {i: cid for cid, i in ds.cat_index.items()}  # class index -> category id of this json
    results: list[dict[str, Any]] = []
    with bar(len(ds), "evaluate", unit="img") as pbar:
        for start in range(0, len(ds), batch_size):
            idx = list(range(start, min(start + batch_size, len(ds))))
            items = [ds[i] for i in idx]
            images = torch.stack([x for x, _ in items])  # (B, 3, S, S)
            dets = det.detect(images, score_thresh or SCORE_THRESH)
            for i, (boxes, scores, labels), (_, t) in zip(idx, dets, items, strict=True):
                im = ds.images[i]
                boxes = boxes / float(t["scale"])
                boxes[:, 0::2] = boxes[:, 0::2].clip(0, im["width"])
                boxes[:, 1::2] = boxes[:, 1::2].clip(0, im["height"])
                keep = np.array([int(k) in id_of for k in labels], dtype=bool)
                cats = np.array([id_of[int(k)] for k in labels[keep]], dtype=np.int64)
                results += to_coco_results(int(im["id"]), boxes[keep], scores[keep], cats)
            pbar.update(len(items))
    return results


def evaluate(source: str, data: str, split: str = "val", batch_size: int = 8, threads: int | None = None) -> dict[str, Any]:
    """AP, AP50, AP75, APs/APm/APl, AR1/10/100 and per-class AP of ``source`` on ``split`` of ``data``."""
    set_inference_threads(threads)
    gt, root, path = load_split(str(resolve_data(data)), split)  # s3://bucket/prefix: synced locally first
    if not gt["annotations"]:
        raise UserError(f"{path} has an empty annotation list: nothing to evaluate against", "evaluate on a split with labelled boxes (`dlbox data coco stats DATA` shows counts)")
    coco.validate_for_training(gt, str(path))  # a negative-width box or unknown category would be scored
    det = load_detector(source, threads=threads)  # after the data is checked: a bad json costs no model load
    ds = CocoDetection(gt, root, det.classes, det.img_size, name=str(path), cache=False)
    results = run_detector(det, ds, batch_size)
    # Classes the model knows but this json lacks are simply absent; the data's classes must be the model's.
    metrics = coco_eval(gt, results)
    return {"source": det.source, "data": str(path), "split": split, "model": det.model_name,
            "img_size": det.img_size, **metrics}  # fmt: skip

