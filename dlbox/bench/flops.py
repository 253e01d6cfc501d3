"""Model FLOPs, counted by torch.utils.flop_counter on one forward pass.

FlopCounterMode counts matrix products and convolutions (a multiply-add = 2 FLOPs) and nothing else:
activations, normalisation and pooling are left out, as in the usual published figures (ResNet-50 at 224 px:
about 4.1 GFLOP multiply-adds x 2 = 8.2 GFLOP per image). A training step is taken as 3x the forward
(the backward computes gradients for both the inputs and the weights of each layer, about 2x the forward).
"""

from __future__ import annotations

import torch
from torch import nn

TRAIN_FACTOR = 3


def forward_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of ``model(example)`` for the whole batch, in eval mode and without autograd."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def step_flops(forward: int, mode: str) -> int:
    return forward * (TRAIN_FACTOR if mode == "train" else 1)
