"""`dlbox detect export`: a run -> one file holding the whole detector, through the one exporter
(dlbox.runtime.export), checked against PyTorch.

The graph takes (N, 3, S, S) RGB in [0, 1] (letterboxed, see data.letterbox) and returns, for the whole batch,
boxes (K, 4) xyxy in input pixels, scores (K,), class indices (K,) and batch_index (K,) (the image each
detection belongs to, like ONNX NonMaxSuppression's own output): decoding, top-k, threshold, class-wise NMS and
the per-image cap are in the graph, so onnxruntime needs no Python post-processing. N is free for tinydet; the
torchvision detectors keep N = 1 (their graph unrolls the image list). Class names, input size and thresholds
travel in the file's metadata (docs/export.md).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.ops import batched_nms

from dlbox.base.errors import UserError
from dlbox.runtime import export as exporter
from dlbox.tasks.detect import models
from dlbox.tasks.detect.data import letterbox, read_image, to_tensor
from dlbox.tasks.detect.inference import (
    MAX_DET,
    NMS_IOU,
    SCORE_THRESH,
    Detections,
    Detector,
    export_meta,
    load_detector,
)

OPSET = 17
OUTPUTS = ["boxes", "scores", "labels", "batch_index"]


def postprocess_batch(boxes: torch.Tensor, scores: torch.Tensor, score_thresh: float, iou_thresh: float,
                      pre_nms: int = 1000, max_det: int = 100):  # fmt: skip
    """tinydet.postprocess for a batch at once, traceable with a free batch size: boxes (N, A, 4), scores
    (N, A, C) -> boxes (K, 4), scores (K,), labels (K,), batch_index (K,), by score within each image. Per
    image it keeps what ``postprocess`` keeps: top ``pre_nms`` (anchor, class) scores over the threshold,
    class-wise NMS (offset by image too), then the first ``max_det``."""
    n, a, c = scores.shape
    k = min(pre_nms, a * c)
    top, idx = scores.reshape(n, a * c).topk(k, dim=1)  # (N, k)
    image = torch.arange(n, device=scores.device).unsqueeze(1).expand(n, k)
    top, idx, image = top.reshape(-1), idx.reshape(-1), image.reshape(-1)
    keep = top > score_thresh
    top, idx, image = top[keep], idx[keep], image[keep]
    anchor = torch.div(idx, c, rounding_mode="floor")
    label = idx - anchor * c
    b = boxes[image, anchor]
    kept = batched_nms(b, top, image * c + label, iou_thresh)  # by decreasing score
    b, top, label, image = b[kept], top[kept], label[kept], image[kept]
    onehot = (image.unsqueeze(1) == torch.arange(n, device=image.device).unsqueeze(0)).long()  # (K, N)
    rank = (onehot.cumsum(0) * onehot).sum(1) - 1  # place of each detection within its image
    sel = rank < max_det
    return b[sel], top[sel], label[sel], image[sel]


class TinydetExport(nn.Module):
    """(N, 3, S, S) in [0, 1] -> boxes, scores, labels, batch_index: the whole tinydet detector."""

    def __init__(self, model: nn.Module, score_thresh: float, iou_thresh: float, max_det: int):
        super().__init__()
        self.model, self.score_thresh, self.iou_thresh, self.max_det = model, score_thresh, iou_thresh, max_det

    def forward(self, images: torch.Tensor):
        boxes, scores = self.model.detect(images)
        return postprocess_batch(boxes, scores, self.score_thresh, self.iou_thresh, max_det=self.max_det)


class TorchvisionExport(nn.Module):
    """A torchvision detector with the same outputs (labels as 0-based class indices), one image per call."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        out = self.model([images[0]])[0]
        return out["boxes"], out["scores"], out["labels"] - 1, torch.zeros_like(out["labels"])


def export_module(det: Detector, score_thresh: float = SCORE_THRESH) -> nn.Module:
    if det.model_name == models.DEFAULT_MODEL:
        return TinydetExport(det.model, score_thresh, NMS_IOU, MAX_DET).eval()
    return TorchvisionExport(det.model).eval()


def graph(det: Detector, img_size: int, score_thresh: float = SCORE_THRESH) -> exporter.Graph:
    """The export graph; ``score_thresh``: what the graph keeps (tests lower it to compare an untrained model)."""
    dynamic = det.model_name == models.DEFAULT_MODEL
    meta = exporter.ExportMeta.from_dict(export_meta(det, img_size, dynamic))
    meta.extra["score_thresh"] = score_thresh
    images = [to_tensor(letterbox(im, img_size)[0]) for im in _scenes(2 if dynamic else 1)]
    axes = {n: {0: "detections"} for n in OUTPUTS}
    return exporter.Graph(export_module(det, score_thresh), (torch.stack(images),), ["images"], OUTPUTS, meta, dynamic_axes=axes)


