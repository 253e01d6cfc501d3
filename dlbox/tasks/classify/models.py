"""Classification models: torchvision's and timm's (through dlbox's model registry), built with weights.

Model facts (parameters, GFLOPs, ImageNet top-1/top-5, input size) come from torchvision's own weights
metadata, so they cannot drift from the library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from torch import nn

from dlbox.base.errors import UserError, close_matches
from dlbox.base.progress import log
from dlbox.models import registry
from dlbox.models.heads import heads, replace_heads  # noqa: F401  (classify's API: fine-tuning heads)
from dlbox.models.weights import WeightsSource, drop_background_class, load_state, read_state, resolve_weights
from dlbox.tasks.classify import timm_models

IMAGENET_MEAN = registry.IMAGENET_MEAN
IMAGENET_STD = registry.IMAGENET_STD
# Auxiliary classifiers and the weight of their loss (GoogLeNet paper: 0.3; Inception v3: 0.4).
AUX_MODELS = {"googlenet": 0.3, "inception_v3": 0.4}


def list_models() -> list[str]:
    return list(registry.names("classify", "torchvision"))


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


def weights_transform_info(name: str, weights: str | WeightsSource | None = None) -> dict[str, Any]:
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


def _num_classes_in(state: dict[str, torch.Tensor], model: nn.Module, model_classes: int) -> int:
    """The class count a state dict was trained for: the output size of the model's main head in it."""
    main = heads(model, model_classes)
    for name in main:
        key = f"{name}.weight"
        if key in state:
            return int(state[key].shape[0])
    raise UserError("the weights have no classifier layer matching this model", "check --model")


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str = "the weights") -> None:
    """Strict load with the one mismatch error (dlbox.models.weights.load_state)."""
    load_state(model, state, source,
               hint="use the --model the weights were trained with; for another class count add --fine-tune")  # fmt: skip


def build(name: str, num_classes: int, weights: str | WeightsSource | None = None, fine_tune: bool = False) -> tuple[nn.Module, dict]:
    """The model for ``num_classes``, with ``weights`` loaded (and heads replaced when fine-tuning).

    Returns (model, metadata of the weights: classes/mean/std/img_size when known)."""
    if not weights or weights == "none":
        return create(name, num_classes), {}
    source = weights if isinstance(weights, WeightsSource) else resolve_weights(weights)
    weights = source.spec
    if source.kind == "slim":  # TF-Slim checkpoints and their conversions: Slim's padding and strides kept
        from dlbox.convert import slim

        return slim.build(source, num_classes, fine_tune, model_name=name)
    state, meta = read_state(source)
    if timm_models.is_timm(name):
        timm_models.check_architecture(name, meta, weights)
    from_torchvision = not meta  # a raw state dict: taken to be torchvision's ImageNet layout
    probe = create(name, 1000)
    weight_classes = _num_classes_in(state, probe, 1000) if not meta.get("classes") else len(meta["classes"])
    if weight_classes == 1001 and drop_background_class(state, heads(probe, 1000)):
        log("weights have 1001 classes (index 0 = background, TF-Slim style): dropped it, so labels match ImageNet's 1000")
        weight_classes = 1000
    model = create(name, weight_classes, torchvision_imagenet=from_torchvision and name in AUX_MODELS)
    aux_keys = [k for k in model.state_dict() if k.startswith(("aux1.", "aux2.", "AuxLogits."))]
    if name in AUX_MODELS and not any(k in state for k in aux_keys):
        # Weights saved without auxiliary heads: keep the fresh ones (they only matter for training).
        state = {**{k: v for k, v in model.state_dict().items() if k in aux_keys}, **state}
    load_weights(model, state, str(weights))
    if weight_classes != num_classes or fine_tune:
        if not fine_tune:
            raise UserError(
                f"the weights are for {weight_classes} classes but the data has {num_classes}",
                "add --fine-tune to re-initialise the classifier for the new classes",
            )
        replaced = replace_heads(model, weight_classes, num_classes)
        log(f"fine-tune: re-initialised {', '.join(replaced)} for {num_classes} classes")
    return model, meta
