"""ResNet V2 (He et al. 2016, "Identity Mappings"), exactly as TF-Slim's nets/resnet_v2.py builds it.

No torchvision/timm model matches it: timm's ``resnetv2_*`` stride on the FIRST unit of a stage and have no
biases, where Slim strides on the LAST unit of blocks 1-3 and gives the stem convolution, the shortcut
projections and every unit's last 1x1 convolution biases (they have no BatchNorm after them). Per unit:

    preact = relu(bn(x))
    shortcut = conv1x1(preact, stride) if the width changes, else x subsampled (every stride-th pixel)
    out = shortcut + conv3(relu(bn2(conv2(relu(bn1(conv1(preact)))))))

The stem is a 7x7 stride-2 convolution without BatchNorm (Slim's ``conv2d_same``: symmetric padding 3) and
a 3x3 stride-2 max pool with TF's "SAME" padding; a final BatchNorm + ReLU (``postnorm``) precedes the
global average pool and the classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlbox.convert.tfsame import MaxPool2dSame

STRIDES = (2, 2, 2, 1)  # blocks 1-4, applied by each block's last unit
UNITS = {"50": [3, 4, 6, 3], "101": [3, 4, 23, 3], "152": [3, 8, 36, 3]}


class PreActBottleneck(nn.Module):
    def __init__(self, cin: int, depth: int, bottleneck: int, stride: int, eps: float):
        super().__init__()
        self.stride = stride
        self.preact = nn.BatchNorm2d(cin, eps=eps)
        self.shortcut = nn.Conv2d(cin, depth, 1, stride) if cin != depth else None
        self.conv1 = nn.Conv2d(cin, bottleneck, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(bottleneck, eps=eps)
        # conv2d_same: stride 1 is SAME (pad 1), stride 2 pads 1 on both sides explicitly, then VALID
        self.conv2 = nn.Conv2d(bottleneck, bottleneck, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(bottleneck, eps=eps)
        self.conv3 = nn.Conv2d(bottleneck, depth, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = F.relu(self.preact(x))
        shortcut = self.shortcut(preact) if self.shortcut is not None else x[:, :, :: self.stride, :: self.stride]
        r = F.relu(self.bn1(self.conv1(preact)))
        r = F.relu(self.bn2(self.conv2(r)))
        return shortcut + self.conv3(r)


class ResNetV2(nn.Module):
    def __init__(self, num_classes: int = 1001, units: list[int] | None = None,
                 base_depths: tuple[int, ...] = (64, 128, 256, 512), stem: int = 64, eps: float = 1e-5):  # fmt: skip
        super().__init__()
        units = units or UNITS["50"]
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3)
        self.pool1 = MaxPool2dSame(3, 2)
        cin = stem
        for b, (n, base, stride) in enumerate(zip(units, base_depths, STRIDES, strict=True), 1):
            layer = []
            for u in range(n):
                layer.append(PreActBottleneck(cin, base * 4, base, stride if u == n - 1 else 1, eps))
                cin = base * 4
            setattr(self, f"layer{b}", nn.Sequential(*layer))
        self.postnorm = nn.BatchNorm2d(cin, eps=eps)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.relu(self.postnorm(x)).mean((2, 3))  # (N, C)
        return self.fc(x)
