"""BatchNorm done right for small data and frozen layers.

The classic trap: a network trained on a few dozen images reaches ~0.99 accuracy in train mode (batch
statistics) but ~0.5 in eval mode, because the running averages barely moved from their initial values
(TensorFlow's default decay of 0.999 is momentum 0.001 here). Evaluate in eval mode always; recalibrate the
running statistics over the training data before evaluation and export; keep frozen layers' statistics frozen.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from dlbox.engine.distributed import DistContext


def bn_layers(model: nn.Module) -> list[_BatchNorm]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm)]


def set_bn_momentum(model: nn.Module, momentum: float) -> int:
    layers = bn_layers(model)
    for m in layers:
        m.momentum = momentum
    return len(layers)


def freeze_bn(module: nn.Module) -> None:
    """Eval mode for the BatchNorm layers inside ``module`` (frozen layers must not drift); call after train()."""
    for m in bn_layers(module):
        m.eval()


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches, ctx: DistContext | None = None, max_batches: int | None = None) -> int:
    """Recompute every BatchNorm layer's running mean/var as the exact average over ``batches`` (inputs only)
    with the current weights; averaged over ranks when distributed. Returns the number of batches used."""
    layers = bn_layers(model)
    if not layers:
        return 0
    saved = [(m.momentum, m.training) for m in layers]
    was_training = model.training
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: equal weight per batch
        m.train()
    n = 0
    for x in batches:
        if isinstance(x, torch.Tensor) and len(x) < 2:
            continue  # one sample: BatchNorm in train mode has no variance to measure (it would raise)
        model(x)
        n += 1
        if max_batches is not None and n >= max_batches:
            break
    for m, (momentum, training) in zip(layers, saved, strict=True):
        m.momentum = momentum
        m.train(training)
    model.train(was_training)
    if ctx is not None and ctx.distributed:
        import torch.distributed as dist

        for m in layers:
            for buf in (m.running_mean, m.running_var):
                dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                buf /= ctx.world_size
    return n
