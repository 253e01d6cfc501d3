"""Options every training command shares: device, precision, seeding, run directory, launcher."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlbox.config import opt
from dlbox.errors import UserError

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass
class EngineConfig:
    # device and numerics
    device: str = opt("auto", "auto, cpu, cuda or cuda:N (auto: one GPU per process when CUDA is present)")
    precision: Precision = opt("fp32", "autocast precision; bf16 works on CPU too, fp16 adds loss scaling")
    channels_last: bool = opt(False, "NHWC memory format for images (faster convolutions on CPU/GPU)")
    seed: int = opt(0, "seed for weights, data order and augmentation")
    deterministic: bool = opt(False, "deterministic algorithms only (bit-identical reruns on CPU)")
    threads: int | None = opt(None, "intra-op threads per process (default: physical cores / local processes)")
    # loop
    epochs: int = opt(10, "total epochs; with --resume, a larger N extends a finished run")
    batch_size: int = opt(64, "batch size per process")
    workers: int = opt(0, "DataLoader worker processes")
    # run directory
    runs_dir: str = opt("runs", "runs go to RUNS_DIR/<task>/<name>/")
    name: str | None = opt(None, "run name (default: a timestamp)")
    resume: str | None = opt(None, "continue a run: its directory or a checkpoint file")
    # launcher (torch.distributed.run); nproc_per_node > 1 or nnodes > 1 spawns the processes
    nproc_per_node: int = opt(1, "processes on this node (DDP through torch's launcher)")
    nnodes: int = opt(1, "number of nodes")
    node_rank: int = opt(0, "this node's rank, 0..nnodes-1")
    master_addr: str = opt("127.0.0.1", "address of the node with rank 0")
    master_port: int = opt(29500, "port on the rank-0 node")

    def validate(self) -> None:
        import re

        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            raise UserError(f"--device {self.device!r} is not valid", "use auto, cpu, cuda or cuda:N")
        for key in ("epochs", "batch_size", "nproc_per_node", "nnodes"):
            if getattr(self, key) < 1:
                raise UserError(f"--{key.replace('_', '-')} must be at least 1, got {getattr(self, key)}")
        if self.workers < 0:
            raise UserError(f"--workers must be 0 or more, got {self.workers}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.threads}")
        if not 0 <= self.node_rank < self.nnodes:
            raise UserError(
                f"--node-rank {self.node_rank} is out of range for --nnodes {self.nnodes}",
                f"use 0 to {self.nnodes - 1}",
            )
        if not 0 < self.master_port < 65536:
            raise UserError(f"--master-port {self.master_port} is not a TCP port", "use 1024-65535")

    @property
    def launches_processes(self) -> bool:
        return self.nproc_per_node > 1 or self.nnodes > 1
