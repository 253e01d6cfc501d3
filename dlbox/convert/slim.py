"""TF-Slim checkpoints -> PyTorch models: name mapping, kernel layout, BatchNorm, padding, preprocessing.

Supported families (the network is recognised from the variable scopes, widths and unit counts from the
shapes, so reduced-width checkpoints such as MobileNet V1 0.25 load too):

| TF-Slim scope | PyTorch model | BatchNorm | preprocessing |
|---|---|---|---|
| InceptionV1 | torchvision googlenet (no auxiliary heads: Slim's has none) | no gamma (scale=False), eps 0.001 | [-1, 1] |
| resnet_v1_50/101/152 | torchvision ResNet with Bottleneck, strides moved as Slim has them | gamma, eps 1e-5 | mean subtraction, 0-255 |
| MobilenetV1 | dlbox's MobileNetV1 (torchvision has none) | gamma, eps 0.001 | [-1, 1] |
| MobilenetV2 | torchvision mobilenet_v2 (any width) | gamma, eps 0.001 | [-1, 1] |
| vgg_16, vgg_19 | torchvision vgg16/vgg19 (fc6-fc8 convolutions -> Linear layers) | none | mean subtraction, 0-255 |
| InceptionV3 | torchvision inception_v3 (AuxLogits left out), TF's average pools | no gamma, eps 0.001 | [-1, 1] |
| resnet_v2_50/101/152 | dlbox's ResNetV2 (resnet_v2.py: no torchvision/timm model matches) | gamma, eps 1e-5 | [-1, 1] |
| InceptionV4 | timm inception_v4 (AuxLogits left out) | no gamma, eps 0.001 | [-1, 1] |
| InceptionResnetV2 | timm inception_resnet_v2 (AuxLogits left out) | no gamma, eps 0.001 | [-1, 1] |
| (none: cell_*, reduction_cell_*) | timm nasnetalarge (nasnet.py: aux head left out, TF's SAME average pools) | gamma, eps 0.001 | [-1, 1] |
| (none: cell_*, no reduction_cell_*) | timm pnasnet5large (nasnet.py: aux head left out) | gamma, eps 0.001 | [-1, 1] |

Refused by name (REFUSED): Inception V2 and NASNet-A/PNASNet-5 Mobile (no torchvision/timm model to load
them into; timm's Large modules have fixed cell counts, 18 and 12, and Mobile NASNet wires the cell after
a reduction to another input).

What differs from the torchvision definitions, and is carried over:

- kernels are HWIO in TF, OIHW in PyTorch; depthwise kernels (H, W, C, 1) become (C, 1, H, W); the 1x1
  logits convolution becomes the Linear classifier;
- TF "SAME" padding of stride-2 layers pads 0 before / 1 after on even sizes, where torchvision pads 1
  on both sides: those layers become ``tfsame`` twins (Inception V1's 7x7 stem and stride-2 max pools,
  ResNet's max pool, MobileNet's stride-2 convolutions). ResNet's strided 7x7 and 3x3 convolutions use
  Slim's explicit symmetric padding (``conv2d_same``), which torchvision's padding already matches;
- ResNet V1 in Slim strides on the LAST unit of blocks 1-3 (torchvision: the first unit of layers 2-4),
  and its strided units without a shortcut convolution subsample the identity (1x1 max pool, stride 2);
- Inception V3's 3x3 average pools: TF's SAME pooling averages the pixels inside the image, torchvision's
  counts the padding (inception_v3.py rescales). timm's V4/IRv2 ports already pool as TF does, and all
  their strided layers are VALID, so they need no SAME twins;
- fully connected logits (V4, IRv2: (C, N)) are transposed into the Linear classifier;
- 1001-class checkpoints put "background" at output 0: it is dropped (``drop_background_class``) so
  output i is ImageNet class i.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlbox.base.errors import UserError
from dlbox.convert import tfbundle
from dlbox.convert.tfsame import same
from dlbox.models import registry, weights
from dlbox.models.heads import replace_heads

INCEPTION = {"mean": registry.INCEPTION_MEAN, "std": registry.INCEPTION_STD}  # x / 127.5 - 1 on 0-255 pixels
# VGG/ResNet V1 (converted from Caffe): subtract the channel means of 0-255 pixels, no scaling
CAFFE = {"mean": registry.CAFFE_MEAN, "std": registry.CAFFE_STD}

# family -> (scope pattern, PyTorch model name, preprocessing, BatchNorm epsilon)
FAMILIES = {
    "inception_v1": (r"InceptionV1", "googlenet", INCEPTION, 1e-3),
    "resnet_v1": (r"resnet_v1_(50|101|152)", "resnet{depth}", CAFFE, 1e-5),
    "mobilenet_v1": (r"MobilenetV1", "mobilenet_v1", INCEPTION, 1e-3),
    "mobilenet_v2": (r"MobilenetV2", "mobilenet_v2", INCEPTION, 1e-3),
    "vgg": (r"vgg_(16|19)", "vgg{depth}", CAFFE, 0.0),
    "inception_v3": (r"InceptionV3", "inception_v3", INCEPTION, 1e-3),
    "resnet_v2": (r"resnet_v2_(50|101|152)", "resnet_v2_{depth}", INCEPTION, 1e-5),
    "inception_v4": (r"InceptionV4", "inception_v4", INCEPTION, 1e-3),
    "inception_resnet_v2": (r"InceptionResnetV2", "inception_resnet_v2", INCEPTION, 1e-3),
    # no top-level scope: NASNet is told by its reduction cells, PNASNet (strided normal cells) by its stem
    "nasnet_large": (r"reduction_cell_0", "nasnetalarge", INCEPTION, 1e-3),
    "pnasnet_large": (r"cell_stem_0", "pnasnet5large", INCEPTION, 1e-3),
}
# input size each family was trained at, for checkpoints given by path (hub entries state theirs), and the
# classifier layer of each family's PyTorch model: the model registry's facts of ``slim:FAMILY``
IMG_SIZE = {s.name.removeprefix(registry.SLIM_PREFIX): s.input_size for s in registry.specs(family="slim")}
HEADS = {s.name.removeprefix(registry.SLIM_PREFIX): s.head for s in registry.specs(family="slim")}
RESNET_LAYERS = {"50": [3, 4, 6, 3], "101": [3, 4, 23, 3], "152": [3, 8, 36, 3]}
# catalog architectures (dlbox/hub/catalog.toml) this module converts; the others are refused by name
SUPPORTED_ARCHITECTURES = ("inception_v1", "resnet_v1_50", "resnet_v1_101", "resnet_v1_152", "vgg_16", "vgg_19",
                           "mobilenet_v1", "mobilenet_v1_050", "mobilenet_v1_025", "mobilenet_v2",
                           "mobilenet_v2_140", "inception_v3", "resnet_v2_50", "resnet_v2_101", "resnet_v2_152",
                           "inception_v4", "inception_resnet_v2", "nasnet_large", "pnasnet_large")  # fmt: skip
SUPPORTED_NAMES = ("Inception V1/V3/V4, Inception-ResNet-v2, ResNet V1/V2 50/101/152, VGG 16/19, "
                   "MobileNet V1/V2, NASNet-A Large, PNASNet-5 Large")
# catalog architectures refused, and why (`dlbox hub list` and the README say the same)
REFUSED = {
    "inception_v2": "torchvision and timm have no Inception V2 (BN-Inception) to load it into",
    "nasnet_mobile": "torchvision and timm have no NASNet-A Mobile",
    "pnasnet_mobile": "torchvision and timm have no PNASNet-5 Mobile",
}
META_KEY = weights.SLIM_META_KEY  # safetensors metadata written by `dlbox hub convert`


# --- tensor layout --------------------------------------------------------------------------------------


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def conv_kernel(w: np.ndarray) -> torch.Tensor:
    """(H, W, I, O) -> (O, I, H, W)."""
    return _t(w.transpose(3, 2, 0, 1))


def depthwise_kernel(w: np.ndarray) -> torch.Tensor:
    """(H, W, C, M) -> (C*M, 1, H, W): PyTorch's grouped convolution with groups=C."""
    h, k, c, m = w.shape
    return _t(w.transpose(2, 3, 0, 1).reshape(c * m, 1, h, k))


