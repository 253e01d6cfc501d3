"""A trained detector ready for inference, from a run, a checkpoint or an exported ONNX file.

``Detector.detect(images)`` takes letterboxed (N, 3, S, S) tensors in [0, 1] and returns, per image, boxes
(K, 4) xyxy in letterboxed pixels, scores (K,) and class indices (K,). tinydet's post-processing is one
function (``tinydet.postprocess``) that runs eagerly here and inside the exported ONNX graph.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlbox.engine import checkpoint
from dlbox.errors import UserError
from dlbox.tasks.detect import models, tinydet

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
class Detector:
    classes: list[str]
    img_size: int
    model_name: str
    model: nn.Module | None = None
    session: Any = None  # onnxruntime.InferenceSession of a dlbox export
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def detect(self, images: torch.Tensor, score_thresh: float = SCORE_THRESH) -> list[Detections]:
        if self.session is None:
            return detect_torch(self.model, self.model_name, images, score_thresh)
        out = []
        name = self.session.get_inputs()[0].name
        for x in images.numpy().astype(np.float32):
            boxes, scores, labels = self.session.run(None, {name: x[None]})
            keep = scores >= score_thresh
            out.append((boxes[keep], scores[keep], labels[keep].astype(np.int64)))
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
        raise UserError(f"{str(path)!r} does not match {meta['model_name']}: {str(e).splitlines()[0][:150]}") from None
    model.eval().to(device)
    return Detector(classes=list(meta["classes"]), img_size=int(meta["img_size"]), model_name=meta["model_name"],
                    model=model, source=str(path), meta=dict(meta))  # fmt: skip


def _from_onnx(path: Path, threads: int | None = None) -> Detector:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise UserError(f"cannot open ONNX file {str(path)!r}: {str(e).splitlines()[0][:150]}") from None
    meta = session.get_modelmeta().custom_metadata_map
    if "dlbox" not in meta:
        raise UserError(f"{str(path)!r} was not exported by dlbox (no class names inside)", "export with `dlbox detect export`")
    info = json.loads(meta["dlbox"])
    if info.get("task") != "detect":
        raise UserError(f"{str(path)!r} is not a detector export", "export with `dlbox detect export`")
    return Detector(classes=info["classes"], img_size=int(info["img_size"]), model_name=info["model_name"],
                    session=session, source=str(path), meta=info)  # fmt: skip


def load_detector(source: str | Path, device: str = "cpu", threads: int | None = None) -> Detector:
    """A run directory (its best.pt), a dlbox checkpoint, or an .onnx export."""
    path = Path(source)
    if not path.exists():
        raise UserError(f"{str(source)!r} does not exist", "pass a run directory (runs/detect/NAME), a checkpoint or an .onnx file")
    if path.suffix == ".onnx":
        return _from_onnx(path, threads)
    return _from_checkpoint(checkpoint.resolve(path, "best.pt"), device)
