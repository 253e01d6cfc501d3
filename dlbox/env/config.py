"""The options of `dlbox env test` (kept free of torch so the CLI can register them without importing it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlbox.config import opt
from dlbox.engine.config import EngineConfig


@dataclass
class IntegrityConfig(EngineConfig):
    framework: Literal["all", "torch", "keras", "tensorflow", "caffe"] = opt("all", "which frameworks to test")
    data: str | None = opt(None, "a folder with MNIST IDX files (default: scikit-learn's bundled digits)")
    lr: float = opt(2e-3, "Adam learning rate (cosine decay to 0)", gt=0)
    epochs: int = opt(15, "epochs", ge=1)
    batch_size: int = opt(32, "batch size per process", ge=1)
