"""The registry of every model dlbox builds: one ``ModelSpec`` per model, queried by name, task or family.

Families: torchvision classifiers (every name torchvision lists) and timm's zoo (``timm:ARCH[.TAG]``), dlbox's
tinydet and torchvision's detectors, the face embedders and MTCNN, the ASR model, the TF-Slim networks
(``slim:FAMILY``) and Caffe nets. A spec says how to build the model (``builder``: a lazy ``"module:function"``
string, imported only at build time so that this module never imports a task), its input size and
normalisation, its classes, its label offset (output index of the data's class 0: 1 for torchvision detectors,
whose index 0 is background, and for TF-Slim's 1001-class nets) and its head (the classifier layer).

    from dlbox.models import registry

    registry.names("detect")                      # ('tinydet', 'fasterrcnn_resnet50_fpn', ...)
    spec = registry.get("fasterrcnn_resnet50_fpn")
    spec.input_size, spec.label_offset            # (512, 1)
    model = registry.build("resnet18", num_classes=10)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from dlbox.base.errors import UserError, close_matches

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = INCEPTION_STD = (0.5, 0.5, 0.5)  # TF-Slim / Inception: x / 127.5 - 1 on 0-255 pixels
# VGG / ResNet V1 converted from Caffe by TF-Slim: the channel means of 0-255 pixels, no scaling
CAFFE_MEAN = (123.68 / 255, 116.78 / 255, 103.94 / 255)
CAFFE_STD = (1 / 255, 1 / 255, 1 / 255)

FACE_MEAN, FACE_STD = (127.5 / 255,) * 3, (128 / 255,) * 3  # (p - 127.5) / 128 on 0-255 pixels

TIMM_PREFIX = "timm:"
SLIM_PREFIX = "slim:"


@dataclass(frozen=True)
class ModelSpec:
    """What dlbox knows of one model before building it (torchvision's ``Weights.meta``, timm's PretrainedCfg)."""

    name: str
    task: str  # classify, detect, face, face-detect, asr, caffe
    builder: str  # "module:function"; called as function(name, *args, **kwargs) when takes_name
    family: str  # torchvision, timm, dlbox, slim, caffe, facenet
    input_size: int | None = None  # the side of the (square) input it is trained at
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    num_classes: int | None = None  # of its published / default head (None: set by the data)
    label_offset: int = 0  # output index of the data's class 0 (1: index 0 is background)
    head: str | None = None  # the classifier layer's module name
    aux_heads: tuple[str, ...] = ()  # auxiliary classifiers (trained with an auxiliary loss)
    takes_name: bool = True
    note: str = ""

    def builder_fn(self) -> Callable[..., Any]:
        return resolve_target(self.builder)

    def build(self, *args: Any, **kwargs: Any) -> Any:
        fn = self.builder_fn()
        return fn(self.name, *args, **kwargs) if self.takes_name else fn(*args, **kwargs)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def resolve_target(target: str) -> Callable[..., Any]:
    """``"package.module:function"`` -> the function (imported now)."""
    module, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise UserError(f"cannot import {target!r} ({e})", "reinstall dlbox with the extras this model needs") from None
    return obj


# --- the static table --------------------------------------------------------------------------------------
_DETECT = "dlbox.tasks.detect.models:create"
_FACE = "dlbox.tasks.face.models:build"
_SLIM = "dlbox.convert.slim:create"

_DETECTORS = (
    ModelSpec("tinydet", "detect", _DETECT, "dlbox", 320, IMAGENET_MEAN, IMAGENET_STD, head="cls",
              note="dlbox's small detector for CPUs/embedded boards; trains from scratch"),
    *(ModelSpec(n, "detect", _DETECT, "torchvision", size, IMAGENET_MEAN, IMAGENET_STD, 91, 1, head)
      for n, size, head in (
          ("fasterrcnn_resnet50_fpn", 512, "roi_heads.box_predictor"),
          ("fasterrcnn_resnet50_fpn_v2", 512, "roi_heads.box_predictor"),
          ("fasterrcnn_mobilenet_v3_large_fpn", 512, "roi_heads.box_predictor"),
          ("fasterrcnn_mobilenet_v3_large_320_fpn", 320, "roi_heads.box_predictor"),
          ("retinanet_resnet50_fpn_v2", 512, "head.classification_head"),
          ("fcos_resnet50_fpn", 512, "head.classification_head"),
          ("ssdlite320_mobilenet_v3_large", 320, "head.classification_head"),
      )),
)  # fmt: skip
_FACES = (
    ModelSpec("inception_resnet_v1", "face", _FACE, "facenet", 160, FACE_MEAN, FACE_STD, head="last_bn",
              note="FaceNet (facenet-pytorch's layout), 512-d"),
    ModelSpec("mobileface", "face", _FACE, "dlbox", 112, FACE_MEAN, FACE_STD, head="bn", note="128-d"),
    ModelSpec("tinyface", "face", _FACE, "dlbox", 64, FACE_MEAN, FACE_STD, head="bn", note="64-d"),
    ModelSpec("mtcnn", "face-detect", "dlbox.tasks.face.mtcnn:MTCNN", "facenet", takes_name=False,
              note="MTCNN face detector (P/R/O-Net weights of facenet-pytorch)"),
)  # fmt: skip
_ASR = (
    ModelSpec("ctc_conformer", "asr", "dlbox.tasks.asr.model:build", "dlbox", takes_name=False,
              note="dlbox's small Conformer-CTC; built from its hyper-parameters (a run's task_state)"),
)
# TF-Slim networks, as dlbox.convert.slim rebuilds them (Slim's padding and strides), by Slim family.
_SLIM_NETS = tuple(
    ModelSpec(SLIM_PREFIX + fam, "classify", _SLIM, "slim", size, mean, std, 1001, 1, head, takes_name=False,
              note=f"TF-Slim {fam} -> {torch_name}")
    for fam, torch_name, size, (mean, std), head in (
        ("inception_v1", "googlenet", 224, (INCEPTION_MEAN, INCEPTION_STD), "fc"),
        ("resnet_v1", "resnet{50,101,152}", 224, (CAFFE_MEAN, CAFFE_STD), "fc"),
        ("mobilenet_v1", "mobilenet_v1", 224, (INCEPTION_MEAN, INCEPTION_STD), "classifier"),
        ("mobilenet_v2", "mobilenet_v2", 224, (INCEPTION_MEAN, INCEPTION_STD), "classifier.1"),
        ("vgg", "vgg{16,19}", 224, (CAFFE_MEAN, CAFFE_STD), "classifier.6"),
        ("inception_v3", "inception_v3", 299, (INCEPTION_MEAN, INCEPTION_STD), "fc"),
        ("resnet_v2", "resnet_v2_{50,101,152}", 299, (INCEPTION_MEAN, INCEPTION_STD), "fc"),
        ("inception_v4", "inception_v4", 299, (INCEPTION_MEAN, INCEPTION_STD), "last_linear"),
        ("inception_resnet_v2", "inception_resnet_v2", 299, (INCEPTION_MEAN, INCEPTION_STD), "classif"),
        ("nasnet_large", "nasnetalarge", 331, (INCEPTION_MEAN, INCEPTION_STD), "last_linear"),
        ("pnasnet_large", "pnasnet5large", 331, (INCEPTION_MEAN, INCEPTION_STD), "last_linear"),
    )
)  # fmt: skip
_CAFFE = (
    ModelSpec("caffe", "caffe", "dlbox.convert.caffe.importer:load_pt", "caffe", takes_name=False,
              note="any Caffe net: prototxt (+ caffemodel) imported by `dlbox caffe import`; its own input shapes"),
)  # fmt: skip
STATIC: tuple[ModelSpec, ...] = (*_DETECTORS, *_FACES, *_ASR, *_SLIM_NETS, *_CAFFE)
_BY_NAME = {s.name: s for s in STATIC}

# torchvision classifiers: the head by architecture prefix (longest first), and the auxiliary classifiers.
_TV_HEADS = (("mobilenet_v2", "classifier.1"), ("mobilenet_v3", "classifier.3"), ("efficientnet", "classifier.1"),
             ("squeezenet", "classifier.1"), ("convnext", "classifier.2"), ("densenet", "classifier"),
             ("alexnet", "classifier.6"), ("vgg", "classifier.6"), ("mnasnet", "classifier.1"), ("vit", "heads.head"),
             ("swin", "head"), ("maxvit", "classifier.5"))  # fmt: skip  # the others: "fc"
_TV_AUX = {"googlenet": ("aux1.fc2", "aux2.fc2"), "inception_v3": ("AuxLogits.fc",)}
_TV_SIZE = {"inception_v3": 299}


@lru_cache(maxsize=1)
def torchvision_classifiers() -> tuple[str, ...]:
    import torchvision

    return tuple(sorted(torchvision.models.list_models(module=torchvision.models)))


def _torchvision_spec(name: str) -> ModelSpec:
    head = next((h for prefix, h in _TV_HEADS if name.startswith(prefix)), "fc")
    return ModelSpec(name, "classify", "dlbox.tasks.classify.models:create", "torchvision", _TV_SIZE.get(name, 224),
                     IMAGENET_MEAN, IMAGENET_STD, 1000, 0, head, _TV_AUX.get(name, ()))  # fmt: skip


def _timm_spec(name: str) -> ModelSpec:
    """A timm name: input and normalisation from the pretrained config timm ships (no download)."""
    spec = ModelSpec(name, "classify", "dlbox.tasks.classify.timm_models:create", "timm", 224, IMAGENET_MEAN,
                     IMAGENET_STD, 1000)  # fmt: skip
    try:
        from timm.models import get_pretrained_cfg
    except ImportError:
        return spec
    cfg = get_pretrained_cfg(name.removeprefix(TIMM_PREFIX))
    cfg = cfg.to_dict() if cfg is not None else {}
    return replace(spec, input_size=int(cfg["input_size"][-1]) if cfg.get("input_size") else spec.input_size,
                   mean=tuple(cfg.get("mean") or spec.mean), std=tuple(cfg.get("std") or spec.std),
                   num_classes=cfg.get("num_classes") or spec.num_classes)  # fmt: skip


def names(task: str | None = None, family: str | None = None, *, dynamic: bool = True) -> tuple[str, ...]:
    """Model names, filtered by task and family; ``dynamic`` adds torchvision's classifiers (timm's zoo is
    too large to list here: see ``dlbox classify models --source timm``)."""
    out = [s.name for s in STATIC if (task is None or s.task == task) and (family is None or s.family == family)]
    if dynamic and task in (None, "classify") and family in (None, "torchvision"):
        out += list(torchvision_classifiers())
    return tuple(out)


def specs(task: str | None = None, family: str | None = None) -> list[ModelSpec]:
    return [get(n) for n in names(task, family)]


def find(name: str) -> ModelSpec | None:
    """The spec of ``name``, or None when dlbox does not build it."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.startswith(TIMM_PREFIX):
        return _timm_spec(name)
    if name in torchvision_classifiers():
        return _torchvision_spec(name)
    return None


