"""The options of `dlbox bench` (kept free of torch so the CLI can register them without importing it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dlbox.base.errors import UserError
from dlbox.config import opt

if TYPE_CHECKING:
    from dlbox.runtime.paths import PathSpec

Mode = Literal["train", "infer", "both"]


@dataclass
class BenchConfig:
    model: str = opt("resnet50", "a torchvision classification model, timm:NAME (random weights), or tiny")
    weights: str | None = opt(None, "trained weights, loaded as `classify predict` loads them: hub:NAME, a TF-Slim "
                              "model.ckpt (names its own network), a run or checkpoint; default: random weights")
    mode: Mode = opt("both", "time training steps, inference, or both")
    batch_size: int = opt(32, "images per step", ge=1, le=65536)
    image_size: int | None = opt(None, "input height and width (default: the model's, 224 for most)", ge=16, le=2048)
    precision: Literal["fp32", "bf16", "fp16", "int8"] = opt(
        "fp32", "bf16/fp16: autocast in PyTorch, the inference precision in OpenVINO; int8: quantized graph"
    )
    channels_last: bool = opt(False, "NHWC memory format (PyTorch)")
    compile: bool = opt(False, "torch.compile with inductor (weights frozen into the graph for inference)")
    backend: Literal["torch", "onnxruntime", "openvino"] = opt("torch", "who runs the model")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N")
    threads: int | None = opt(None, "intra-op threads (default: the physical cores)", ge=1, le=1024)
    interop: int = opt(2, "inter-op threads (the old recipe: intra = cores, inter = 2)", ge=1, le=256)
    steps: int = opt(10, "timed steps per measurement", ge=1, le=1_000_000)
    warmup: int = opt(3, "untimed steps first (the first one compiles, allocates and pre-packs weights)", ge=0, le=1_000_000)
    seed: int = opt(0, "seed of the model's weights and the synthetic batch", ge=0, le=2**32 - 1)

    def validate(self) -> None:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise UserError(f"--device {self.device!r} is not valid", "use auto, cpu, cuda or cuda:N")
        for key, low in (("batch_size", 1), ("steps", 1), ("warmup", 0), ("interop", 1)):
            if getattr(self, key) < low:
                raise UserError(f"--{key.replace('_', '-')} must be at least {low}, got {getattr(self, key)}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.threads}")
        if self.image_size is not None and self.image_size < 16:
            raise UserError(f"--image-size must be at least 16, got {self.image_size}")

    @property
    def spec(self) -> PathSpec:
        from dlbox.runtime.paths import PathSpec

        return PathSpec(self.backend, self.precision, self.channels_last, self.compile).validate()

    @property
    def modes(self) -> list[str]:
        return ["train", "infer"] if self.mode == "both" else [self.mode]
