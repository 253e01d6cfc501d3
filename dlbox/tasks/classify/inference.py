"""Loading a trained classifier for inference, from a run, a checkpoint, an ONNX file or plain weights."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlbox.engine import checkpoint
from dlbox.errors import UserError
from dlbox.tasks.classify import models, timm_models


@dataclass
class Classifier:
    """A model ready for inference with what its inputs need; ``run`` maps (N, 3, H, W) float -> logits."""

    classes: list[str]
    img_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    model_name: str
    model: nn.Module | None = None  # PyTorch
    session: Any = None  # onnxruntime.InferenceSession
    source: str = ""

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.session is not None:
            inp = self.session.get_inputs()[0]
            step = inp.shape[0] if isinstance(inp.shape[0], int) else len(x)  # static batch: feed that many
            arr = x.numpy().astype(np.float32)
            outs = [self.session.run(None, {inp.name: arr[i : i + step]})[0] for i in range(0, len(arr), step)]
            return torch.from_numpy(np.concatenate(outs))
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
        from dlbox.hub.convert import slim

        model = slim.create({**meta["slim"], "num_classes": len(meta["classes"])}, weights)
    else:
        model = models.create(meta["model_name"], len(meta["classes"]))
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise UserError(f"{str(path)!r} does not match {meta['model_name']}: {str(e).splitlines()[0]}") from None
    model.eval().to(device)
    return Classifier(
        classes=list(meta["classes"]), img_size=int(meta["img_size"]), mean=tuple(meta["mean"]),
        std=tuple(meta["std"]), model_name=meta["model_name"], model=model, source=str(path),
    )  # fmt: skip


def _from_onnx(path: Path) -> Classifier:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise UserError(f"cannot open ONNX file {str(path)!r}: {str(e).splitlines()[0][:150]}") from None
    meta = session.get_modelmeta().custom_metadata_map
    if "dlbox" not in meta:
        raise UserError(f"{str(path)!r} was not exported by dlbox (no class names inside)", "export with `dlbox classify export`")
    info = json.loads(meta["dlbox"])
    return Classifier(
        classes=info["classes"], img_size=info["img_size"], mean=tuple(info["mean"]), std=tuple(info["std"]),
        model_name=info["model_name"], session=session, source=str(path),
    )  # fmt: skip


def _from_weights(spec: str, model_name: str) -> Classifier:
    """Plain weights (e.g. torchvision ImageNet files or hub:NAME): ImageNet class names when 1000 classes."""
    info = models.weights_transform_info(model_name, spec)
    model, _ = models.build(model_name, len(info.get("categories") or ()) or 1000, spec)
    model.eval()
    return Classifier(
        classes=info["categories"], img_size=info.get("img_size") or 224, mean=info.get("mean", models.IMAGENET_MEAN),
        std=info.get("std", models.IMAGENET_STD),
        model_name=model_name, model=model, source=spec,
    )  # fmt: skip


def load_classifier(source: str | Path, model_name: str | None = None, device: str = "cpu") -> Classifier:
    """A run directory (best.pt), a dlbox checkpoint, a .onnx file, or weights (+ ``model_name``)."""
    spec = str(source)
    from dlbox.hub.convert import slim

    if slim.handles(spec):  # a TF-Slim checkpoint (path or hub:NAME) or its conversion: no --model needed
        return slim.classifier(spec, model_name)
    hf_folder = Path(spec).is_dir() and (Path(spec) / timm_models.WEIGHTS_FILE).is_file()
    if hf_folder and not model_name:
        model_name = timm_models.model_name_of(Path(spec))  # timm weights in the Hugging Face layout
    if spec.startswith("hub:") or hf_folder or (model_name and not spec.endswith(".onnx") and not Path(spec).is_dir()):
        if not model_name:
            raise UserError(f"{spec} holds plain weights", "add --model NAME (e.g. --model resnet50)")
        return _from_weights(spec, model_name)
    path = Path(spec)
    if not path.exists():
        raise UserError(f"{spec!r} does not exist", "pass a run directory, a checkpoint, or an .onnx file")
    if path.suffix == ".onnx":
        return _from_onnx(path)
    return _from_checkpoint(checkpoint.resolve(path, "best.pt"), device)
