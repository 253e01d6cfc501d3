"""Detection models: the small tinydet and torchvision's detectors, with weights from files or the hub.

torchvision detectors are always built with ``weights=None, weights_backbone=None`` (torchvision never
downloads anything here); weights come from ``--weights PATH|hub:NAME`` (a whole detector, e.g. COCO) or
``--weights-backbone PATH|hub:NAME`` (an ImageNet classifier whose layers fill the backbone). Class index i
of our data is label i + 1 for torchvision models (0 is their background).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from dlbox.base.errors import UserError
from dlbox.base.progress import log
from dlbox.models.weights import is_reference, load_state, mismatch, read_state
from dlbox.tasks.detect.config import DEFAULT_MODEL, MODELS, TORCHVISION, check_name, default_size  # noqa: F401
from dlbox.tasks.detect.tinydet import TinyDet

COCO_CLASSES_WITH_BACKGROUND = 91  # torchvision's COCO heads: 90 category ids + background


def is_torchvision(name: str) -> bool:
    return name in TORCHVISION


@dataclass
class ModelInfo:
    name: str
    params_m: float
    coco_box_ap: float | None  # published COCO val2017 box AP (%) of torchvision's weights
    gflops: float | None
    img_size: int
    default: bool
    note: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def model_info(name: str) -> ModelInfo:
    check_name(name)
    if name == DEFAULT_MODEL:
        from torch.utils.flop_counter import FlopCounterMode

        model = TinyDet(80).eval()
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(torch.zeros(1, 3, 320, 320))
        return ModelInfo(name, round(sum(p.numel() for p in model.parameters()) / 1e6, 2), None,
                         round(fc.get_total_flops() / 2e9, 3), 320, True,
                         "dlbox's small detector for CPUs/embedded boards; trains from scratch (80 classes counted)")  # fmt: skip
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    ap = meta.get("_metrics", {}).get("COCO-val2017", {}).get("box_map")
    return ModelInfo(name, round(meta["num_params"] / 1e6, 2), ap, meta.get("_ops"), default_size(name), False,
                     "torchvision; COCO-pretrained weights via --weights hub:NAME or a file")  # fmt: skip


def create(name: str, num_classes: int, img_size: int, roi_batch: int | None = None) -> nn.Module:
    """A fresh detector for ``num_classes`` classes (no weights, nothing downloaded). ``roi_batch``: regions
    sampled per image for a two-stage model's box head in training (torchvision's 512 costs ~6 GMACs an image)."""
    check_name(name)
    if name == DEFAULT_MODEL:
        return TinyDet(num_classes)
    kwargs: dict[str, Any] = {"weights": None, "weights_backbone": None, "num_classes": num_classes + 1}
    if not name.startswith("ssdlite"):  # SSDlite's input size is fixed at 320 by its builder
        kwargs.update(min_size=img_size, max_size=img_size)
    if roi_batch is not None:
        if not name.startswith("fasterrcnn"):
            raise UserError(f"--roi-batch is for the two-stage fasterrcnn_* models, not {name}")
        kwargs["box_batch_size_per_image"] = roi_batch
    return torchvision.models.get_model(name, **kwargs)


def read_weights(spec: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """State dict (and dlbox metadata: classes, model name) from a file, a run, safetensors or hub:NAME."""
    return read_state(spec)


def _num_classes_of(state: dict[str, torch.Tensor], name: str) -> int | None:
    """Classes (with background for torchvision) that a detector state dict was trained for."""
    keys = {
        "tinydet": ("cls.bias", 0),
        "fasterrcnn": ("roi_heads.box_predictor.cls_score.bias", 0),
        "retinanet": ("head.classification_head.cls_logits.bias", "anchors"),
        "fcos": ("head.classification_head.cls_logits.bias", "anchors"),
        "ssdlite": ("head.classification_head.module_list.0.1.bias", "anchors"),
    }
    for prefix, (key, _) in keys.items():
        if name.startswith(prefix) and key in state:
            n = int(state[key].shape[0])
            if prefix in ("retinanet", "fcos", "ssdlite"):
                anchors = {"retinanet": 9, "fcos": 1, "ssdlite": 6}[prefix]
                n //= anchors
            return n
    return None


def load_detector_weights(model: nn.Module, state: dict[str, torch.Tensor], fine_tune: bool,
                          source: str = "the weights") -> list[str]:
    """Load ``state``; with ``fine_tune`` the class-dependent layers whose shapes differ stay freshly
    initialised (the box predictor for the new class count). Returns the names of the re-initialised tensors."""
    hint = ("add --fine-tune to replace the box predictor for the data's classes" if not fine_tune and
            not any(mismatch(model, state)[:2]) else "use the --model the weights were trained with")  # fmt: skip
    return load_state(model, state, source, hint=hint, keep_other_shapes=fine_tune)


def _imagenet_to_backbone(model: nn.Module, src: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """Map an ImageNet classifier's tensors onto the detector's backbone. Tries name matches first
    (``backbone.body.X`` <- ``X`` or ``features.X``), then the layers in order while shapes agree."""
    own = {k: v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    body = {k: v for k, v in src.items() if not k.startswith(("fc.", "classifier."))}
    out: dict[str, torch.Tensor] = {}
    for k, v in own.items():
        short = k.split(".", 2)[-1] if k.startswith(("backbone.body.", "backbone.features.")) else None
        for cand in (short, f"features.{short}") if short else ():
            if cand in body and body[cand].shape == v.shape:
                out[k] = body[cand]
                break
    if len(out) < 0.5 * len(body):
        out = {}
        for (k, v), (_, s) in zip(((k, v) for k, v in own.items() if "fpn" not in k and "extra" not in k), body.items(), strict=False):
            if v.shape != s.shape:
                break
            out[k] = s
    return out, len(body)


def load_backbone(model: nn.Module, spec: str) -> int:
    """ImageNet weights into the backbone only; returns how many tensors were loaded."""
    src, _ = read_weights(spec)
    mapped, total = _imagenet_to_backbone(model, src)
    if len(mapped) < 0.5 * total:
        raise UserError(f"--weights-backbone {spec}: only {len(mapped)} of {total} tensors fit this model's backbone",
                        "pass ImageNet weights of the backbone architecture (resnet50 for *_resnet50_*, "
                        "mobilenet_v3_large for *_mobilenet_v3_*)")  # fmt: skip
    model.load_state_dict(mapped, strict=False)
    log(f"backbone: loaded {len(mapped)} of {total} ImageNet tensors from {spec}")
    return len(mapped)


def build(name: str, classes: list[str], img_size: int, weights: str = "none", fine_tune: bool = False,
          weights_backbone: str | None = None, roi_batch: int | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The detector for ``classes`` with weights loaded. Returns (model, metadata of the weights)."""
    model = create(name, len(classes), img_size, roi_batch)
    meta: dict[str, Any] = {}
    if weights_backbone and weights_backbone != "none":
        if name == DEFAULT_MODEL:
            raise UserError("--weights-backbone is for torchvision detectors", "tinydet trains from scratch or from --weights")
        load_backbone(model, weights_backbone)
    if weights and weights != "none":
        state, meta = read_weights(weights)
        saved = meta.get("classes")
        if saved is not None and meta.get("model_name") not in (None, name):
            raise UserError(f"the weights are a {meta['model_name']} but --model is {name}", f"use --model {meta['model_name']}")
        if saved is not None and list(saved) != list(classes) and not fine_tune:
            raise UserError(f"the weights were trained on classes {list(saved)} but the data has {list(classes)}",
                            "add --fine-tune to replace the box predictor for the data's classes")  # fmt: skip
        n = _num_classes_of(state, name)
        expected = len(classes) + (0 if name == DEFAULT_MODEL else 1)
        if saved is None and n is not None and n != expected and not fine_tune:
            what = "COCO's 90 (+ background)" if n == COCO_CLASSES_WITH_BACKGROUND else str(n)
            raise UserError(f"the weights are for {what} classes but the data has {len(classes)}",
                            "add --fine-tune to replace the box predictor for the data's classes")  # fmt: skip
        replaced = load_detector_weights(model, state, fine_tune, weights)
        if replaced:
            log(f"fine-tune: re-initialised {len(replaced)} class-dependent tensors ({replaced[0]}, ...) for {len(classes)} classes")
    return model, meta


def is_weights_file(spec: str) -> bool:
    return is_reference(spec) or Path(spec).is_file()
