"""TensorFlow's "SAME" padding as drop-in layers.

TF pads ``max((ceil(n / s) - 1) * s + k - n, 0)`` in total, the smaller half first: for a stride-2 layer on
an even size that is 0 before and 1 after, where PyTorch's symmetric ``padding`` pads 1 on both sides (and
so shifts every window by one pixel). These subclasses keep their parent's parameters and state-dict keys
(so converted weights load into either) and pad per input size at run time, as TF does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _pads(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel, stride, dilation=(1, 1), value: float = 0.0) -> torch.Tensor:
    """(N, C, H, W) padded as TF's SAME would for this kernel/stride/dilation."""
    top, bottom = _pads(x.shape[-2], kernel[0], stride[0], dilation[0])
    left, right = _pads(x.shape[-1], kernel[1], stride[1], dilation[1])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, [left, right, top, bottom], value=value)


class Conv2dSame(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel_size, self.stride, self.dilation)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MaxPool2dSame(nn.MaxPool2d):
    """TF's max pooling never takes a padded value: pad with -inf."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = nn.modules.utils._pair(self.kernel_size), nn.modules.utils._pair(self.stride)
        x = pad_same(x, k, s, value=float("-inf"))
        return F.max_pool2d(x, k, s, 0, 1, ceil_mode=False)


def same(m: nn.Module) -> nn.Module:
    """The SAME-padding twin of a Conv2d or MaxPool2d (parameters shared with ``m``)."""
    if isinstance(m, nn.Conv2d):
        new = Conv2dSame(m.in_channels, m.out_channels, m.kernel_size, m.stride, 0, m.dilation, m.groups,
                         bias=m.bias is not None)  # fmt: skip
        new.weight = m.weight
        new.bias = m.bias
        return new
    if isinstance(m, nn.MaxPool2d):
        return MaxPool2dSame(m.kernel_size, m.stride or m.kernel_size)
    raise TypeError(f"no SAME twin for {type(m).__name__}")
