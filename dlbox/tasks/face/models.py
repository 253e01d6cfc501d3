"""Face embedders: (N, 3, S, S) face crops, pixels standardised as (p - 127.5) / 128 -> (N, D) unit vectors.

- ``inception_resnet_v1``: FaceNet's Inception-ResNet-v1 (512-d, 160x160) with the module names and shapes of
  facenet-pytorch's published state dicts (20180402-114759-vggface2.pt, 20180408-102900-casia-webface.pt), so
  those files load as they were trained (their ``logits.*`` classifier rows are dropped).
- ``mobileface``: a small MobileFaceNet-style net (depthwise-separable inverted residuals with PReLU, then a
  linear embedding with BatchNorm) to train from scratch; any input size from 32 px. Few FLOPs, but depthwise
  convolutions are slow to train on CPUs (their backward pass is memory-bound).
- ``tinyface``: a plain residual CNN with dense 3x3 convolutions (widths 16-32-64-128 at ``width`` 1), the
  fastest to train on a CPU at small sizes (the same lesson as tinydet's backbone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlbox.base.errors import UserError
from dlbox.models import registry
from dlbox.models.weights import from_path, load_state, read_state

ARCHS = registry.names("face")  # the embedders and their input sizes come from the model registry
DEFAULT_SIZE = {name: registry.get(name).input_size for name in ARCHS}
HUB_WEIGHTS = {"facenet-vggface2": "inception_resnet_v1", "facenet-casia-webface": "inception_resnet_v1"}


# --- Inception-ResNet-v1 (names as facenet-pytorch) --------------------------------------------------------
class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size, stride: int = 1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)  # TensorFlow's epsilon, as the weights were trained
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


def _seq(*layers: tuple) -> nn.Sequential:
    return nn.Sequential(*(BasicConv2d(*a[:3], **a[3]) if len(a) > 3 else BasicConv2d(*a) for a in layers))


class _Residual(nn.Module):
    """Branches concatenated, projected by a 1x1 conv, scaled and added to the input (then ReLU)."""

    def __init__(self, scale: float, channels: int, branch_out: int, relu: bool = True):
        super().__init__()
        self.scale = scale
        self.conv2d = nn.Conv2d(branch_out, channels, 1)
        if relu:
            self.relu = nn.ReLU()

    def forward(self, x):
        branches = [self.branch0(x), self.branch1(x)] + ([self.branch2(x)] if hasattr(self, "branch2") else [])
        out = self.conv2d(torch.cat(branches, 1)) * self.scale + x
        return self.relu(out) if hasattr(self, "relu") else out


class Block35(_Residual):  # 35x35 grid in the paper's 299 px terms; 17x17 at 160 px
    def __init__(self, scale: float = 1.0):
        super().__init__(scale, 256, 96)
        self.branch0 = BasicConv2d(256, 32, 1)
        self.branch1 = _seq((256, 32, 1), (32, 32, 3, {"padding": 1}))
        self.branch2 = _seq((256, 32, 1), (32, 32, 3, {"padding": 1}), (32, 32, 3, {"padding": 1}))


class Block17(_Residual):
    def __init__(self, scale: float = 1.0):
        super().__init__(scale, 896, 256)
        self.branch0 = BasicConv2d(896, 128, 1)
        self.branch1 = _seq((896, 128, 1), (128, 128, (1, 7), {"padding": (0, 3)}), (128, 128, (7, 1), {"padding": (3, 0)}))


class Block8(_Residual):
    def __init__(self, scale: float = 1.0, noReLU: bool = False):  # noqa: N803 (facenet's name)
        super().__init__(scale, 1792, 384, relu=not noReLU)
        self.branch0 = BasicConv2d(1792, 192, 1)
        self.branch1 = _seq((1792, 192, 1), (192, 192, (1, 3), {"padding": (0, 1)}), (192, 192, (3, 1), {"padding": (1, 0)}))


class Mixed_6a(nn.Module):  # noqa: N801
    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(256, 384, 3, stride=2)
        self.branch1 = _seq((256, 192, 1), (192, 192, 3, {"padding": 1}), (192, 256, 3, {"stride": 2}))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class Mixed_7a(nn.Module):  # noqa: N801
    def __init__(self):
        super().__init__()
        self.branch0 = _seq((896, 256, 1), (256, 384, 3, {"stride": 2}))
        self.branch1 = _seq((896, 256, 1), (256, 256, 3, {"stride": 2}))
        self.branch2 = _seq((896, 256, 1), (256, 256, 3, {"padding": 1}), (256, 256, 3, {"stride": 2}))
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class InceptionResnetV1(nn.Module):
    """(N, 3, 160, 160) -> (N, 512) unit embeddings."""

    def __init__(self, embedding_dim: int = 512, dropout: float = 0.6):
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2)
        self.repeat_1 = nn.Sequential(*(Block35(0.17) for _ in range(5)))
        self.mixed_6a = Mixed_6a()
        self.repeat_2 = nn.Sequential(*(Block17(0.10) for _ in range(10)))
        self.mixed_7a = Mixed_7a()
        self.repeat_3 = nn.Sequential(*(Block8(0.20) for _ in range(5)))
        self.block8 = Block8(noReLU=True)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.last_linear = nn.Linear(1792, embedding_dim, bias=False)
        self.last_bn = nn.BatchNorm1d(embedding_dim, eps=0.001)

    def forward(self, x):
        for name in ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b",
                     "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8", "avgpool_1a"):  # fmt: skip
            x = getattr(self, name)(x)
        x = self.last_bn(self.last_linear(self.dropout(x).flatten(1)))  # (N, 512)
        return F.normalize(x, p=2, dim=1)


# --- MobileFaceNet-style small net ---------------------------------------------------------------------
def _cbp(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.PReLU(cout))
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int = 2):
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(_cbp(cin, mid, 1), _cbp(mid, mid, 3, stride, groups=mid), _cbp(mid, cout, 1, act=False))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileFace(nn.Module):
    """(N, 3, S, S) -> (N, D) unit embeddings; ``width`` scales every layer (1.0: 64-128 channels)."""

    def __init__(self, embedding_dim: int = 128, width: float = 1.0):
        super().__init__()
        c = [max(8, int(round(v * width / 8)) * 8) for v in (64, 64, 128, 128)]
        self.stem = nn.Sequential(_cbp(3, c[0], 3, 2), _cbp(c[0], c[0], 3, 1, groups=c[0]))
        self.stages = nn.Sequential(
            Bottleneck(c[0], c[1], 2), Bottleneck(c[1], c[1], 1),
            Bottleneck(c[1], c[2], 2), Bottleneck(c[2], c[2], 1),
            Bottleneck(c[2], c[3], 2), Bottleneck(c[3], c[3], 1),
        )  # fmt: skip
        self.conv_last = _cbp(c[3], 4 * c[3], 1)
        # Global depthwise pooling (MobileFaceNet's GDC) needs a fixed size; average pooling keeps any input size.
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(4 * c[3], embedding_dim, bias=False)
        self.bn = nn.BatchNorm1d(embedding_dim)

    def forward(self, x):
        x = self.pool(self.conv_last(self.stages(self.stem(x)))).flatten(1)
        return F.normalize(self.bn(self.linear(x)), p=2, dim=1)


class _Basic(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                  nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))  # fmt: skip

    def forward(self, x):
        return F.relu(x + self.body(x))


class TinyFace(nn.Module):
    """(N, 3, S, S) -> (N, D) unit embeddings: four stride-2 stages of dense 3x3 convs, each with a residual block."""

    def __init__(self, embedding_dim: int = 64, width: float = 1.0):
        super().__init__()
        c = [max(8, int(round(v * width / 8)) * 8) for v in (16, 32, 64, 128)]
        layers: list[nn.Module] = []
        cin = 3
        for cout in c:
            layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), _Basic(cout)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(cin, embedding_dim, bias=False)
        self.bn = nn.BatchNorm1d(embedding_dim)

    def forward(self, x):
        x = self.pool(self.features(x)).flatten(1)
        return F.normalize(self.bn(self.linear(x)), p=2, dim=1)


def build(arch: str, embedding_dim: int | None = None, width: float = 1.0) -> nn.Module:
    if arch == "inception_resnet_v1":
        return InceptionResnetV1(embedding_dim or 512)
    if arch == "mobileface":
        return MobileFace(embedding_dim or 128, width)
    if arch == "tinyface":
        return TinyFace(embedding_dim or 64, width)
    from dlbox.base.errors import close_matches

    raise UserError(f"unknown face model {arch!r}", close_matches(arch, ARCHS) or f"one of {', '.join(ARCHS)}")


def plain_state(state: dict[str, Any]) -> dict[str, Any]:
    """facenet-pytorch's ``logits.*`` classifier rows dropped (the embedder does not have them)."""
    return {k: v for k, v in state.items() if not k.startswith("logits.")}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state dict (.pt/.pth via weights_only=True, or .safetensors, or a dlbox checkpoint's model);
    facenet's ``logits.*`` dropped."""
    return plain_state(read_state(from_path(Path(path)))[0])


def load_into(model: nn.Module, state: dict[str, Any], source: str) -> None:
    """Strict load; mismatched names or shapes are the one mismatch error (dlbox.models.weights)."""
    load_state(model, state, source, hint="pass --model for the architecture the weights were trained as")
