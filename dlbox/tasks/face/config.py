"""The options of `dlbox face train` (free of torch so the CLI can register them without importing it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlbox.base.errors import UserError
from dlbox.config import REQUIRED, opt, positional
from dlbox.engine.config import EngineConfig

ALIGN_CHOICES = ("none", "arcface112", "facenet160", "box160")


@dataclass
class FaceTrainConfig(EngineConfig):
    data: str | None = opt(None, "identity folders: DATA/<person>/<photo> (the VGGFace2/CASIA layout)")
    model: Literal["mobileface", "tinyface", "inception_resnet_v1"] = opt(
        "mobileface", "the embedder: mobileface (MobileFaceNet-style), tinyface (fastest on a CPU), inception_resnet_v1 (FaceNet)")
    weights: str = opt("none", "start from these embedder weights: PATH (state dict, run, checkpoint), hub:NAME, or none")
    fine_tune: bool = opt(False, "with --weights: the embedder learns at --backbone-lr-mult x --lr (the new head at --lr)")
    backbone_lr_mult: float = opt(0.1, "embedder learning rate factor with --fine-tune", gt=0, le=100)
    embedding_dim: int | None = opt(None, "embedding size (default: 128 mobileface, 64 tinyface, 512 inception_resnet_v1)", ge=2, le=4096)
    width: float = opt(1.0, "channel width multiplier (mobileface, tinyface)", gt=0, le=4)
    img_size: int | None = opt(None, "input size (default: 112 mobileface, 64 tinyface, 160 inception_resnet_v1)", ge=32, le=1024)
    align: Literal["none", "arcface112", "facenet160", "box160"] = opt(
        "none", "none: the photos are face crops already; else detect (MTCNN) and align every photo once, into a cache")
    loss: Literal["arcface", "triplet"] = opt("arcface", "ArcFace (additive angular margin) or batch-hard triplet")
    margin: float | None = opt(None, "ArcFace angular margin in radians (default 0.5) or triplet distance margin (default 0.2)", ge=0, le=10)
    scale: float = opt(32.0, "ArcFace logit scale s", gt=0, le=1000)
    val_identities: float = opt(0.2, "fraction of identities held out for verification (never trained on)", gt=0, lt=1)
    val_pairs: int = opt(600, "same/different pairs drawn from the held-out identities (half each)", ge=2, le=10**7)
    flip: bool = opt(True, "random horizontal flips while training")
    optimizer: Literal["adamw", "sgd"] = opt("adamw", "optimiser")
    lr: float = opt(2e-3, "learning rate", gt=0, le=1e4)
    weight_decay: float = opt(5e-4, "weight decay", ge=0, le=10)
    warmup_epochs: float = opt(1.0, "linear warm-up, then cosine decay to 0", ge=0, le=100_000)
    epochs: int = opt(20, "epochs", ge=1, le=100_000)
    batch_size: int = opt(64, "batch size per process", ge=1, le=65536)

    def validate(self) -> None:
        super().validate()
        if not self.data and not self.resume:
            raise UserError("--data is required", "pass identity folders, e.g. --data data/faces (one folder per person)")
        if not 0 < self.val_identities < 1:
            raise UserError(f"--val-identities must be in (0, 1), got {self.val_identities}", "e.g. 0.2")
        if self.margin is not None and self.margin < 0:
            raise UserError(f"--margin must be 0 or more, got {self.margin}")
        if self.val_pairs < 2:
            raise UserError(f"--val-pairs must be at least 2, got {self.val_pairs}")
        if self.img_size is not None and self.img_size < 32:
            raise UserError(f"--img-size must be at least 32, got {self.img_size}")
        if self.fine_tune and self.weights in ("", "none"):
            raise UserError("--fine-tune needs --weights", "e.g. --weights hub:facenet-vggface2 --fine-tune")


# The other commands' arguments (`dlbox face detect|embed|compare|enroll|identify|evaluate|export`), declared for
# dlbox.cliutil.Command. Written out per command, not inherited, so that --help lists them in this order.
Align = Literal["arcface112", "facenet160", "box160"]
INPUTS = "image files, folders or quoted globs"
WEIGHTS = "a face run directory, a checkpoint, an .onnx export, weights PATH or hub:NAME (e.g. hub:facenet-vggface2)"
MODEL = "architecture of plain weights: inception_resnet_v1 (default), mobileface, tinyface"
ALIGNED = "the images are face crops already: no detection"
ALIGN = "alignment (default: box160 for FaceNet weights, else arcface112)"
FLIP = "average each embedding with that of the mirrored face"
THRESHOLD = "distance threshold (default: the one stored with the model)"


@dataclass(kw_only=True)
class DetectArgs:
    inputs: list[str] = positional(INPUTS)
    save_crops: str | None = opt(None, "write an aligned crop of every face here", metavar="DIR", output="dir")
    align: Align | None = opt(None, "crop template (default: arcface112)")
    min_face_size: int = opt(20, "smallest face searched, in pixels (default: 20)", ge=12, le=4096)


@dataclass(kw_only=True)
class EmbedArgs:
    inputs: list[str] = positional(INPUTS)
    out: str = opt(REQUIRED, "the .npz file (files, embeddings, source)", output="file")
    source: str = opt(REQUIRED, WEIGHTS, flag="--weights")
    model: str | None = opt(None, MODEL)
    aligned: bool = opt(False, ALIGNED)
    align: Align | None = opt(None, ALIGN)
    flip: bool = opt(False, FLIP)


@dataclass(kw_only=True)
class CompareArgs:
    inputs: list[str] = positional("two or more images")
    heatmap: str | None = opt(None, "write the distance matrix as a heat map with the face crops", metavar="PNG", output="file")
    source: str = opt(REQUIRED, WEIGHTS, flag="--weights")
    model: str | None = opt(None, MODEL)
    aligned: bool = opt(False, ALIGNED)
    align: Align | None = opt(None, ALIGN)
    flip: bool = opt(False, FLIP)
    threshold: float | None = opt(None, THRESHOLD, gt=0, le=4)


@dataclass(kw_only=True)
class EnrollArgs:
    gallery: str = positional("GALLERY_DIR/<person>/<photo>")
    out: str = opt(REQUIRED, "the gallery file (.npz)", output="file")
    source: str = opt(REQUIRED, WEIGHTS, flag="--weights")
    model: str | None = opt(None, MODEL)
    aligned: bool = opt(False, ALIGNED)
    align: Align | None = opt(None, ALIGN)
    flip: bool = opt(False, FLIP)


@dataclass(kw_only=True)
class IdentifyArgs:
    gallery: str = positional("a gallery from `dlbox face enroll`")
    inputs: list[str] = positional(INPUTS)
    source: str | None = opt(None, WEIGHTS + " (default: the one the gallery was enrolled with)", flag="--weights")
    model: str | None = opt(None, MODEL)  # accepted for symmetry with the other commands; the gallery names its model
    aligned: bool = opt(False, ALIGNED)
    threshold: float | None = opt(None, THRESHOLD, gt=0, le=4)


@dataclass(kw_only=True)
class EvaluateArgs:
    source: str = opt(REQUIRED, WEIGHTS, flag="--weights")
    model: str | None = opt(None, MODEL)
    pairs: str | None = opt(None, "LFW-style pairs.txt")
    images: str | None = opt(None, "folder of the pairs' images, ROOT/name/name_NNNN.jpg (default: PAIRS_DIR/lfw)")
    data: str | None = opt(None, "identity folders to draw balanced, seeded pairs from (instead of --pairs)")
    num_pairs: int = opt(6000, "pairs to draw with --data (default: 6000, as LFW)", ge=2, le=10**7)
    seed: int = opt(0, "seed of the pairs drawn with --data (default: 0)", ge=0, le=2**32 - 1)
    out: str | None = opt(None, "where metrics.json and roc.png go (default: RUN/eval)", output="dir")
    aligned: bool = opt(False, ALIGNED)
    align: Align | None = opt(None, ALIGN)
    flip: bool = opt(False, FLIP)


@dataclass(kw_only=True)
class ExportArgs:
    source: str = positional("a face run directory, a checkpoint, weights PATH or hub:NAME")
    model: str | None = opt(None, "architecture of plain weights (default: inception_resnet_v1)")
    out: str | None = opt(None, "output file (default: RUN/model.onnx, .torchscript.pt or .xml)", output="file")
    static_batch: bool = opt(False, "batch 1 only (default: any batch size)")
    format: Literal["onnx", "torchscript", "openvino"] = opt("onnx", "(default: onnx; openvino: IR .xml + .bin)")
    register: str | None = opt(None, "also register the export as the next version of NAME in MLflow's model "
                               "registry (docs/track.md)", metavar="NAME")