def fc_from_conv(w: np.ndarray) -> torch.Tensor:
    """A 1x1 logits convolution (1, 1, C, N) -> Linear weight (N, C)."""
    return _t(w[0, 0].T)


class _Mapper:
    """Moves TF variables into a PyTorch state dict, remembering which were used."""

    def __init__(self, variables: dict[str, np.ndarray], eps: float):
        self.v = variables
        self.eps = eps
        self.used: set[str] = set()
        self.state: dict[str, torch.Tensor] = {}

    def get(self, name: str) -> np.ndarray:
        if name not in self.v:
            raise UserError(f"the checkpoint has no variable {name!r}", "is it an unmodified TF-Slim checkpoint?")
        self.used.add(name)
        return self.v[name]

    def conv(self, tf: str, pt: str, depthwise: bool = False) -> None:
        suffix = "depthwise_weights" if depthwise else "weights"
        w = self.get(f"{tf}/{suffix}")
        self.state[f"{pt}.weight"] = depthwise_kernel(w) if depthwise else conv_kernel(w)
        if f"{tf}/biases" in self.v:
            self.state[f"{pt}.bias"] = _t(self.get(f"{tf}/biases"))

    def bn(self, tf: str, pt: str) -> None:
        """TF BatchNorm: gamma only with scale=True, beta only with center=True (defaults 1 and 0)."""
        mean = self.get(f"{tf}/moving_mean")
        n = mean.shape[0]
        gamma = self.get(f"{tf}/gamma") if f"{tf}/gamma" in self.v else np.ones(n, np.float32)
        beta = self.get(f"{tf}/beta") if f"{tf}/beta" in self.v else np.zeros(n, np.float32)
        self.state.update({f"{pt}.weight": _t(gamma), f"{pt}.bias": _t(beta), f"{pt}.running_mean": _t(mean),
                           f"{pt}.running_var": _t(self.get(f"{tf}/moving_variance")),
                           f"{pt}.num_batches_tracked": torch.tensor(0)})  # fmt: skip

    def conv_bn(self, tf: str, conv: str, bn: str, depthwise: bool = False) -> None:
        self.conv(tf, conv, depthwise)
        self.bn(f"{tf}/BatchNorm", bn)

    def logits(self, tf: str, pt: str) -> None:
        """A 1x1 logits convolution (4-D kernel) or a fully connected layer (C, N) -> Linear."""
        w = self.get(f"{tf}/weights")
        self.state[f"{pt}.weight"] = fc_from_conv(w) if w.ndim == 4 else _t(w.T)
        self.state[f"{pt}.bias"] = _t(self.get(f"{tf}/biases"))

    def branches(self, tf: str, targets: list[list[str]]) -> None:
        """An Inception block: Branch_k's convolutions (name order = layer order in the nets) -> the
        conv/bn modules named in ``targets[k]`` (a max-pool branch has none)."""
        for k, names in enumerate(targets):
            convs = self.convs_under(f"{tf}/Branch_{k}")
            if len(convs) != len(names):
                raise UserError(f"{tf}/Branch_{k} has {len(convs)} convolutions where the network has {len(names)}",
                                "is it an unmodified TF-Slim checkpoint?")  # fmt: skip
            for c, n in zip(convs, names, strict=True):
                self.conv_bn(c, f"{n}.conv", f"{n}.bn")

    def count(self, pattern: str) -> int:
        """How many distinct matches of ``pattern`` (one group) the variable names have: 1..n or an error."""
        found = {int(x) for k in self.v for x in re.findall(pattern, k)}
        if found != set(range(1, len(found) + 1)):
            raise UserError(f"the checkpoint's {pattern} are numbered {sorted(found)}", "is it a complete checkpoint?")
        return len(found)

    def convs_under(self, prefix: str) -> list[str]:
        """Scopes of the convolutions directly below ``prefix``, in name order (= layer order in Slim)."""
        return sorted({k[: -len("/weights")] for k in self.v if k.startswith(prefix + "/") and k.endswith("/weights")
                       and k.count("/") == prefix.count("/") + 2})  # fmt: skip


