"""MobileNet V1 (Howard et al. 2017) as TF-Slim defines it: torchvision has none.

3x3 stride-2 convolution, then 13 depthwise-separable blocks (3x3 depthwise + 1x1 pointwise, each with
BatchNorm and ReLU6), global average pooling, dropout and a linear classifier. Stride-2 layers pad as TF's
"SAME" (``Conv2dSame``), which is how every TF-Slim checkpoint was trained.
"""

from __future__ import annotations

import torch
from torch import nn

from dlbox.convert.tfsame import Conv2dSame

# (depthwise stride, pointwise width at multiplier 1.0) of blocks 1..13 (nets/mobilenet_v1.py _CONV_DEFS)
BLOCKS = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512), (1, 512), (1, 512),
          (1, 512), (2, 1024), (1, 1024)]  # fmt: skip


def widths_for(multiplier: float = 1.0, min_depth: int = 8) -> list[int]:
    """Channel counts [stem, block 1..13] for a depth multiplier, as TF-Slim rounds them."""
    d = lambda n: max(int(n * multiplier), min_depth)  # noqa: E731
    return [d(32)] + [d(w) for _, w in BLOCKS]


def _conv_bn(cin: int, cout: int, k: int, stride: int, groups: int, eps: float) -> nn.Sequential:
    conv = (Conv2dSame(cin, cout, k, stride, 0, groups=groups, bias=False) if stride > 1
            else nn.Conv2d(cin, cout, k, 1, k // 2, groups=groups, bias=False))  # fmt: skip
    return nn.Sequential(conv, nn.BatchNorm2d(cout, eps=eps), nn.ReLU6(inplace=True))


class MobileNetV1(nn.Module):
    def __init__(self, num_classes: int = 1000, widths: list[int] | None = None, dropout: float = 0.001,
                 eps: float = 1e-3):  # fmt: skip
        super().__init__()
        widths = widths or widths_for(1.0)
        layers = [_conv_bn(3, widths[0], 3, 2, 1, eps)]
        for (stride, _), cin, cout in zip(BLOCKS, widths[:-1], widths[1:], strict=True):
            layers += [_conv_bn(cin, cin, 3, stride, cin, eps), _conv_bn(cin, cout, 1, 1, 1, eps)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)  # TF-Slim keeps 0.999 of the activations
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)  # (N, C)
        return self.classifier(self.dropout(x))