def get(name: str, task: str | None = None) -> ModelSpec:
    """The spec of ``name`` (of ``task`` when given); a one-line error with the near names otherwise."""
    spec = find(name)
    if spec is None or (task is not None and spec.task != task):
        known = names(task)
        what = {"detect": "detector", "face": "face model"}.get(task or "", "model")
        raise UserError(f"unknown {what} {name!r}", close_matches(name, list(known)) or f"run `dlbox {task or 'classify'} models` for the list")
    return spec


def build(name: str, *args: Any, task: str | None = None, **kwargs: Any) -> Any:
    """A freshly initialised ``name`` (no download): the spec's builder with the arguments its family takes
    (classify: num_classes; detect: num_classes, img_size; face: embedding_dim, width)."""
    return get(name, task).build(*args, **kwargs)


# --- loading a trained model of a task (runs, checkpoints, weights, exports) -------------------------------
LOADERS: dict[str, str] = {
    "classify": "dlbox.tasks.classify.inference:load_classifier",
    "detect": "dlbox.tasks.detect.inference:load_detector",
    "face": "dlbox.tasks.face.inference:load_embedder",
    "asr": "dlbox.tasks.asr.transcribe:load",
    "caffe": "dlbox.convert.caffe.importer:load_pt",
}


def load(task: str, source: str, *args: Any, **kwargs: Any) -> Any:
    """The inference model of ``task`` from ``source`` (what the task's predict takes): the task's own loader."""
    if task not in LOADERS:
        raise UserError(f"no loader for task {task!r}", f"one of {', '.join(LOADERS)}")
    return resolve_target(LOADERS[task])(source, *args, **kwargs)
