"""The options of `dlbox env test` (kept free of torch so the CLI can register them without importing it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlbox.config import opt, section
from dlbox.engine.config import EngineConfig


@dataclass
class IntegrityConfig(EngineConfig):
    framework: Literal["all", "torch", "keras", "tensorflow", "caffe"] = opt("all", "which frameworks to test")
    data: str | None = opt(None, "a folder with MNIST IDX files (default: scikit-learn's bundled digits)")
    lr: float = opt(2e-3, "Adam learning rate (cosine decay to 0)", gt=0)
    epochs: int = opt(15, "epochs", ge=1)
    batch_size: int = opt(32, "batch size per process", ge=1)


# `dlbox env` and `dlbox env test` declared for dlbox.cliutil.Command (`dlbox env gpu` streams one JSON document
# per sample, so it is registered by hand).
@dataclass(kw_only=True)
class DoctorArgs:
    runs_dir: str | None = opt(None, "where runs go, for the free-disk check (default: runs)")


@dataclass(kw_only=True)
class IntegrityArgs:
    config: str | None = opt(None, "a YAML file of options (typed options win)")
    distributed: int | None = opt(None, "run PyTorch as N DDP processes (= --nproc-per-node N)", ge=1, metavar="N")
    options: IntegrityConfig = section("integrity test")
