"""The options of `dlbox classify train` (kept free of torch so the CLI can register them without importing it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlbox.base.errors import UserError
from dlbox.config import REQUIRED, opt, positional
from dlbox.engine.config import EngineConfig


@dataclass
class ClassifyConfig(EngineConfig):
    data: str | None = opt(None, "class folders (flat or train/ + val/), a built dataset or its shards; local or s3://BUCKET/PREFIX")
    model: str = opt("resnet18", "any torchvision classification model (see `dlbox classify models`)")
    weights: str = opt("none", "PATH (.pth/.pt/.safetensors/run dir), hub:NAME, or none (from scratch)")
    fine_tune: bool = opt(False, "re-initialise the classifier (and auxiliary) heads for the new classes")
    freeze_backbone: bool = opt(False, "train only the heads (frozen BatchNorm statistics stay frozen)")
    unfreeze_after: int | None = opt(None, "with --freeze-backbone: unfreeze after this many epochs", ge=1, le=100_000)
    img_size: int | None = opt(None, "input size in px (default: the weights' size; from scratch, the data's median image side "
                                  "rounded up to a multiple of 32, from 32 to 224)", ge=16, le=2048)
    augment: Literal["none", "light", "standard"] = opt("light", "augmentation preset")
    decode: Literal["auto", "cpu", "device"] = opt("auto", "where images are decoded and augmented: cpu (PIL in the "
                                                   "loader workers) or device (the workers only read the files; the "
                                                   "training device decodes the JPEGs in batches, nvjpeg on CUDA, "
                                                   "then crops, flips and normalises); auto: device when training on "
                                                   "CUDA and at least half of 64 sampled files are JPEG, else cpu")
    val_split: float = opt(0.1, "validation fraction when the data has no val split", ge=0, lt=1)
    optimizer: Literal["adamw", "sgd"] = opt("adamw", "optimiser")
    lr: float = opt(1e-3, "learning rate of the heads", gt=0, le=1e4)
    backbone_lr_mult: float = opt(0.1, "backbone lr = lr x this, when starting from weights", gt=0, le=100)
    weight_decay: float = opt(0.01, "weight decay", ge=0, le=10)
    warmup_epochs: float = opt(1.0, "linear warm-up, then cosine decay to 0", ge=0, le=100_000)
    label_smoothing: float = opt(0.0, "label smoothing", ge=0, lt=1)
    ema: float | None = opt(None, "keep an exponential moving average of the weights with this decay (e.g. 0.999)", gt=0, lt=1)
    bn_momentum: float | None = opt(None, "BatchNorm momentum (PyTorch convention; TF decay 0.999 = 0.001)", gt=0, le=1)
    recalibrate_bn: bool = opt(False, "recompute BatchNorm statistics over the training data before evaluation")
    fast: bool = opt(False, "use the path `dlbox bench --auto --model NAME` saved for this model and device: "
                     "sets --precision, --channels-last and --compile (when safe); kept by --resume")
    compile: bool = opt(False, "torch.compile the training forward (inductor; one process, not with --deterministic)")
    epochs: int = opt(10, "epochs", ge=1, le=100_000)
    batch_size: int = opt(32, "batch size per process", ge=1, le=65536)

    def validate(self) -> None:
        super().validate()
        if not self.data and not self.resume:
            raise UserError("--data is required", "pass class folders or a built dataset, e.g. --data data/digits")
        if self.unfreeze_after is not None and not self.freeze_backbone:
            raise UserError("--unfreeze-after needs --freeze-backbone")


# The other commands' arguments (`dlbox classify models|evaluate|predict|export`), declared for
# dlbox.cliutil.Command.
@dataclass(kw_only=True)
class ModelsArgs:
    source: Literal["torchvision", "timm"] = opt("torchvision", "whose models (default: torchvision); timm's are used "
                                                                "as --model timm:NAME")  # fmt: skip
    filter: str | None = opt(None, "timm: a glob on the names, e.g. 'resnet*' (parameters are counted then)")
    results: str | None = opt(None, "timm: its published results CSV (results-imagenet.csv) for top-1/top-5", output=False)


@dataclass(kw_only=True)
class EvaluateArgs:
    source: str = positional("a run directory (uses best.pt), a checkpoint, an .onnx file, or weights with --model")
    data: str = opt(REQUIRED, "class folders or a built dataset")
    split: Literal["val", "train", "all"] = opt("val", "which images (default: val)")
    out: str | None = opt(None, "where the confusion matrix and misclassified.csv go (default: RUN/eval-SPLIT)", output="dir")
    model: str | None = opt(None, "the architecture, for plain weights files")


@dataclass(kw_only=True)
class PredictArgs:
    source: str = positional("a run directory, a checkpoint, an .onnx export, or weights/hub:NAME with --model")
    inputs: list[str] = positional("image files, folders or quoted globs", nargs="*", default=[])
    weights: str | None = opt(None, "weights to predict with (a TF checkpoint, hub:NAME, a file); then SOURCE is an "
                                    "image too: `predict --weights model.ckpt photo.jpg`", metavar="W")  # fmt: skip
    topk: int = opt(5, "how many labels per image (default: 5)", ge=1, le=100_000)
    csv: bool = opt(False, "print CSV (file, rank, label, prob)", output=False)
    model: str | None = opt(None, "the architecture, for plain weights (ImageNet names for 1000 classes)")
    fast: bool = opt(False, "run the inference path `dlbox bench --auto --model NAME` saved for this model on this CPU")

    def validate(self) -> None:
        if not self.weights and not self.inputs:  # with --weights, SOURCE is an image
            raise UserError("no images given", "dlbox classify predict SOURCE IMAGE... (or --weights W IMAGE...)")


@dataclass(kw_only=True)
class ExportArgs:
    source: str = positional("a run directory or checkpoint")
    format: Literal["onnx", "torchscript", "openvino"] = opt("onnx", "(default: onnx; openvino: IR .xml + .bin)")
    out: str | None = opt(None, "output file (default: RUN/model.onnx, RUN/model.torchscript.pt or RUN/model.xml)", output="file")
    dynamic_batch: bool = opt(True, "any batch size (default); --no-dynamic-batch: batch 1 only")
    register: str | None = opt(None, "also register the export as the next version of NAME in MLflow's model "
                               "registry (docs/track.md)", metavar="NAME")