# --- the families ---------------------------------------------------------------------------------------

GOOGLENET_MIXED = {"Mixed_3b": "inception3a", "Mixed_3c": "inception3b", "Mixed_4b": "inception4a",
                   "Mixed_4c": "inception4b", "Mixed_4d": "inception4c", "Mixed_4e": "inception4d",
                   "Mixed_4f": "inception4e", "Mixed_5b": "inception5a", "Mixed_5c": "inception5b"}  # fmt: skip


def _map_inception_v1(m: _Mapper, scope: str, info: dict) -> None:
    for tf, pt in (("Conv2d_1a_7x7", "conv1"), ("Conv2d_2b_1x1", "conv2"), ("Conv2d_2c_3x3", "conv3")):
        m.conv_bn(f"{scope}/{tf}", f"{pt}.conv", f"{pt}.bn")
    for tf, pt in GOOGLENET_MIXED.items():
        # Branch_k's convolutions in name order (Mixed_5b spells its second Branch_2 conv "Conv2d_0a_3x3")
        targets = [["branch1"], ["branch2.0", "branch2.1"], ["branch3.0", "branch3.1"], ["branch4.1"]]
        for k, names in enumerate(targets):
            convs = m.convs_under(f"{scope}/{tf}/Branch_{k}")
            if len(convs) != len(names):
                raise UserError(f"{scope}/{tf}/Branch_{k} has {len(convs)} convolutions, Inception V1 has {len(names)}")
            for c, n in zip(convs, names, strict=True):
                m.conv_bn(c, f"{pt}.{n}.conv", f"{pt}.{n}.bn")
    m.logits(f"{scope}/Logits/Conv2d_0c_1x1", "fc")


def _map_resnet_v1(m: _Mapper, scope: str, info: dict) -> None:
    m.conv_bn(f"{scope}/conv1", "conv1", "bn1")
    layers = []
    for b in range(1, 5):
        units = {int(x) for k in m.v for x in re.findall(rf"^{scope}/block{b}/unit_(\d+)/", k)}
        if not units or units != set(range(1, len(units) + 1)):
            raise UserError(f"{scope}: block{b} has units {sorted(units)}", "is it a complete ResNet V1 checkpoint?")
        layers.append(len(units))
        for u in sorted(units):
            tf = f"{scope}/block{b}/unit_{u}/bottleneck_v1"
            pt = f"layer{b}.{u - 1}"
            for c in (1, 2, 3):
                m.conv_bn(f"{tf}/conv{c}", f"{pt}.conv{c}", f"{pt}.bn{c}")
            if f"{tf}/shortcut/weights" in m.v:
                m.conv_bn(f"{tf}/shortcut", f"{pt}.downsample.0", f"{pt}.downsample.1")
    m.logits(f"{scope}/logits", "fc")
    info["layers"] = layers


def _map_mobilenet_v1(m: _Mapper, scope: str, info: dict) -> None:
    m.conv_bn(f"{scope}/Conv2d_0", "features.0.0", "features.0.1")
    for i in range(1, 14):
        m.conv_bn(f"{scope}/Conv2d_{i}_depthwise", f"features.{2 * i - 1}.0", f"features.{2 * i - 1}.1", depthwise=True)
        m.conv_bn(f"{scope}/Conv2d_{i}_pointwise", f"features.{2 * i}.0", f"features.{2 * i}.1")
    m.logits(f"{scope}/Logits/Conv2d_1c_1x1", "classifier")


