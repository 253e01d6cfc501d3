"""`dlbox detect export`: a run -> one ONNX file holding the whole detector, checked against PyTorch.

The graph takes (1, 3, S, S) RGB in [0, 1] (letterboxed, see data.letterbox) and returns boxes (K, 4) xyxy
in input pixels, scores (K,) and class indices (K,): decoding, top-k, threshold and class-wise NMS are in
the graph (ONNX NonMaxSuppression), so onnxruntime needs no Python post-processing. Class names, input size
and thresholds travel in the file's metadata (key ``dlbox``). Exported with the TorchScript-based exporter
(``dynamo=False``): no onnxscript needed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlbox.engine.fileio import atomic_write
from dlbox.errors import UserError
from dlbox.tasks.detect import models, tinydet
from dlbox.tasks.detect.data import letterbox, read_image, to_tensor
from dlbox.tasks.detect.inference import MAX_DET, NMS_IOU, SCORE_THRESH, Detections, Detector, load_detector

OPSET = 17


class TorchvisionExport(nn.Module):
    """A torchvision detector with tinydet's export signature (labels as 0-based class indices)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        out = self.model([images[0]])[0]
        return out["boxes"], out["scores"], out["labels"] - 1


def export_module(det: Detector) -> nn.Module:
    if det.model_name == models.DEFAULT_MODEL:
        return tinydet.ExportWrapper(det.model, SCORE_THRESH, NMS_IOU, MAX_DET).eval()
    return TorchvisionExport(det.model).eval()


def write_onnx(det: Detector, path: Path, img_size: int) -> None:
    import onnx

    module = export_module(det)
    example = torch.rand(1, 3, img_size, img_size, generator=torch.Generator().manual_seed(0))
    meta = {"task": "detect", "classes": det.classes, "img_size": img_size, "model_name": det.model_name,
            "score_thresh": SCORE_THRESH, "nms_iou": NMS_IOU, "max_det": MAX_DET, "input": "RGB in [0, 1], letterboxed",
            "outputs": {"boxes": "(K, 4) xyxy input pixels", "scores": "(K,)", "labels": "(K,) class index"}}  # fmt: skip

    def write(tmp: str) -> None:
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python ints in the static top-k size
            torch.onnx.export(module, (example,), tmp, dynamo=False, opset_version=OPSET, input_names=["images"],
                              output_names=["boxes", "scores", "labels"],
                              dynamic_axes={"boxes": {0: "detections"}, "scores": {0: "detections"}, "labels": {0: "detections"}})  # fmt: skip
        m = onnx.load(tmp)
        entry = m.metadata_props.add()
        entry.key, entry.value = "dlbox", json.dumps(meta)
        onnx.save(m, tmp)

    try:
        atomic_write(path, write)
    except UserError:
        raise
    except Exception as e:  # an operator the exporter cannot handle: one line, not a traceback
        raise UserError(f"ONNX export of {det.model_name} failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}",
                        "tinydet and the Faster R-CNN models export; try another --model") from None  # fmt: skip


def parity_images(paths: list[str] | None, img_size: int, n: int = 4) -> list[torch.Tensor]:
    """Letterboxed (3, S, S) tensors: the given images, else generated shapes-det scenes."""
    if paths:
        from dlbox.tasks.detect.predict import list_images

        return [to_tensor(letterbox(read_image(p), img_size)[0]) for p in list_images(paths)]
    from dlbox.data.shapes_det import CLASSES, render_scene

    rng = np.random.default_rng(0)
    return [to_tensor(letterbox(render_scene(rng, CLASSES[:3])[0], img_size)[0]) for _ in range(n)]


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
           check_images: list[str] | None = None) -> dict[str, Any]:
    """Export ``source`` (a run or checkpoint) and check parity on ``check_images`` (or generated scenes)."""
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
    return {"file": str(path), "format": fmt, "model": det.model_name, "img_size": size, "classes": det.classes,
            "parity": parity}  # fmt: skip


def export_temp(det: Detector, img_size: int) -> Path:
    """An ONNX export in a temporary folder (for `bench RUN`)."""
    path = Path(tempfile.mkdtemp(prefix="dlbox-detect-")) / f"model-{img_size}.onnx"
    write_onnx(det, path, img_size)
    return path
