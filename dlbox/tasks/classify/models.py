"""Classification models: torchvision's registry, heads, weights loading (files, safetensors, hub, checkpoints).

Model facts (parameters, GFLOPs, ImageNet top-1/top-5, input size) come from torchvision's own weights
metadata, so they cannot drift from the library.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from dlbox.engine.progress import log
from dlbox.errors import UserError, close_matches
from dlbox.tasks.classify import timm_models

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Auxiliary classifiers and the weight of their loss (GoogLeNet paper: 0.3; Inception v3: 0.4).
AUX_MODELS = {"googlenet": 0.3, "inception_v3": 0.4}


def list_models() -> list[str]:
    return sorted(torchvision.models.list_models(module=torchvision.models))


def _check_name(name: str) -> None:
    if timm_models.is_timm(name):
        return timm_models.check_name(name)
    if name not in list_models():
        raise UserError(
            f"unknown model {name!r}",
            close_matches(name, list_models()) or "run `dlbox classify models` for the list",
        )


@dataclass
class ModelInfo:
    name: str
    params_m: float | None
    gflops: float | None
    img_size: int | None
    top1: float | None
    top5: float | None
    weights: str | None  # the torchvision weights enum member with the published figures

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def model_info(name: str) -> ModelInfo:
    if timm_models.is_timm(name):
        return ModelInfo(**timm_models.model_info(name))
    _check_name(name)
    weights_enum = torchvision.models.get_model_weights(name)
    w = weights_enum.DEFAULT if hasattr(weights_enum, "DEFAULT") else next(iter(weights_enum))
    meta = w.meta
    metrics = next(iter(meta.get("_metrics", {}).values()), {})
    return ModelInfo(
        name=name,
        params_m=round(meta["num_params"] / 1e6, 2) if "num_params" in meta else None,
        gflops=meta.get("_ops"),
        img_size=_default_size(w),
        top1=metrics.get("acc@1"),
        top5=metrics.get("acc@5"),
        weights=str(w),
    )


def _default_size(weights) -> int | None:
    try:
        return int(weights.transforms().crop_size[0])
    except Exception:  # some transforms have no crop size
        return None


def weights_transform_info(name: str, weights: str | None = None) -> dict[str, Any]:
    """Input size and normalisation torchvision uses for the default ImageNet weights of ``name``
    (timm models: those of ``weights``' config.json, else of timm's pretrained config)."""
    if timm_models.is_timm(name):
        return timm_models.weights_info(name, weights)
    w = torchvision.models.get_model_weights(name).DEFAULT
    t = w.transforms()
    return {"img_size": int(t.crop_size[0]), "mean": tuple(t.mean), "std": tuple(t.std),
            "categories": list(w.meta["categories"])}  # fmt: skip


def create(name: str, num_classes: int, torchvision_imagenet: bool = False) -> nn.Module:
    """A fresh model. googlenet/inception_v3 keep their auxiliary heads (trained with an auxiliary loss);
    ``transform_input`` is on only for Google's ImageNet weights, which expect their own normalisation."""
    if timm_models.is_timm(name):
        return timm_models.create(name, num_classes)
    _check_name(name)
    kwargs: dict[str, Any] = {"weights": None, "num_classes": num_classes}
    if name in AUX_MODELS:
        kwargs.update(aux_logits=True, init_weights=True, transform_input=torchvision_imagenet)
    return torchvision.models.get_model(name, **kwargs)