def write_onnx(det: Detector, path: Path, img_size: int) -> None:
    g = graph(det, img_size)
    try:
        exporter.export(g, path, "onnx", check=False)
    except UserError as e:
        raise UserError(e.message, "tinydet and the Faster R-CNN models export; try another --model") from None


def _scenes(n: int) -> list:
    from dlbox.data.shapes_det import CLASSES, render_scene

    rng = np.random.default_rng(0)
    return [render_scene(rng, CLASSES[:3])[0] for _ in range(n)]


def parity_images(paths: list[str] | None, img_size: int, n: int = 4) -> list[torch.Tensor]:
    """Letterboxed (3, S, S) tensors: the given images, else generated shapes-det scenes."""
    if paths:
        from dlbox.tasks.detect.predict import list_images

        return [to_tensor(letterbox(read_image(p), img_size)[0]) for p in list_images(paths)]
    return [to_tensor(letterbox(im, img_size)[0]) for im in _scenes(n)]


def compare(a: list[Detections], b: list[Detections], min_score: float = 0.1) -> dict[str, Any]:
    """Every detection of ``a`` scoring >= min_score must have one in ``b`` with the same class, IoU >= 0.99
    and a score within 1e-3, and the other way round. Returns the worst IoU and score difference seen."""
    from torchvision.ops import box_iou

    worst_iou, worst_score, unmatched, compared = 1.0, 0.0, 0, 0
    for (ba, sa, la), (bb, sb, lb) in zip(a, b, strict=True):
        for (b1, s1, l1), (b2, s2, l2) in (((ba, sa, la), (bb, sb, lb)), ((bb, sb, lb), (ba, sa, la))):
            for i in np.nonzero(s1 >= min_score)[0]:
                compared += 1
                same = np.nonzero(l2 == l1[i])[0]
                if len(same) == 0:
                    unmatched += 1
                    continue
                ious = box_iou(torch.as_tensor(b1[i : i + 1]).float(), torch.as_tensor(b2[same]).float())[0].numpy()
                j = int(np.argmax(ious))
                worst_iou = min(worst_iou, float(ious[j]))
                worst_score = max(worst_score, abs(float(s1[i]) - float(s2[same[j]])))
                unmatched += int(ious[j] < 0.99 or abs(float(s1[i]) - float(s2[same[j]])) > 1e-3)
    return {"compared": compared, "unmatched": unmatched, "min_iou": worst_iou, "max_score_diff": worst_score,
            "ok": unmatched == 0}  # fmt: skip


def check_parity(det: Detector, onnx_path: Path, images: list[torch.Tensor]) -> dict[str, Any]:
    onnx_det = load_detector(onnx_path)
    batch = torch.stack(images)
    return {"images": len(images), **compare(det.detect(batch), onnx_det.detect(batch))}


def export(source: str, fmt: str = "onnx", out: str | None = None, img_size: int | None = None,
           check_images: list[str] | None = None, register: str | None = None) -> dict[str, Any]:
    """Export ``source`` (a run or checkpoint) and check parity on ``check_images`` (or generated scenes);
    ``register``: also the next version of that name in MLflow's model registry."""
    from dlbox.models import mlflow_registry

    if register:
        mlflow_registry.check_name(register)
    if fmt != "onnx":
        raise UserError(f"unknown export format {fmt!r}", "use --format onnx")
    det = load_detector(source)
    if det.model is None:
        raise UserError(f"{source} is already an exported model", "export from a run directory or checkpoint")
    size = img_size or det.img_size
    if size % 32:
        raise UserError(f"--img-size must be a multiple of 32, got {size}")
    src = Path(source)
    run_dir = src if src.is_dir() else src.parent.parent
    path = Path(out) if out else run_dir / ("model.onnx" if size == det.img_size else f"model-{size}.onnx")
    write_onnx(det, path, size)
    parity = check_parity(det, path, parity_images(check_images, size))
    res = {"file": str(path), "format": fmt, "model": det.model_name, "img_size": size, "classes": det.classes,
           "parity": parity}  # fmt: skip
    registered = mlflow_registry.after_export(path, run_dir, register)  # issue 24: MLflow run / registry
    return {**res, "registered": registered} if registered else res


def export_temp(det: Detector, img_size: int) -> Path:
    """An ONNX export in a temporary folder (for `bench RUN`)."""
    path = Path(tempfile.mkdtemp(prefix="dlbox-detect-")) / f"model-{img_size}.onnx"
    write_onnx(det, path, img_size)
    return path
