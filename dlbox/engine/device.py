"""Device, precision, threads and determinism."""

from __future__ import annotations

import contextlib
import os

import torch

from dlbox.base.errors import UserError


def resolve_device(spec: str = "auto", local_rank: int = 0) -> torch.device:
    """auto picks CUDA when present (one GPU per local process), else CPU."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {spec} asked for CUDA but none is available", "use --device cpu or auto")
        index = int(spec.split(":")[1]) if ":" in spec else local_rank
        if index >= torch.cuda.device_count():
            raise UserError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here",
                "run `dlbox env` to list them",
            )
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    if spec == "mps":
        if not torch.backends.mps.is_available():
            raise UserError("--device mps is not available here", "use --device cpu")
        return torch.device("mps")
    return torch.device("cpu")


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str):
    """Autocast context for bf16/fp16 (bf16 works on CPU too); a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision])


def effective_precision(precision: str, device: torch.device) -> str:
    """The precision a run can have on ``device``: bf16 on a GPU without bf16 units (before Ampere: P100,
    V100, T4) becomes fp16 with loss scaling; emulated bf16 there would be slower than fp32."""
    if precision == "bf16" and device.type == "cuda":
        with torch.cuda.device(device):
            if not torch.cuda.is_bf16_supported(including_emulation=False):
                return "fp16"
    return precision


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """fp16 needs loss scaling to keep small gradients; bf16 and fp32 do not (the scaler is then disabled)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def physical_cores() -> int:
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
        if n:
            return n
    except ImportError:
        pass
    return os.cpu_count() or 1


def set_threads(threads: int | None, local_world_size: int = 1) -> int:
    """Set intra-op threads explicitly.

    torchrun sets OMP_NUM_THREADS=1 for every process when it starts more than one, which throttles CPU
    training; we share the physical cores among the local processes instead, unless --threads says otherwise.
    """
    n = threads or max(1, physical_cores() // max(1, local_world_size))
    torch.set_num_threads(n)
    return n


def loader_workers(cfg, ctx) -> int:
    """DataLoader workers: --workers, else none on CPU (the main process loads while torch's threads use every
    core; workers would compete for them) and on CUDA several, so the CPU keeps the GPU fed."""
    if cfg.workers is not None:
        return cfg.workers
    if ctx.device.type != "cuda":
        return 0
    return max(1, min(8, (os.cpu_count() or 2) // max(1, ctx.local_world_size) - 1))


def set_deterministic(enabled: bool) -> None:
    if not enabled:
        return
    # cuBLAS needs a fixed workspace to be deterministic; must be set before the first cuBLAS call.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=False)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