def heads(model: nn.Module, num_classes: int) -> list[str]:
    """Names of the classifier layers (main and auxiliary): the Linear/1x1-Conv layers producing the logits."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and m.out_features == num_classes:
            out.append(name)
        elif isinstance(m, nn.Conv2d) and m.out_channels == num_classes and m.kernel_size == (1, 1):
            out.append(name)
    return out


def replace_heads(model: nn.Module, old_classes: int, new_classes: int) -> list[str]:
    """Re-initialise every classifier head for ``new_classes`` (fine-tuning); returns their names."""
    names = heads(model, old_classes)
    if not names:
        raise UserError(f"cannot find the classifier layer of {type(model).__name__} with {old_classes} outputs")
    for name in names:
        parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        leaf = name.rsplit(".", 1)[-1]
        old = model.get_submodule(name)
        if isinstance(old, nn.Linear):
            new = nn.Linear(old.in_features, new_classes, bias=old.bias is not None)
            nn.init.normal_(new.weight, std=0.01)
            if new.bias is not None:
                nn.init.zeros_(new.bias)
        else:
            new = nn.Conv2d(old.in_channels, new_classes, 1)
        setattr(parent, leaf, new)
    return names


def read_state_dict(spec: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Weights from a dlbox checkpoint/run, a torchvision state dict (.pth/.pt), safetensors, or hub:NAME.
    Returns (state_dict, metadata); metadata holds classes and model name when the file is dlbox's."""
    hf = timm_models.read_weights(spec)  # timm's Hugging Face layout: model.safetensors + config.json
    if hf is not None:
        return hf
    if spec.startswith("hub:"):
        try:
            from dlbox.hub import resolve_weights
        except ImportError:
            raise UserError(f"{spec}: this dlbox has no model hub", "pass a weights file instead") from None
        path = resolve_weights(spec)
    else:
        path = Path(spec)
        if path.is_dir():
            from dlbox.engine.checkpoint import resolve

            path = resolve(path, "best.pt")
        if not path.is_file():
            raise UserError(f"weights file {spec!r} does not exist", "pass a .pth/.pt/.safetensors file, a run directory, hub:NAME or none")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path)), {}
        except Exception as e:
            raise UserError(f"cannot read safetensors file {str(path)!r}: {e}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, foreign pickles refused by weights_only
        msg = str(e).strip().splitlines()[0][:150] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load weights {str(path)!r}: {msg}", "pass a state dict saved with torch.save, or safetensors") from None
    if isinstance(obj, dict) and obj.get("format") == "dlbox.checkpoint":
        meta = dict(obj.get("task_state") or {})
        return obj["model"], meta
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{str(path)!r} is not a state dict of tensors", "save weights with torch.save(model.state_dict(), path)")
    return {k.removeprefix("module."): v for k, v in obj.items()}, {}


def _num_classes_in(state: dict[str, torch.Tensor], model: nn.Module, model_classes: int) -> int:
    """The class count a state dict was trained for: the output size of the model's main head in it."""
    main = heads(model, model_classes)
    for name in main:
        key = f"{name}.weight"
        if key in state:
            return int(state[key].shape[0])
    raise UserError("the weights have no classifier layer matching this model", "check --model")


def drop_background_class(state: dict[str, torch.Tensor], head_names: list[str]) -> None:
    """TF-Slim style 1001-class checkpoints put 'background' at index 0: drop it so index i is ImageNet class i."""
    for name in head_names:
        for suffix in ("weight", "bias"):
            key = f"{name}.{suffix}"
            if key in state and state[key].shape[0] == 1001:
                state[key] = state[key][1:].clone()


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], model_classes: int) -> None:
    """Strict load with a clear error naming the first mismatched keys/shapes."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"shape mismatch: {', '.join(shapes[:3])}")
        if missing:
            parts.append(f"missing keys: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected keys: {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}")
        raise UserError(
            f"the weights do not fit {type(model).__name__} ({'; '.join(parts)})",
            "use the --model the weights were trained with; for another class count add --fine-tune",
        )
    model.load_state_dict(state)


def build(name: str, num_classes: int, weights: str | None = None, fine_tune: bool = False) -> tuple[nn.Module, dict]:
    """The model for ``num_classes``, with ``weights`` loaded (and heads replaced when fine-tuning).

    Returns (model, metadata of the weights: classes/mean/std/img_size when known)."""
    if not weights or weights == "none":
        return create(name, num_classes), {}
    from dlbox.hub.convert import slim

    if slim.handles(weights):  # TF-Slim checkpoints and their conversions: Slim's padding and strides kept
        return slim.build(weights, num_classes, fine_tune, model_name=name)
    state, meta = read_state_dict(weights)
    if timm_models.is_timm(name):
        timm_models.check_architecture(name, meta, weights)
    from_torchvision = not meta  # a raw state dict: taken to be torchvision's ImageNet layout
    probe = create(name, 1000)
    weight_classes = _num_classes_in(state, probe, 1000) if not meta.get("classes") else len(meta["classes"])
    if weight_classes == 1001:
        drop_background_class(state, heads(probe, 1000))
        log("weights have 1001 classes (index 0 = background, TF-Slim style): dropped it, so labels match ImageNet's 1000")
        weight_classes = 1000
    model = create(name, weight_classes, torchvision_imagenet=from_torchvision and name in AUX_MODELS)
    aux_keys = [k for k in model.state_dict() if k.startswith(("aux1.", "aux2.", "AuxLogits."))]
    if name in AUX_MODELS and not any(k in state for k in aux_keys):
        # Weights saved without auxiliary heads: keep the fresh ones (they only matter for training).
        state = {**{k: v for k, v in model.state_dict().items() if k in aux_keys}, **state}
    load_weights(model, state, weight_classes)
    if weight_classes != num_classes or fine_tune:
        if not fine_tune:
            raise UserError(
                f"the weights are for {weight_classes} classes but the data has {num_classes}",
                "add --fine-tune to re-initialise the classifier for the new classes",
            )
        replaced = replace_heads(model, weight_classes, num_classes)
        log(f"fine-tune: re-initialised {', '.join(replaced)} for {num_classes} classes")
    return model, meta