def _map_mobilenet_v2(m: _Mapper, scope: str, info: dict) -> None:
    """torchvision's features: 0 the stem, 1-17 InvertedResidual (``conv``: [expand,] depthwise, project conv,
    project BN), 18 the 1x1 Conv_1; expanded_conv_{i-1} is features.i."""
    m.conv_bn(f"{scope}/Conv", "features.0.0", "features.0.1")
    for i in range(1, 18):
        tf = f"{scope}/expanded_conv" + (f"_{i - 1}" if i > 1 else "")
        j = 0
        if f"{tf}/expand/weights" in m.v:
            m.conv_bn(f"{tf}/expand", f"features.{i}.conv.0.0", f"features.{i}.conv.0.1")
            j = 1
        m.conv_bn(f"{tf}/depthwise", f"features.{i}.conv.{j}.0", f"features.{i}.conv.{j}.1", depthwise=True)
        m.conv_bn(f"{tf}/project", f"features.{i}.conv.{j + 1}", f"features.{i}.conv.{j + 2}")
    m.conv_bn(f"{scope}/Conv_1", "features.18.0", "features.18.1")
    m.logits(f"{scope}/Logits/Conv2d_1c_1x1", "classifier.1")


VGG_CONVS = {"16": (2, 2, 3, 3, 3), "19": (2, 2, 4, 4, 4)}  # convolutions per block


def _map_vgg(m: _Mapper, scope: str, info: dict) -> None:
    """torchvision's features: conv, ReLU (, conv, ReLU ...), MaxPool per block; fc6 (a 7x7 VALID convolution
    on the 7x7 map) is the first Linear over torchvision's (C, H, W) flattening."""
    idx = 0
    for b, n in enumerate(VGG_CONVS[scope.rsplit("_", 1)[-1]], 1):
        for i in range(1, n + 1):
            m.conv(f"{scope}/conv{b}/conv{b}_{i}", f"features.{idx}")
            idx += 2
        idx += 1  # the block's max pool
    w = m.get(f"{scope}/fc6/weights")  # (7, 7, C, O) -> (O, C*7*7)
    m.state["classifier.0.weight"] = _t(w.transpose(3, 2, 0, 1).reshape(w.shape[3], -1))
    m.state["classifier.0.bias"] = _t(m.get(f"{scope}/fc6/biases"))
    m.logits(f"{scope}/fc7", "classifier.3")
    m.logits(f"{scope}/fc8", "classifier.6")


def _stem(m: _Mapper, scope: str, pairs) -> None:
    for tf, pt in pairs:
        m.conv_bn(f"{scope}/{tf}", f"{pt}.conv", f"{pt}.bn")


# Inception V3 -> torchvision's Inception3 (its Mixed_* modules are Slim's end points, one for one)
_V3_A = [["branch1x1"], ["branch5x5_1", "branch5x5_2"], ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"],
         ["branch_pool"]]  # fmt: skip
_V3_B = [["branch3x3"], ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], []]
_V3_C = [["branch1x1"], ["branch7x7_1", "branch7x7_2", "branch7x7_3"], [f"branch7x7dbl_{i}" for i in range(1, 6)],
         ["branch_pool"]]  # fmt: skip
_V3_D = [["branch3x3_1", "branch3x3_2"], [f"branch7x7x3_{i}" for i in range(1, 5)], []]
_V3_E = [["branch1x1"], ["branch3x3_1", "branch3x3_2a", "branch3x3_2b"],
         ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3a", "branch3x3dbl_3b"], ["branch_pool"]]  # fmt: skip
V3_BLOCKS = {"Mixed_5b": _V3_A, "Mixed_5c": _V3_A, "Mixed_5d": _V3_A, "Mixed_6a": _V3_B, "Mixed_6b": _V3_C,
             "Mixed_6c": _V3_C, "Mixed_6d": _V3_C, "Mixed_6e": _V3_C, "Mixed_7a": _V3_D, "Mixed_7b": _V3_E,
             "Mixed_7c": _V3_E}  # fmt: skip


def _map_inception_v3(m: _Mapper, scope: str, info: dict) -> None:
    """AuxLogits (the training-time auxiliary head on Mixed_6e) is left out: inference never uses it."""
    _stem(m, scope, [(n, n) for n in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1",
                                      "Conv2d_4a_3x3")])  # fmt: skip
    for block, targets in V3_BLOCKS.items():
        m.branches(f"{scope}/{block}", [[f"{block}.{n}" for n in names] for names in targets])
    m.logits(f"{scope}/Logits/Conv2d_1c_1x1", "fc")


def _map_resnet_v2(m: _Mapper, scope: str, info: dict) -> None:
    m.conv(f"{scope}/conv1", "conv1")  # no BatchNorm: a bias
    layers = []
    for b in range(1, 5):
        n = m.count(rf"^{scope}/block{b}/unit_(\d+)/")
        if not n:
            raise UserError(f"{scope} has no block{b}", "is it a complete ResNet V2 checkpoint?")
        layers.append(n)
        for u in range(1, n + 1):
            tf, pt = f"{scope}/block{b}/unit_{u}/bottleneck_v2", f"layer{b}.{u - 1}"
            m.bn(f"{tf}/preact", f"{pt}.preact")
            if f"{tf}/shortcut/weights" in m.v:
                m.conv(f"{tf}/shortcut", f"{pt}.shortcut")
            m.conv_bn(f"{tf}/conv1", f"{pt}.conv1", f"{pt}.bn1")
            m.conv_bn(f"{tf}/conv2", f"{pt}.conv2", f"{pt}.bn2")
            m.conv(f"{tf}/conv3", f"{pt}.conv3")
    m.bn(f"{scope}/postnorm", "postnorm")
    m.logits(f"{scope}/logits", "fc")
    info["layers"] = layers


