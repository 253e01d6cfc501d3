"""A trained detector ready for inference, from a run, a checkpoint or an exported ONNX file.

``Detector.detect(images)`` takes letterboxed (N, 3, S, S) tensors in [0, 1] and returns, per image, boxes
(K, 4) xyxy in letterboxed pixels, scores (K,) and class indices (K,). tinydet's post-processing runs eagerly
here (``tinydet.postprocess``) and, batched, inside the exported graph (``export.postprocess_batch``); exports
open through ``dlbox.runtime.exported.load_exported``. ``predictor()`` serves a detector (``dlbox serve``) with
the rows `detect predict --json` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlbox.base.errors import UserError
from dlbox.engine import checkpoint
from dlbox.runtime.exported import RunsExported, is_export, load_exported
from dlbox.runtime.inputs import decode_image, default_name, float_option, no_more_options, square_batch
from dlbox.runtime.predictor import Sample, TensorSpec
from dlbox.tasks.detect import models, tinydet
from dlbox.tasks.detect.data import letterbox, to_tensor

Detections = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes (K, 4), scores (K,), class indices (K,)
SCORE_THRESH = 0.05  # below this nothing is kept (COCO evaluation needs the low-score tail, predict filters more)
NMS_IOU = 0.6
MAX_DET = 100


def set_inference_threads(threads: int | None) -> None:
    """Intra-op threads for PyTorch inference (onnxruntime sessions take theirs when opened)."""
    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)


@torch.no_grad()
def detect_torch(model: nn.Module, model_name: str, images: torch.Tensor, score_thresh: float = SCORE_THRESH) -> list[Detections]:
    """PyTorch inference, eval mode, for tinydet and torchvision detectors alike."""
    was_training = model.training
    model.eval()
    out: list[Detections] = []
    if model_name == models.DEFAULT_MODEL:
        inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        boxes, scores = inner.detect(images)  # (N, A, 4), (N, A, C)
        for b, s in zip(boxes.float(), scores.float(), strict=True):
            kb, ks, kl = tinydet.postprocess(b, s, score_thresh, NMS_IOU, max_det=MAX_DET)
            out.append((kb.cpu().numpy(), ks.cpu().numpy(), kl.cpu().numpy()))
    else:
        for r in model(list(images)):
            keep = r["scores"] >= score_thresh
            out.append((r["boxes"][keep].float().cpu().numpy(), r["scores"][keep].float().cpu().numpy(),
                        (r["labels"][keep] - 1).cpu().numpy()))  # fmt: skip
    model.train(was_training)
    return out


@dataclass
class Detector(RunsExported):
    classes: list[str]
    img_size: int
    model_name: str
    model: nn.Module | None = None
    exported: Any = None  # dlbox.runtime.exported.Exported of a dlbox export
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def detect(self, images: torch.Tensor, score_thresh: float = SCORE_THRESH) -> list[Detections]:
        if self.exported is None:
            return detect_torch(self.model, self.model_name, images, score_thresh)
        arr = images.numpy().astype(np.float32)
        step = self.exported.fixed_batch or len(arr)  # older exports and torchvision detectors: one image a call
        out = []
        for start in range(0, len(arr), step):
            res = self.exported.run({self.exported.inputs[0].name: arr[start : start + step]})
            boxes, scores, labels = res["boxes"], res["scores"], res["labels"].astype(np.int64)
            image = res["batch_index"] if "batch_index" in res else np.zeros(len(scores), np.int64)
            for i in range(min(step, len(arr) - start)):
                keep = (image == i) & (scores >= score_thresh)
                out.append((boxes[keep], scores[keep], labels[keep]))
        return out


def _from_checkpoint(path: Path, device: str = "cpu") -> Detector:
    state = checkpoint.load(path)
    meta = state.get("task_state") or {}
    if state.get("task") != "detect" or "classes" not in meta:
        raise UserError(f"{str(path)!r} is a {state.get('task', 'unknown')} checkpoint, not a detector",
                        "pass a run of `dlbox detect train`")  # fmt: skip
    model = models.create(meta["model_name"], len(meta["classes"]), int(meta["img_size"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise UserError(f"{str(path)!r} does not match {meta['model_name']}: {str(e).splitlines()[0][:150]}", "pass weights of that model, or the --model they were trained as") from None
    model.eval().to(device)
    return Detector(classes=list(meta["classes"]), img_size=int(meta["img_size"]), model_name=meta["model_name"],
                    model=model, source=str(path), meta=dict(meta))  # fmt: skip


def _from_export(path: Path, threads: int | None = None) -> Detector:
    """An export through the one loader (metadata of every dlbox version)."""
    ex = load_exported(path, threads=threads, task="detect")
    return Detector(classes=list(ex.meta["classes"]), img_size=int(ex.meta["inputs"][0]["size"]),
                    model_name=ex.meta["model_name"], exported=ex, source=str(path), meta=ex.meta)  # fmt: skip


def export_meta(det: Detector, img_size: int | None = None, dynamic_batch: bool = True) -> dict[str, Any]:
    """The export metadata (docs/export.md) of a detector: an export's own, else what exporting would write."""
    from dlbox.runtime.export import ExportMeta, image_input, weights_sha256

    if det.exported is not None:
        return det.exported.meta
    size = img_size or det.img_size
    meta = ExportMeta(
        "detect", det.model_name, [image_input("images", size, batch=-1 if dynamic_batch else 1)],
        classes=list(det.classes), dynamic_batch=dynamic_batch,
        preprocessing={"resize": "letterbox: longer side to size, pasted top-left on a gray size x size canvas",
                       "scale": 1 / 255, "channels": "RGB"},
        extra={"score_thresh": SCORE_THRESH, "nms_iou": NMS_IOU, "max_det": MAX_DET,
               "outputs": {"boxes": "(K, 4) xyxy input pixels", "scores": "(K,)", "labels": "(K,) class index",
                           "batch_index": "(K,) the image of each detection"}},
        weights_sha256=weights_sha256(det.model) if det.model is not None else "",
    )  # fmt: skip
    return meta.to_dict()


