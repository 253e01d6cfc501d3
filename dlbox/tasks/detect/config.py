"""`dlbox detect train` options and the detector names (no torch import: the CLI builds its parser from this)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlbox.base.errors import UserError
from dlbox.config import REQUIRED, opt, positional
from dlbox.engine.config import EngineConfig
from dlbox.models import registry

DEFAULT_MODEL = "tinydet"
# the detector names and their input sizes (the letterbox side) come from the model registry
MODELS = registry.names("detect")
TORCHVISION = registry.names("detect", "torchvision")


def check_name(name: str) -> None:
    registry.get(name, "detect")


def default_size(name: str) -> int:
    return registry.get(name, "detect").input_size or 512


@dataclass
class DetectConfig(EngineConfig):
    data: str | None = opt(None, "a COCO directory: annotations/train.json (+ val.json), images/ (see docs/detect.md)")
    model: str = opt(DEFAULT_MODEL, "detector (see `dlbox detect models`)")
    weights: str = opt("none", "whole-detector weights: PATH (.pth/.pt/.safetensors/run dir), hub:NAME, or none")
    weights_backbone: str | None = opt(None, "ImageNet classifier weights for the backbone only: PATH or hub:NAME")
    fine_tune: bool = opt(False, "replace the box predictor for the data's classes (weights of other classes)")
    img_size: int | None = opt(None, "letterbox side in pixels, a multiple of 32 (default: 320 for tinydet and the 320 models, else 512)", ge=32, le=2048)
    augment: Literal["none", "flip"] = opt("flip", "training augmentation (flip: random horizontal flips)")
    val_split: float = opt(0.1, "validation fraction of the training images when the data has no val split", ge=0, lt=1)
    max_images: int | None = opt(None, "train on the first N training images only (quick trials)", ge=1, le=10**9)
    roi_batch: int | None = opt(None, "fasterrcnn_*: regions sampled per image for the box head in training "
                                      "(torchvision: 512; 64-128 is much faster on CPU)", ge=1, le=65536)
    optimizer: Literal["auto", "adamw", "sgd"] = opt("auto", "auto: AdamW for tinydet, SGD (momentum 0.9) for torchvision models")
    lr: float | None = opt(None, "learning rate (default: 3e-3 AdamW, 0.01 SGD)", gt=0, le=1e4)
    weight_decay: float | None = opt(None, "weight decay (default: 0.05 AdamW, 1e-4 SGD), not on norms and biases", ge=0, le=10)
    warmup_epochs: float = opt(1.0, "linear warm-up, then cosine decay to 0", ge=0, le=100_000)
    best: Literal["AP", "AP50"] = opt("AP50", "validation metric that picks best.pt")
    tb_images: int = opt(4, "validation images with predicted boxes written to TensorBoard at the end (0: none)", ge=0, le=1000)
    epochs: int = opt(30, "epochs", ge=1, le=100_000)
    batch_size: int = opt(16, "batch size per process", ge=1, le=65536)

    def validate(self) -> None:
        super().validate()
        if not self.data and not self.resume:
            raise UserError("--data is required", "pass a COCO directory, e.g. `dlbox data sample shapes-det --out data/shapes-det`")
        check_name(self.model)
        if self.img_size is not None and (self.img_size < 32 or self.img_size % 32):
            raise UserError(f"--img-size must be a multiple of 32 (at least 32), got {self.img_size}", "e.g. --img-size 320")

    @property
    def size(self) -> int:
        return self.img_size or default_size(self.model)


# The other commands' arguments (`dlbox detect evaluate|predict|export|bench`), declared for dlbox.cliutil.Command.
THREADS = "intra-op threads (default: all cores)"


@dataclass(kw_only=True)
class EvaluateArgs:
    source: str = positional("a run directory (uses best.pt), a checkpoint, or an .onnx export")
    data: str = opt(REQUIRED, "a COCO directory (or one annotations json)")
    split: str = opt("val", "which annotations: val, test, train (default: val)")
    batch_size: int = opt(8, "images per forward pass (default: 8)", ge=1, le=65536)
    threads: int | None = opt(None, THREADS, ge=1, le=1024)


@dataclass(kw_only=True)
class PredictArgs:
    source: str = positional("a run directory, a checkpoint, or an .onnx export")
    inputs: list[str] = positional("image files, folders or quoted globs")
    conf: float = opt(0.5, "minimum score (default: 0.5)", ge=0, le=1)
    save_images: str | None = opt(None, "write each image with its boxes drawn and labelled (PNG)", metavar="DIR", output="dir")
    threads: int | None = opt(None, THREADS, ge=1, le=1024)


@dataclass(kw_only=True)
class ExportArgs:
    source: str = positional("a run directory or checkpoint")
    format: Literal["onnx"] = opt("onnx", "(default: onnx)")
    out: str | None = opt(None, "output file (default: RUN/model.onnx)", output="file")
    img_size: int | None = opt(None, "input size of the graph (default: the training size)", ge=32, le=2048)
    check_images: list[str] | None = opt(None, "images for the parity check (default: generated scenes)", metavar="IMAGE")
    register: str | None = opt(None, "also register the export as the next version of NAME in MLflow's model "
                               "registry (docs/track.md)", metavar="NAME")


@dataclass(kw_only=True)
class BenchArgs:
    source: str = positional("a run directory, a checkpoint, or an .onnx export")
    img_size: int = opt(320, "input size (default: 320)", ge=32, le=2048)
    runtime: Literal["onnx", "torch"] = opt("onnx", "(default: onnx)")
    runs: int = opt(100, "timed runs (default: 100)", ge=1, le=100_000)
    warmup: int = opt(10, "untimed runs first (default: 10)", ge=0, le=1_000_000)
    threads: int | None = opt(None, "intra-op threads (default: physical cores)", ge=1, le=1024)
