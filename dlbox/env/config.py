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
    lr: float = opt(2e-3, "Adam learning rate (cosine decay to 0)", gt=0, le=1e4)
    epochs: int = opt(15, "epochs", ge=1, le=100_000)
    batch_size: int = opt(32, "batch size per process", ge=1, le=65536)


# `dlbox env`, `dlbox env test` and `dlbox env gpu` declared for dlbox.cliutil.Command.
@dataclass(kw_only=True)
class DoctorArgs:
    runs_dir: str | None = opt(None, "where runs go, for the free-disk check (default: runs)", output=False)


@dataclass(kw_only=True)
class IntegrityArgs:
    config: str | None = opt(None, "a YAML file of options (typed options win)")
    distributed: int | None = opt(None, "run PyTorch as N DDP processes (= --nproc-per-node N)", ge=1, metavar="N", le=1024)
    options: IntegrityConfig = section("integrity test")


@dataclass(kw_only=True)
class GpuArgs:
    watch: bool = opt(False, "a new line per GPU every --interval seconds, until Ctrl-C")
    interval: float = opt(1.0, "seconds between samples (default: 1)", gt=0, le=86400, metavar="S")
    count: int | None = opt(None, "stop after N samples", ge=1, le=10**9, metavar="N")
