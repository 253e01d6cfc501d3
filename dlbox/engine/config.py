"""Options every training command shares: device, precision, seeding, run directory, launcher."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlbox.base.errors import UserError
from dlbox.config import opt

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass
class EngineConfig:
    # device and numerics
    device: str = opt("auto", "auto, cpu, cuda or cuda:N (auto: one GPU per process when CUDA is present)")
    precision: Precision = opt("fp32", "autocast precision; bf16 works on CPU too, fp16 adds loss scaling")
    channels_last: bool = opt(False, "NHWC memory format for images (faster convolutions on CPU/GPU)")
    seed: int = opt(0, "seed for weights, data order and augmentation", ge=0, le=2**32 - 1)
    deterministic: bool = opt(False, "deterministic algorithms only (bit-identical reruns on CPU)")
    threads: int | None = opt(None, "intra-op threads per process (default: physical cores / local processes)", ge=1, le=1024)
    # loop
    epochs: int = opt(10, "total epochs; with --resume, a larger N extends a finished run", ge=1, le=100_000)
    batch_size: int = opt(64, "batch size per process", ge=1, le=65536)
    workers: int | None = opt(None, "DataLoader worker processes (default: 0 on CPU, up to 8 per GPU)", ge=0, le=256)
    max_steps: int | None = opt(None, "stop after N training steps, mid-epoch if need be (with a checkpoint); "
                                "the run ends at --epochs or --max-steps, whichever comes first", ge=1, le=10**12)
    eval_every: int | None = opt(None, "also validate every N training steps (a record of kind 'eval')", ge=1, le=10**9)
    # run directory and checkpoints
    runs_dir: str = opt("runs", "runs go to RUNS_DIR/<task>/<name>/", output="dir")
    name: str | None = opt(None, "run name (default: a timestamp)")
    resume: str | None = opt(None, "continue a run: its directory or a checkpoint file")
    monitor_interval: float = opt(5.0, "seconds between CPU/RAM/GPU samples into the run's metrics (0: off)", ge=0, le=3600)
    tracker: str = opt("tensorboard", "where metrics go besides metrics.jsonl: tensorboard, none, or several "
                       "comma-separated (see docs/architecture.md, trackers)")
    save_every: int | None = opt(None, "also write checkpoints/last.pt every N training steps, mid-epoch", ge=1, le=10**12)
    save_every_minutes: float | None = opt(None, "also write checkpoints/last.pt every M minutes, mid-epoch", gt=0, le=525_600)
    # launcher (torch.distributed.run); nproc_per_node > 1 or nnodes > 1 spawns the processes
    nproc_per_node: int = opt(1, "processes on this node (DDP through torch's launcher)", ge=1, le=1024)
    nnodes: int = opt(1, "number of nodes", ge=1, le=1024)
    node_rank: int = opt(0, "this node's rank, 0..nnodes-1", ge=0, le=1023)
    master_addr: str = opt("127.0.0.1", "address of the node with rank 0")
    master_port: int = opt(29500, "port on the rank-0 node", ge=1, le=65535)
    max_restarts: int = opt(0, "restart the worker group this many times when a worker dies; it resumes from "
                            "the newest checkpoint in the same run directory (use with --save-every)", ge=0, le=1000)
    dist_timeout: float = opt(600.0, "seconds a collective waits for a peer that hangs before the job fails "
                              "(default 10 min: longer than a checkpoint write or evaluation on a slow CPU, "
                              "far shorter than PyTorch's 30)", gt=0, le=604800)
    iface: str | None = opt(None, "network interface for the rendezvous and collectives on machines with several "
                            "(sets GLOO_SOCKET_IFNAME/NCCL_SOCKET_IFNAME; default: the one that reaches "
                            "--master-addr)")

    def validate(self) -> None:
        import re

        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            raise UserError(f"--device {self.device!r} is not valid", "use auto, cpu, cuda or cuda:N")
        from dlbox.engine import tracking

        tracking.parse(self.tracker)
        if not 0 <= self.node_rank < self.nnodes:
            raise UserError(
                f"--node-rank {self.node_rank} is out of range for --nnodes {self.nnodes}",
                f"use 0 to {self.nnodes - 1}",
            )

    @property
    def launches_processes(self) -> bool:
        return self.nproc_per_node > 1 or self.nnodes > 1
