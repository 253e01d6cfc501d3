"""TF-Slim's NASNet-A Large and PNASNet-5 Large -> timm's ``nasnetalarge`` / ``pnasnet5large``.

timm's modules are Cadene's ports of these very checkpoints, so every TF variable has its module: a cell
``cell_N`` (``cell_stem_N``, ``reduction_cell_N``) is timm's attribute of that name, its ``comb_iter_K/left``
and ``/right`` operations timm's ``comb_iter_K_left`` / ``_right``, and the names inside follow one rule set
(``NAME_RULES``). The checkpoints have no top-level scope; the auxiliary head (``aux_11`` / ``aux_7``, used
in training only) is left out.

One computation differs once the weights are in: timm's stride-2 "same" average pools
(``AvgPool2dSame``, in NASNet's stem and reduction cells) pad with zeros *before* pooling, so ``count_include_pad=False``
no longer excludes them and every border window is divided by 9. TF's SAME average divides by the pixels
inside the image; ``TfAvgPool2dSame`` does that. timm's stride-1 pools (static padding,
``count_include_pad=False``), its "same" convolutions and max pools already compute what TF does, drop path
has no place at inference, and BatchNorm uses TF's epsilon 0.001.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlbox.base.errors import UserError

# TF scope inside a cell (between the cell's scope and the variable's own name) -> timm's module path
NAME_RULES = [
    # a separable convolution: its depthwise_weights and pointwise_weights -> .depthwise_conv2d, .pointwise_conv2d
    (r"comb_iter_(\d)/(left|right)/separable_\dx\d_(\d)", r"comb_iter_\1_\2.separable_\3"),
    (r"comb_iter_(\d)/(left|right)/bn_sep_\dx\d_(\d)", r"comb_iter_\1_\2.bn_sep_\3"),
    (r"comb_iter_(\d)/(left|right)/1x1", r"comb_iter_\1_\2.conv"),  # a pool's or a strided "none"'s 1x1
    (r"comb_iter_(\d)/(left|right)/bn_1", r"comb_iter_\1_\2.bn"),
    (r"1x1", "conv_1x1.conv"),
    (r"beginning_bn", "conv_1x1.bn"),
    (r"prev_1x1", "conv_prev_1x1.conv"),
    (r"prev_bn", "conv_prev_1x1.bn"),
]  # fmt: skip
# factorized reduction of the previous layer: NASNet keeps it on the cell, PNASNet in conv_prev_1x1
FACTORIZED = {"path1_conv": "path_1.conv", "path2_conv": "path_2.conv", "final_path_bn": "final_path_bn"}
PATH_RULES = {"nasnet_large": "", "pnasnet_large": "conv_prev_1x1."}
STEM = {"nasnet_large": "conv0", "pnasnet_large": "conv_0"}
CELLS = {"nasnet_large": 18, "pnasnet_large": 12}  # normal cells; the Mobile nets have 12 / 9
TIMM = {"nasnet_large": "nasnetalarge", "pnasnet_large": "pnasnet5large"}
WEIGHT_LEAVES = ("weights", "depthwise_weights", "pointwise_weights")
BN_PARTS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
CELL_SCOPE = re.compile(r"^((?:cell_stem|reduction_cell|cell)_\d+)/(.+)/([a-z_]+)$")


def _kernel(w: np.ndarray, depthwise: bool) -> torch.Tensor:
    if depthwise:  # (H, W, C, 1) -> (C, 1, H, W)
        return torch.from_numpy(np.ascontiguousarray(w.transpose(2, 3, 0, 1).reshape(-1, 1, *w.shape[:2])))
    return torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))  # (H, W, I, O) -> (O, I, H, W)


def _module(family: str, scope: str) -> str | None:
    """A TF scope inside a cell -> timm's module path (None: not a module of the inference network)."""
    for pattern, target in NAME_RULES:
        if re.fullmatch(pattern, scope):
            return re.sub(pattern, target, scope)
    if scope in FACTORIZED:
        return PATH_RULES[family] + FACTORIZED[scope]
    return None


def map_variables(m, family: str, info: dict) -> None:
    """``m``: slim._Mapper over the checkpoint. Fills m.state with timm's keys."""
    cells = {int(x) for k in m.v for x in re.findall(r"^cell_(\d+)/", k)}
    if cells != set(range(CELLS[family])):
        raise UserError(f"the checkpoint has {len(cells)} cells where timm's {TIMM[family]} has "
                        f"{CELLS[family]}", "NASNet-A / PNASNet-5 Mobile checkpoints are not supported")  # fmt: skip
    stem = STEM[family]
    m.conv("conv0", f"{stem}.conv")
    m.bn("conv0_bn", f"{stem}.bn")
    for name in sorted(m.v):
        c = CELL_SCOPE.match(name)
        if not c:
            continue
        cell, scope, leaf = c.groups()
        if leaf not in WEIGHT_LEAVES and leaf not in BN_PARTS:
            continue  # not a weight of the network (an optimizer slot, a moving-average shadow)
        target = _module(family, scope)
        if target is None:
            raise UserError(f"unexpected variable {name!r} in a {family} checkpoint", "is it an unmodified TF-Slim "
                            "checkpoint?")  # fmt: skip
        key = f"{cell}.{target}"
        if leaf in WEIGHT_LEAVES:
            sub = {"weights": "", "depthwise_weights": ".depthwise_conv2d", "pointwise_weights": ".pointwise_conv2d"}
            m.state[f"{key}{sub[leaf]}.weight"] = _kernel(m.get(name), leaf == "depthwise_weights")
        else:
            m.state[f"{key}.{BN_PARTS[leaf]}"] = torch.from_numpy(np.ascontiguousarray(m.get(name)))
            m.state.setdefault(f"{key}.num_batches_tracked", torch.tensor(0))
    m.logits("final_layer/FC", "last_linear")


class TfAvgPool2dSame(nn.AvgPool2d):
    """TF's SAME average pooling: pads as TF does and divides by the pixels inside the image only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from dlbox.convert.tfsame import pad_same

        k, s = nn.modules.utils._pair(self.kernel_size), nn.modules.utils._pair(self.stride)
        total = F.avg_pool2d(pad_same(x, k, s), k, s)  # (N, C, H', W'): sum / k*k
        inside = F.avg_pool2d(pad_same(torch.ones_like(x[:1, :1]), k, s), k, s)  # (1, 1, H', W')
        return total / inside


def create(family: str, num_classes: int, state: dict[str, torch.Tensor], fit) -> nn.Module:
    """timm's module for ``family`` resized to ``state``'s shapes (``fit``: slim._fit), pools made TF's.

    Its parameters are left uninitialised: the caller loads ``state`` (every key) into it. Built on the meta
    device first, since initialising the full-size modules alone takes seconds (88M parameters)."""
    from timm.layers.pool2d_same import AvgPool2dSame

    with torch.device("meta"):
        if family == "nasnet_large":
            from timm.models.nasnet import NASNetALarge

            model: nn.Module = NASNetALarge(num_classes=num_classes, pad_type="same")
        else:
            from timm.models.pnasnet import PNASNet5Large

            model = PNASNet5Large(num_classes=num_classes, pad_type="same")
        fit(model, state)
    for name, mod in list(model.named_modules()):
        if isinstance(mod, AvgPool2dSame):
            parent = model.get_submodule(name.rsplit(".", 1)[0])
            setattr(parent, name.rsplit(".", 1)[1], TfAvgPool2dSame(mod.kernel_size, mod.stride))
    return model.to_empty(device="cpu")