# Inception V4 -> timm's InceptionV4 (features.0-21, Cadene's port of these checkpoints)
_V4_A = [["branch0"], ["branch1.0", "branch1.1"], ["branch2.0", "branch2.1", "branch2.2"], ["branch3.1"]]
_V4_RA = [["branch0"], ["branch1.0", "branch1.1", "branch1.2"], []]
_V4_B = [["branch0"], ["branch1.0", "branch1.1", "branch1.2"], [f"branch2.{i}" for i in range(5)], ["branch3.1"]]
_V4_RB = [["branch0.0", "branch0.1"], [f"branch1.{i}" for i in range(4)], []]
_V4_C = [["branch0"], ["branch1_0", "branch1_1a", "branch1_1b"],
         ["branch2_0", "branch2_1", "branch2_2", "branch2_3a", "branch2_3b"], ["branch3.1"]]  # fmt: skip
V4_BLOCKS = [("Mixed_3a", [[], ["conv"]]), ("Mixed_4a", [["branch0.0", "branch0.1"], [f"branch1.{i}" for i in range(4)]]),
             ("Mixed_5a", [["conv"], []])] + [(f"Mixed_5{c}", _V4_A) for c in "bcde"] + [("Mixed_6a", _V4_RA)] + \
    [(f"Mixed_6{c}", _V4_B) for c in "bcdefgh"] + [("Mixed_7a", _V4_RB)] + [(f"Mixed_7{c}", _V4_C) for c in "bcd"]  # fmt: skip


def _map_inception_v4(m: _Mapper, scope: str, info: dict) -> None:
    """AuxLogits (training-time head on Mixed_6h) is left out."""
    _stem(m, scope, [("Conv2d_1a_3x3", "features.0"), ("Conv2d_2a_3x3", "features.1"),
                     ("Conv2d_2b_3x3", "features.2")])  # fmt: skip
    for i, (block, targets) in enumerate(V4_BLOCKS, 3):
        m.branches(f"{scope}/{block}", [[f"features.{i}.{n}" for n in names] for names in targets])
    m.logits(f"{scope}/Logits/Logits", "last_linear")


# Inception-ResNet-v2 -> timm's InceptionResnetV2 (Cadene's port): Repeat*/blockNN_i are repeat*.(i-1)
_IR_35 = [["branch0"], ["branch1.0", "branch1.1"], ["branch2.0", "branch2.1", "branch2.2"]]
_IR_17_8 = [["branch0"], ["branch1.0", "branch1.1", "branch1.2"]]
IR_REPEATS = [("Repeat", "block35", "repeat", _IR_35, 10), ("Repeat_1", "block17", "repeat_1", _IR_17_8, 20),
              ("Repeat_2", "block8", "repeat_2", _IR_17_8, 9)]  # fmt: skip


def _map_inception_resnet_v2(m: _Mapper, scope: str, info: dict) -> None:
    """AuxLogits (training-time head on the last block17) is left out."""
    _stem(m, scope, [("Conv2d_1a_3x3", "conv2d_1a"), ("Conv2d_2a_3x3", "conv2d_2a"), ("Conv2d_2b_3x3", "conv2d_2b"),
                     ("Conv2d_3b_1x1", "conv2d_3b"), ("Conv2d_4a_3x3", "conv2d_4a")])  # fmt: skip
    m.branches(f"{scope}/Mixed_5b", [["mixed_5b.branch0"], ["mixed_5b.branch1.0", "mixed_5b.branch1.1"],
                                     [f"mixed_5b.branch2.{i}" for i in range(3)], ["mixed_5b.branch3.1"]])  # fmt: skip

    def residual(tf: str, pt: str, targets: list[list[str]]) -> None:
        m.branches(tf, [[f"{pt}.{n}" for n in names] for names in targets])
        m.conv(f"{tf}/Conv2d_1x1", f"{pt}.conv2d")  # the up-projection: biases, no BatchNorm

    for (repeat, block, pt, targets, n), mixed in zip(IR_REPEATS, ("Mixed_6a", "Mixed_7a", None), strict=True):
        have = m.count(rf"^{scope}/{repeat}/{block}_(\d+)/")
        if have != n:
            raise UserError(f"{scope}/{repeat} has {have} {block} blocks, Inception-ResNet-v2 has {n}")
        for i in range(1, n + 1):
            residual(f"{scope}/{repeat}/{block}_{i}", f"{pt}.{i - 1}", targets)
        if mixed == "Mixed_6a":
            m.branches(f"{scope}/Mixed_6a", [["mixed_6a.branch0"], [f"mixed_6a.branch1.{i}" for i in range(3)], []])
        elif mixed == "Mixed_7a":
            m.branches(f"{scope}/Mixed_7a", [["mixed_7a.branch0.0", "mixed_7a.branch0.1"],
                                             ["mixed_7a.branch1.0", "mixed_7a.branch1.1"],
                                             [f"mixed_7a.branch2.{i}" for i in range(3)], []])  # fmt: skip
    residual(f"{scope}/Block8", "block8", _IR_17_8)
    _stem(m, scope, [("Conv2d_7b_1x1", "conv2d_7b")])
    m.logits(f"{scope}/Logits/Logits", "classif")


def _map_nasnet(family: str):
    def mapper(m: _Mapper, scope: str, info: dict) -> None:
        from dlbox.convert import nasnet

        nasnet.map_variables(m, family, info)
        info["scope"] = family  # the checkpoints have no top-level scope

    return mapper