def load_detector(source: str | Path, device: str = "cpu", threads: int | None = None) -> Detector:
    """A run directory (its best.pt), a dlbox checkpoint, or an .onnx export (also models:/NAME/VERSION)."""
    from dlbox.models.weights import is_reference, resolve_weights

    if is_reference(source):  # models:/NAME/VERSION or @ALIAS: the registered export, downloaded once
        source = resolve_weights(source).path
    path = Path(source)
    if not path.exists():
        raise UserError(f"{str(source)!r} does not exist", "pass a run directory (runs/detect/NAME), a checkpoint or an .onnx file")
    if is_export(path):
        return _from_export(path, threads)
    return _from_checkpoint(checkpoint.resolve(path, "best.pt"), device)


def result_row(classes: list[str], found: Detections, scale: float, width: int, height: int,
               conf: float) -> dict[str, Any]:  # fmt: skip
    """Detections of one letterboxed image -> ``{"width", "height", "detections": [{"label", "score", "box"}]}``
    with boxes in the original image's pixels (what `detect predict --json` prints, less ``file``)."""
    boxes, scores, labels = found
    keep = scores >= conf
    boxes = boxes[keep] / scale
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    dets = [{"label": classes[int(k)], "score": float(s), "box": [float(v) for v in b]}
            for b, s, k in zip(boxes, scores[keep], labels[keep], strict=True)]  # fmt: skip
    return {"width": width, "height": height, "detections": dets}


class DetectPredictor:
    """An image -> its detections: the dict `detect predict --json` prints for it (with ``file`` when the
    sample's info has one). Options of ``predict``: ``conf`` (default 0.5, as the CLI's ``--conf``)."""

    task = "detect"

    def __init__(self, det: Detector, name: str):
        self.det, self.name = det, name
        self.meta = {**export_meta(det), "backend": det.backend}
        s = det.img_size
        self.inputs = [TensorSpec("images", "FP32", (-1, 3, s, s))]
        # tensor level: padded to MAX_DET per image, num_detections says how many are real
        self.outputs = [TensorSpec("boxes", "FP32", (-1, MAX_DET, 4)), TensorSpec("scores", "FP32", (-1, MAX_DET)),
                        TensorSpec("labels", "INT64", (-1, MAX_DET)), TensorSpec("num_detections", "INT32", (-1,))]  # fmt: skip

    def decode(self, payload: bytes, content_type: str | None = None, **options: Any) -> Sample:
        no_more_options(dict(options), "no decode options")
        im = decode_image(payload)
        canvas, scale = letterbox(im, self.det.img_size)
        return Sample(to_tensor(canvas), {"width": im.width, "height": im.height, "scale": scale})

    @torch.no_grad()
    def predict(self, samples: list[Sample], **options: Any) -> list[dict[str, Any]]:
        conf = float_option(options, "conf", 0.5, 0.0, 1.0)
        no_more_options(options, "conf")
        if not samples:
            return []
        found = self.det.detect(torch.stack([s.data for s in samples]), score_thresh=min(conf, SCORE_THRESH))
        out = []
        for s, f in zip(samples, found, strict=True):
            row = result_row(self.det.classes, f, s.info["scale"], s.info["width"], s.info["height"], conf)
            out.append({**({"file": s.info["file"]} if "file" in s.info else {}), **row})
        return out

    @torch.no_grad()
    def infer(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = square_batch(tensors, "images", self.det.img_size, "FP32 in [0, 1], letterboxed")
        n, k = len(x), MAX_DET
        out = {"boxes": np.zeros((n, k, 4), np.float32), "scores": np.zeros((n, k), np.float32),
               "labels": np.full((n, k), -1, np.int64), "num_detections": np.zeros(n, np.int32)}  # fmt: skip
        for i, (boxes, scores, labels) in enumerate(self.det.detect(torch.from_numpy(x))):
            m = min(len(scores), k)
            out["boxes"][i, :m], out["scores"][i, :m], out["labels"][i, :m] = boxes[:m], scores[:m], labels[:m]
            out["num_detections"][i] = m
        return out


def predictor(source: str | Path, name: str | None = None, threads: int | None = None) -> DetectPredictor:
    """A ``dlbox.runtime.predictor.Predictor`` for a run, checkpoint or export: image bytes -> what
    `detect predict --json` prints for the image."""
    return DetectPredictor(load_detector(source, threads=threads), name or default_name(source))
