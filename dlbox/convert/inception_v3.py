"""torchvision's Inception3 made to compute what TF-Slim's nets/inception_v3.py computes.

The one difference left once the weights are in: the 3x3 stride-1 average pools of the Mixed_5*, 6b-6e and
7b/7c blocks. TF's "SAME" pooling averages the pixels inside the image only; torchvision's
``F.avg_pool2d(x, 3, 1, 1)`` counts the zero padding too (``count_include_pad``), which darkens every border
pixel. ``PoolBranchConv`` (the ``branch_pool`` BasicConv2d of those blocks, same parameters and keys) rescales
its input by 9 / (pixels of the window inside the image), which turns one average into the other exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import BasicConv2d, InceptionA, InceptionC, InceptionE


def average_of_valid(x: torch.Tensor) -> torch.Tensor:
    """A pad-including 3x3 average (N, C, H, W) -> the average over the pixels inside the image."""
    inside = F.avg_pool2d(torch.ones_like(x[:1, :1]), 3, 1, 1)  # (1, 1, H, W): fraction of the window inside
    return x / inside


class PoolBranchConv(BasicConv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(average_of_valid(x))


def exclude_padding_from_pools(model: nn.Module) -> nn.Module:
    for mod in model.modules():
        if isinstance(mod, (InceptionA, InceptionC, InceptionE)):
            mod.branch_pool.__class__ = PoolBranchConv
    return model