MAPPERS = {"inception_v1": _map_inception_v1, "resnet_v1": _map_resnet_v1, "mobilenet_v1": _map_mobilenet_v1,
           "mobilenet_v2": _map_mobilenet_v2, "vgg": _map_vgg, "inception_v3": _map_inception_v3,
           "resnet_v2": _map_resnet_v2, "inception_v4": _map_inception_v4,
           "inception_resnet_v2": _map_inception_resnet_v2, "nasnet_large": _map_nasnet("nasnet_large"),
           "pnasnet_large": _map_nasnet("pnasnet_large")}


def detect(variables: dict[str, np.ndarray], source: str = "the checkpoint") -> tuple[str, str]:
    """(family, scope) of the network whose variables these are."""
    scopes = sorted({k.split("/", 1)[0] for k in variables if "/" in k})
    for family, (pattern, *_rest) in FAMILIES.items():
        for s in scopes:
            if re.fullmatch(pattern, s):
                return family, s
    raise UserError(f"{source} holds no network dlbox converts (scopes: {', '.join(scopes[:5]) or 'none'})",
                    f"TF-Slim networks supported: {', '.join(FAMILIES)}")  # fmt: skip


def convert(variables: dict[str, np.ndarray], source: str = "the checkpoint") -> tuple[dict[str, torch.Tensor], dict]:
    """TF variables -> (PyTorch state dict, facts: family, model name, classes, preprocessing, ...).

    The state dict keeps all the checkpoint's outputs (1001 with the background class)."""
    family, scope = detect(variables, source)
    _, model_pattern, prep, eps = FAMILIES[family]
    info: dict[str, Any] = {"family": family, "scope": scope, "eps": eps, "img_size": IMG_SIZE.get(family, 224),
                            **{k: list(v) for k, v in prep.items()}}  # fmt: skip
    m = _Mapper(variables, eps)
    MAPPERS[family](m, scope, info)
    depth = scope.rsplit("_", 1)[-1]
    info["model_name"] = model_pattern.format(depth=depth)
    if family in ("resnet_v1", "resnet_v2") and info["layers"] != RESNET_LAYERS[depth]:
        info["model_name"] = f"{family}_{'-'.join(map(str, info['layers']))}"  # a reduced net: say so
    head = HEADS.get(family, "fc")
    info["num_classes"] = int(m.state[f"{head}.weight"].shape[0])
    info["head"] = head
    return m.state, info


# --- models ---------------------------------------------------------------------------------------------


