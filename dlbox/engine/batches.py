"""Batches on the device and the default validation loop (a task's ``eval_step`` averaged over batches and
ranks); used by the trainer and by ``Task.evaluate``."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from dlbox.engine import distributed
from dlbox.engine.device import autocast


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move tensors (also inside tuples, lists and dicts) to the device; images to channels_last on request."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device, channels_last) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    return batch


def floats(sums: dict[str, Any]) -> dict[str, float]:
    """Sums as Python floats (one host read for all of them)."""
    return {k: float(v) for k, v in sums.items()}


def average(sums: dict[str, float]) -> dict[str, float]:
    """Every key divided by ``count`` (NaN without samples)."""
    n = sums.get("count", 0.0)
    return {k: (v / n if n else math.nan) for k, v in sums.items() if k != "count"}


def add_sums(sums: dict[str, Any], step_sums: dict[str, Any]) -> None:
    """Add one batch's sums; tensors stay on the device (no host read per step)."""
    for k, v in step_sums.items():
        sums[k] = sums.get(k, 0.0) + (v.detach().double() if isinstance(v, torch.Tensor) else float(v))


@torch.no_grad()
def evaluate(task, model: nn.Module, loader: DataLoader, ctx, cfg) -> dict[str, float]:
    """Eval mode always (BatchNorm running statistics, no dropout); ``task.eval_step`` sums reduced over all
    ranks."""
    was_training = model.training
    model.eval()
    sums: dict[str, Any] = {}
    for batch in loader:
        batch = to_device(batch, ctx.device, cfg.channels_last)
        with autocast(ctx.device, cfg.precision):
            add_sums(sums, task.eval_step(model, batch))
    model.train(was_training)
    return average(distributed.all_reduce_sums(floats(sums), ctx))
