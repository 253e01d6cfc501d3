"""Loading a trained classifier for inference, from a run, a checkpoint, an export (ONNX, TorchScript, OpenVINO,
through ``dlbox.runtime.exported.load_exported``) or plain weights; ``predictor()`` serves it (``dlbox serve``)
with the top-k labels `classify predict --json` prints."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlbox.base.errors import UserError
from dlbox.engine import checkpoint
from dlbox.models.weights import WeightsSource, resolve_weights
from dlbox.runtime.exported import RunsExported, is_export, load_exported
from dlbox.runtime.inputs import decode_image, default_name, int_option, no_more_options, square_batch
from dlbox.runtime.predictor import Sample, TensorSpec
from dlbox.tasks.classify import models, timm_models


@dataclass
class Classifier(RunsExported):
    """A model ready for inference with what its inputs need; ``run`` maps (N, 3, H, W) float -> logits."""

    classes: list[str]
    img_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    model_name: str
    model: nn.Module | None = None  # PyTorch
    exported: Any = None  # dlbox.runtime.exported.Exported (ONNX, TorchScript, OpenVINO)
    source: str = ""

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.exported is not None:  # a static-batch export (older files) is fed its batch size at a time
            out = self.exported.run({self.exported.inputs[0].name: x.numpy().astype(np.float32)})
            return torch.from_numpy(out[self.exported.outputs[0].name])
        out = self.model(x)
        return out if isinstance(out, torch.Tensor) else out.logits

    def transform(self):
        from dlbox.data.transforms import build_transforms

        return build_transforms("none", self.img_size, self.mean, self.std, train=False)


def _from_checkpoint(path: Path, device: str = "cpu") -> Classifier:
    state = checkpoint.load(path)
    meta = state.get("task_state") or {}
    if state.get("task") != "classify" or "classes" not in meta:
        raise UserError(
            f"{str(path)!r} is a {state.get('task', 'unknown')} checkpoint, not a classifier",
            "pass a run of `dlbox classify train`",
        )
    weights = meta.get("ema") or state["model"]  # EMA weights are the ones evaluated and exported
    if meta.get("slim"):  # fine-tuned from a TF-Slim checkpoint: Slim's padding and strides again
        from dlbox.convert import slim

        model = slim.create({**meta["slim"], "num_classes": len(meta["classes"])}, weights)
    else:
        model = models.create(meta["model_name"], len(meta["classes"]))
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise UserError(f"{str(path)!r} does not match {meta['model_name']}: {str(e).splitlines()[0]}", "pass weights of that model, or the --model they were trained as") from None
    model.eval().to(device)
    return Classifier(
        classes=list(meta["classes"]), img_size=int(meta["img_size"]), mean=tuple(meta["mean"]),
        std=tuple(meta["std"]), model_name=meta["model_name"], model=model, source=str(path),
    )  # fmt: skip


def _from_export(path: Path) -> Classifier:
    """An export of any format, through the one loader (metadata of every dlbox version)."""
    ex = load_exported(path, task="classify")
    inp = ex.meta["inputs"][0]
    return Classifier(
        classes=list(ex.meta["classes"]), img_size=int(inp["size"]), mean=tuple(inp["mean"]), std=tuple(inp["std"]),
        model_name=ex.meta["model_name"], exported=ex, source=str(path),
    )  # fmt: skip


def _from_weights(source: WeightsSource, model_name: str) -> Classifier:
    """Plain weights (e.g. torchvision ImageNet files or hub:NAME): ImageNet class names when 1000 classes."""
    info = models.weights_transform_info(model_name, source)
    model, _ = models.build(model_name, len(info.get("categories") or ()) or 1000, source)
    model.eval()
    return Classifier(
        classes=info["categories"], img_size=info.get("img_size") or 224, mean=info.get("mean", models.IMAGENET_MEAN),
        std=info.get("std", models.IMAGENET_STD),
        model_name=model_name, model=model, source=source.spec,
    )  # fmt: skip


def _from_slim(source: WeightsSource, model_name: str | None) -> Classifier:
    """A TF-Slim checkpoint (path or hub:NAME) or its conversion: the network says which it is; ImageNet
    names for 1000 classes."""
    from dlbox.convert import slim

    model, meta = slim.build(source, model_name=model_name)
    classes = meta.get("classes") or [f"class_{i}" for i in range(int(meta["slim"]["num_classes"]))]
    return Classifier(classes=classes, img_size=meta["img_size"], mean=meta["mean"], std=meta["std"],
                      model_name=meta["model_name"], model=model, source=source.spec)  # fmt: skip


def load_classifier(source: str | Path | WeightsSource, model_name: str | None = None, device: str = "cpu") -> Classifier:
    """A run directory (best.pt), a dlbox checkpoint, an export (.onnx, .torchscript.pt, OpenVINO .xml), or
    weights (+ ``model_name``)."""
    if isinstance(source, str | Path) and is_export(source) and Path(source).is_file():
        return _from_export(Path(source))
    src = resolve_weights(source)
    if src.kind == "slim":
        return _from_slim(src, model_name)
    if src.kind == "hf-folder" and not model_name and src.config is not None and src.entry is None:
        model_name = timm_models.model_name_of(src.config.parent)  # timm weights in the Hugging Face layout
    if src.kind in ("state-dict", "safetensors", "hf-folder") or (model_name and src.kind == "checkpoint"):
        if not model_name:
            if src.kind == "state-dict" and not zipfile.is_zipfile(src.path):
                # not torch's zip: a damaged or foreign file is said to be one (read_torch_file), not "plain weights"
                from dlbox.engine.checkpoint import read_torch_file

                read_torch_file(src.path, "weights", hint="pass a dlbox run or checkpoint, or weights with --model NAME")
            raise UserError(f"{src.spec} holds plain weights", "add --model NAME (e.g. --model resnet50)")
        return _from_weights(src, model_name)
    if src.kind == "export":
        return _from_export(src.path)
    if src.kind not in ("run", "checkpoint"):
        raise UserError(f"{src.spec} is a {src.kind} model, not a classifier", "pass a run of `dlbox classify train`")
    return _from_checkpoint(checkpoint.resolve(src.checkpoint_file("best.pt"), "best.pt"), device)


def top_predictions(classes: list[str], logits: torch.Tensor, topk: int) -> list[list[dict[str, Any]]]:
    """(N, C) logits -> per image the top ``topk`` ``{"label", "prob"}`` (softmax, 6 decimals): what
    `classify predict --json` prints and what a server answers."""
    probs = logits.float().softmax(1)
    values, indices = probs.topk(min(topk, len(classes)), dim=1)
    return [[{"label": classes[j], "prob": round(p, 6)} for p, j in zip(v, i, strict=True)]
            for v, i in zip(values.tolist(), indices.tolist(), strict=True)]  # fmt: skip


def export_meta(clf: Classifier, dynamic_batch: bool = True) -> dict[str, Any]:
    """The export metadata (docs/export.md) of a classifier: an export's own, else what exporting would write."""
    from dlbox.runtime.export import ExportMeta, image_input, weights_sha256

    if clf.exported is not None:
        return clf.exported.meta
    meta = ExportMeta(
        "classify", clf.model_name, [image_input("images", clf.img_size, clf.mean, clf.std)],
        classes=list(clf.classes), dynamic_batch=dynamic_batch,
        preprocessing={"resize": "shorter side to round(size / 0.875) then center crop to size (images no larger "
                                 "than that: resized to size x size)", "scale": 1 / 255, "channels": "RGB"},
        extra={"output": "logits (softmax gives the probabilities)"},
        weights_sha256=weights_sha256(clf.model) if clf.model is not None else "",
    )  # fmt: skip
    if not dynamic_batch:
        meta.inputs[0].shape[0] = 1
    return meta.to_dict()