def _fit(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Resize every Conv2d/BatchNorm2d/Linear to the shapes in ``state`` (reduced-width checkpoints)."""
    for name, mod in list(model.named_modules()):
        w = state.get(f"{name}.weight")
        if w is None:
            w = state.get(f"{name}.running_mean")
        if w is None:
            continue
        new: nn.Module | None = None
        if isinstance(mod, nn.Conv2d) and tuple(w.shape) != tuple(mod.weight.shape):
            groups = w.shape[0] if mod.groups > 1 and mod.groups == mod.in_channels else mod.groups
            new = type(mod)(w.shape[1] * groups, w.shape[0], mod.kernel_size, mod.stride, mod.padding, mod.dilation,
                            groups, bias=mod.bias is not None)  # fmt: skip
        elif isinstance(mod, nn.BatchNorm2d) and w.shape[0] != mod.num_features:
            _resize_bn(mod, int(w.shape[0]))  # in place: timm's BatchNormAct2d keeps its activation
        elif isinstance(mod, nn.Linear) and tuple(w.shape) != tuple(mod.weight.shape):
            new = nn.Linear(w.shape[1], w.shape[0], bias=mod.bias is not None)
        if new is not None:
            _replace(model, name, new)


def _resize_bn(bn: nn.BatchNorm2d, n: int) -> None:
    bn.num_features = n
    if bn.affine:
        bn.weight = nn.Parameter(torch.ones(n))
        bn.bias = nn.Parameter(torch.zeros(n))
    bn.running_mean = torch.zeros(n)
    bn.running_var = torch.ones(n)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    setattr(parent, name.rsplit(".", 1)[-1], new)


class Subsample(nn.Module):
    """Slim's ``resnet_utils.subsample``: a 1x1 max pool with stride s, i.e. every s-th pixel."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride]


def create(info: dict, state: dict[str, torch.Tensor]) -> nn.Module:
    """The PyTorch network of a converted checkpoint (shapes from ``state``), without loading it."""
    import torchvision

    family, nc = info["family"], int(info["num_classes"])
    eps = float(info["eps"])
    if family == "inception_v1":
        model: nn.Module = torchvision.models.GoogLeNet(num_classes=nc, aux_logits=False, transform_input=False,
                                                        init_weights=False)  # fmt: skip
        _fit(model, state)
        for name in ("conv1.conv", "maxpool1", "maxpool2", "maxpool3", "maxpool4"):
            _replace(model, name, same(model.get_submodule(name)))
    elif family == "resnet_v1":
        from torchvision.models.resnet import Bottleneck, ResNet

        model = ResNet(Bottleneck, list(info["layers"]), num_classes=nc)
        _fit(model, state)
        model.maxpool = same(nn.MaxPool2d(3, 2))
        for b, (layer, stride) in enumerate(zip([model.layer1, model.layer2, model.layer3, model.layer4],
                                                 [2, 2, 2, 1], strict=True), 1):  # fmt: skip
            for u, unit in enumerate(layer):
                s = stride if u == len(layer) - 1 else 1  # Slim strides on the block's last unit
                unit.conv2.stride = (s, s)
                unit.stride = s
                if f"layer{b}.{u}.downsample.0.weight" in state:
                    if unit.downsample is None:
                        raise UserError(f"unexpected shortcut convolution in block{b}/unit_{u + 1}")
                    unit.downsample[0].stride = (s, s)
                else:
                    unit.downsample = Subsample(s) if s > 1 else None
    elif family == "mobilenet_v1":
        from dlbox.convert.mobilenet_v1 import MobileNetV1

        widths = [int(state["features.0.0.weight"].shape[0])] + [int(state[f"features.{2 * i}.0.weight"].shape[0])
                                                                 for i in range(1, 14)]  # fmt: skip
        model = MobileNetV1(nc, widths)
    elif family == "mobilenet_v2":
        from torchvision.models.mobilenetv2 import InvertedResidual

        model = torchvision.models.mobilenet_v2(weights=None, num_classes=nc)
        _fit(model, state)
        # blocks without an expansion (expand_ratio 1 in torchvision at width 1.0) are told by the weights
        for i, block in enumerate(model.features):
            if not isinstance(block, InvertedResidual):
                continue
            expands = f"features.{i}.conv.0.0.weight" in state and state[f"features.{i}.conv.0.0.weight"].shape[1] > 1
            if expands != (len(block.conv) == 4):
                raise UserError(f"MobilenetV2 block {i}: expansion layer {'present' if expands else 'absent'} "
                                "where torchvision's has it the other way")  # fmt: skip
            stride = 2 if i in (2, 4, 7, 14) else 1
            cin = int(state[f"features.{i}.conv.0.0.weight"].shape[1]) if expands else \
                int(state[f"features.{i}.conv.0.0.weight"].shape[0])  # fmt: skip
            cout = int(block.conv[-1].num_features)
            block.use_res_connect = stride == 1 and cin == cout  # TF's rule, on the checkpoint's widths
        model.features[0][0] = same(model.features[0][0])
        for i in (2, 4, 7, 14):  # the stride-2 depthwise convolutions
            model.features[i].conv[1][0] = same(model.features[i].conv[1][0])
    elif family == "vgg":
        model = torchvision.models.get_model(info["model_name"], weights=None, num_classes=nc)
        _fit(model, state)
    elif family == "inception_v3":
        model = torchvision.models.Inception3(num_classes=nc, aux_logits=False, transform_input=False,
                                              init_weights=False)  # fmt: skip
        _fit(model, state)
        from dlbox.convert.inception_v3 import exclude_padding_from_pools

        exclude_padding_from_pools(model)
    elif family == "resnet_v2":
        from dlbox.convert.resnet_v2 import ResNetV2

        layers = list(info["layers"])
        model = ResNetV2(nc, layers, tuple(int(state[f"layer{b}.0.conv1.weight"].shape[0]) for b in range(1, 5)),
                         int(state["conv1.weight"].shape[0]), eps)  # fmt: skip
    elif family == "inception_v4":
        from timm.models.inception_v4 import InceptionV4

        model = InceptionV4(num_classes=nc, norm_eps=eps)
        _fit(model, state)
    elif family == "inception_resnet_v2":
        from timm.models.inception_resnet_v2 import InceptionResnetV2

        model = InceptionResnetV2(num_classes=nc, norm_eps=eps)
        _fit(model, state)
    elif family in ("nasnet_large", "pnasnet_large"):
        from dlbox.convert import nasnet

        model = nasnet.create(family, nc, state, _fit)
    else:
        raise UserError(f"unknown TF-Slim family {family!r}")
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.eps = eps
    return model


def drop_background(state: dict[str, torch.Tensor], info: dict) -> dict:
    """1001 outputs (0 = background) -> ImageNet's 1000 (the registry's label offset); returns the updated facts."""
    if int(info["num_classes"]) != 1001:
        return info
    weights.drop_background_class(state, [info["head"]])
    return {**info, "num_classes": 1000, "background_dropped": True}


def load_model(state: dict[str, torch.Tensor], info: dict) -> nn.Module:
    model = create(info, state)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"the converted weights do not fit {info['model_name']} "
                        f"(missing {missing[:3]}, unexpected {unexpected[:3]})")  # fmt: skip
    return model


# --- entry points ---------------------------------------------------------------------------------------


