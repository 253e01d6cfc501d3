"""Distributed data parallel through torch's own launcher (torch.distributed.run / elastic launch).

A train command with ``--nproc-per-node N`` (or ``--nnodes M``) starts its worker processes through
elastic launch, exactly as ``torchrun`` would; a command started by ``torchrun`` directly finds the
launcher's environment (RANK, WORLD_SIZE, LOCAL_RANK, ...) and runs as one worker. gloo on CPU, nccl on GPU.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from dlbox.engine.config import EngineConfig
from dlbox.engine.device import physical_cores, resolve_device
from dlbox.errors import UserError


@dataclass
class DistContext:
    rank: int
    local_rank: int
    world_size: int
    local_world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device_spec: str) -> DistContext:
    """Join the process group when started by the launcher; otherwise a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    device = resolve_device(device_spec, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    return DistContext(rank, local_rank, world, local_world, device)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sums(sums: dict[str, float | torch.Tensor], ctx: DistContext) -> dict[str, float]:
    """Sum each value over all ranks (float64 so counts stay exact)."""
    keys = sorted(sums)
    if ctx.distributed:  # a rank with no samples has no keys; agree on the union so the collective matches
        keys = sorted({k for ks in gather_objects(keys, ctx) for k in ks})
    if not keys:
        return {}
    dev = ctx.device if ctx.device.type == "cuda" else torch.device("cpu")
    t = torch.tensor([float(sums.get(k, 0.0)) for k in keys], dtype=torch.float64, device=dev)
    if ctx.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return dict(zip(keys, t.tolist(), strict=True))


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True when the flag is set on any rank (so all ranks stop at the same step)."""
    if not ctx.distributed:
        return flag
    dev = ctx.device if ctx.device.type == "cuda" else torch.device("cpu")
    t = torch.tensor([1 if flag else 0], device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _torchrun_argv(cfg: EngineConfig) -> list[str]:
    argv = ["--nproc-per-node", str(cfg.nproc_per_node), "--max-restarts", "0"]
    if cfg.nnodes == 1:
        # torchrun --standalone: a private rendezvous on a free loopback port.
        argv += ["--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0", "--rdzv-id", str(uuid.uuid4())]
    else:
        argv += [
            "--nnodes", str(cfg.nnodes), "--node-rank", str(cfg.node_rank),
            "--master-addr", cfg.master_addr, "--master-port", str(cfg.master_port),
        ]  # fmt: skip
    return argv


def launch(cfg: EngineConfig, fn, *args) -> dict[int, Any]:
    """Run ``fn(*args)`` in ``nproc_per_node`` processes on this node; return {global rank: return value}.

    ``fn`` must be importable (module level): the workers are spawned, not forked.
    """
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, parse_args

    # torchrun would set OMP_NUM_THREADS=1 for every worker; share the physical cores instead.
    threads = getattr(cfg, "threads", None) or max(1, physical_cores() // cfg.nproc_per_node)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    launch_cfg, _, _ = config_from_args(parse_args([*_torchrun_argv(cfg), "dlbox-worker"]))
    try:
        return elastic_launch(launch_cfg, entrypoint=fn)(*args)
    except Exception as e:  # ChildFailedError and rendezvous errors carry a long report; keep one line
        name = type(e).__name__
        first = str(e).strip().splitlines()[0] if str(e).strip() else name
        raise UserError(
            f"distributed run failed ({name}: {first[:200]})",
            "see the worker output above; for several nodes check --master-addr/--master-port and that "
            "every node was started with the same --nnodes",
        ) from None


def _worker_entry(fn, *args):
    """Runs in each spawned worker: user errors and interruptions come back as values, not tracebacks."""
    from dlbox.engine.signals import Interrupted

    try:
        return fn(*args)
    except UserError as e:
        return {"__dlbox_error__": (type(e).__name__, e.message, e.hint)}
    except Interrupted as e:
        return {"__dlbox_interrupted__": (e.run_dir, e.epoch, e.step, e.signum)}


def run(cfg: EngineConfig, fn, *args) -> Any:
    """``fn(*args)`` here, or in the processes ``cfg`` asks for; returns global rank 0's value
    (None on a node that does not hold rank 0)."""
    if not cfg.launches_processes or launched_by_torchrun():
        return fn(*args)
    from dlbox.engine.signals import Interrupted
    from dlbox.errors import CheckpointError

    results = launch(cfg, _worker_entry, fn, *args)
    for value in results.values():
        if isinstance(value, dict) and "__dlbox_error__" in value:
            kind, message, hint = value["__dlbox_error__"]
            raise (CheckpointError if kind == "CheckpointError" else UserError)(message, hint)
        if isinstance(value, dict) and "__dlbox_interrupted__" in value:
            raise Interrupted(*value["__dlbox_interrupted__"])
    return results.get(0)