class ClassifyPredictor:
    """An image -> the top-k labels with probabilities: the dict `classify predict --json` prints for it (with
    ``file`` when the sample's info has one). Options of ``predict``: ``topk`` (default 5)."""

    task = "classify"

    def __init__(self, clf: Classifier, name: str):
        self.clf, self.name, self.tf = clf, name, clf.transform()
        self.meta = {**export_meta(clf), "backend": clf.backend}
        s = clf.img_size
        self.inputs = [TensorSpec("images", "FP32", (-1, 3, s, s))]
        self.outputs = [TensorSpec("logits", "FP32", (-1, len(clf.classes)))]

    def decode(self, payload: bytes, content_type: str | None = None, **options: Any) -> Sample:
        no_more_options(dict(options), "no decode options")
        im = decode_image(payload)
        return Sample(self.tf(im), {"width": im.width, "height": im.height})

    def predict(self, samples: list[Sample], **options: Any) -> list[dict[str, Any]]:
        topk = int_option(options, "topk", 5, 1, 100_000)
        no_more_options(options, "topk")
        if not samples:
            return []
        preds = top_predictions(self.clf.classes, self.clf.logits(torch.stack([s.data for s in samples])), topk)
        return [{**({"file": s.info["file"]} if "file" in s.info else {}), "predictions": p}
                for s, p in zip(samples, preds, strict=True)]  # fmt: skip

    def infer(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = square_batch(tensors, "images", self.clf.img_size, "FP32")
        return {"logits": self.clf.logits(torch.from_numpy(x)).float().numpy()}


def predictor(source: str | Path, name: str | None = None, model_name: str | None = None) -> ClassifyPredictor:
    """A ``dlbox.runtime.predictor.Predictor`` for anything ``load_classifier`` opens (run, checkpoint, export,
    weights + ``model_name``): image bytes -> what `classify predict --json` prints for the image."""
    return ClassifyPredictor(load_classifier(source, model_name), name or default_name(source))