def read(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """A TF-Slim checkpoint -> (state dict with ImageNet's 1000 classes when it had 1001, facts)."""
    variables = tfbundle.read_checkpoint(path)
    state, info = convert(variables, repr(str(path)))
    return state, drop_background(state, info)


def is_checkpoint(spec: str | Path) -> bool:
    return not weights.is_reference(spec) and weights.is_tf_checkpoint(spec)


def hub_checkpoint(entry) -> Path:
    """A tf-slim catalog entry -> its checkpoint, downloaded (mirrors, hash, offline rules) and extracted once."""
    from dlbox.base.fileio import atomic_write_text
    from dlbox.hub import fetch
    from dlbox.hub import settings as hub_settings
    from dlbox.hub.extract import extract

    if entry.architecture not in SUPPORTED_ARCHITECTURES:
        why = REFUSED.get(entry.architecture, f"supported: {SUPPORTED_NAMES}")
        raise UserError(f"hub:{entry.name} is a TF-Slim {entry.architecture} checkpoint: converting that network is "
                        f"not supported ({why})",
                        f"`dlbox hub download {entry.name} --extract` to use it with TensorFlow")  # fmt: skip
    f = entry.weights_file
    archive = fetch.ensure(entry, [f], hub_settings.load())[f.name]
    target = archive.parent / f"{archive.name}.extracted"
    marker = target / ".dlbox-complete"
    if not marker.is_file():
        extract(archive, target)
        atomic_write_text(marker, archive.name + "\n")  # last: an interrupted extraction is redone
    return tfbundle.resolve(target)[1]


def safetensors_info(path: str | Path) -> dict | None:
    """The facts `dlbox hub convert` stored in a safetensors file, or None for other files."""
    meta = weights.safetensors_metadata(path)
    return json.loads(meta[META_KEY]) if META_KEY in meta else None


def read_source(source: weights.WeightsSource) -> tuple[dict[str, torch.Tensor], dict]:
    """A ``slim`` weights source (hub:NAME of a tf-slim entry, a TF checkpoint, a converted .safetensors) ->
    (state dict, facts)."""
    if source.entry is not None:
        state, info = read(source.path)
        return state, {**info, "img_size": int(getattr(source.entry, "input_size", 0) or 224), "hub": source.entry.name}
    if source.path.suffix == ".safetensors":
        from safetensors.torch import load_file

        info = safetensors_info(source.path)
        if info is None:
            raise UserError(f"{source.spec!r} was not written by `dlbox hub convert`")
        return load_file(str(source.path)), info
    return read(source.path)


def read_spec(spec: str) -> tuple[dict[str, torch.Tensor], dict]:
    """hub:NAME (tf-slim entry), a TF checkpoint, or a converted .safetensors -> (state dict, facts)."""
    return read_source(weights.resolve_weights(spec))


def transform_info(source: weights.WeightsSource) -> dict[str, Any]:
    """Input size and normalisation the network of ``source`` was trained with (read from the names only)."""
    if source.entry is not None:
        family, _ = detect(dict.fromkeys(tfbundle.variable_names(source.path)), source.spec)
        size = int(getattr(source.entry, "input_size", 0) or 224)
    elif source.path.suffix == ".safetensors":
        info = safetensors_info(source.path) or {}
        family, size = info.get("family", ""), int(info.get("img_size", 224))
    else:
        family, _ = detect(dict.fromkeys(tfbundle.variable_names(source.path)), repr(source.spec))
        size = IMG_SIZE.get(family, 224)
    prep = FAMILIES[family][2] if family in FAMILIES else INCEPTION
    return {"img_size": size, "mean": prep["mean"], "std": prep["std"]}


def imagenet_classes() -> list[str]:
    import torchvision

    return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def build(source: weights.WeightsSource, num_classes: int | None = None, fine_tune: bool = False,
          model_name: str | None = None) -> tuple[nn.Module, dict]:  # fmt: skip
    """The PyTorch model of a TF-Slim checkpoint (for ``num_classes``; ``fine_tune`` replaces the head).

    Returns (model, metadata: model_name, img_size, mean, std, classes (ImageNet's for 1000), slim facts)."""
    from dlbox.base.progress import log

    spec = source.spec
    state, info = read_source(source)
    if model_name and model_name != info["model_name"]:
        raise UserError(f"{spec} is a TF-Slim {info['scope']} checkpoint, i.e. --model {info['model_name']}, "
                        f"not {model_name}", f"use --model {info['model_name']} or leave --model out")  # fmt: skip
    if info.get("background_dropped"):
        log("TF-Slim checkpoint with 1001 classes (index 0 = background): dropped it, so labels match ImageNet's 1000")
    model = load_model(state, info)
    have = int(info["num_classes"])
    if num_classes is not None and (num_classes != have or fine_tune):
        if not fine_tune:
            raise UserError(f"the weights are for {have} classes but the data has {num_classes}",
                            "add --fine-tune to re-initialise the classifier for the new classes")  # fmt: skip
        replace_heads(model, have, num_classes)
        log(f"fine-tune: re-initialised {info['head']} for {num_classes} classes")
    meta = {"model_name": info["model_name"], "img_size": int(info.get("img_size", 224)), "mean": tuple(info["mean"]),
            "std": tuple(info["std"]), "slim": info}  # fmt: skip
    if have == 1000 and not fine_tune:
        meta["classes"] = imagenet_classes()
    return model.eval(), meta


def convert_to_file(spec: str, out: str | Path) -> dict[str, Any]:
    """`dlbox hub convert`: a TF-Slim checkpoint (hub:NAME or a path) -> a safetensors file with its facts.

    The file loads into the plain torchvision model as well (same keys, background row dropped); dlbox
    rebuilds Slim's padding and strides from the facts stored in its metadata."""
    from safetensors.torch import save_file

    from dlbox.base.fileio import atomic_write

    spec = spec if weights.is_reference(spec) or Path(spec).exists() or is_checkpoint(spec) or "/" in spec \
        else f"hub:{spec}"  # a bare NAME is the hub's  # fmt: skip
    state, info = read_spec(spec)
    out = Path(out)
    if out.suffix != ".safetensors":
        raise UserError(f"--out {str(out)!r} must end in .safetensors")
    tensors = {k: v.contiguous() for k, v in state.items()}
    atomic_write(out, lambda tmp: save_file(tensors, tmp, metadata={META_KEY: json.dumps(info)}))
    params = sum(int(v.numel()) for k, v in state.items() if not k.endswith("num_batches_tracked"))
    return {"source": spec, "file": str(out), "model_name": info["model_name"], "family": info["family"],
            "num_classes": int(info["num_classes"]), "params": params,
            "background_dropped": bool(info.get("background_dropped"))}  # fmt: skip
