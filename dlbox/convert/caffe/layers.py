"""Caffe layers as PyTorch modules, each with Caffe's exact arithmetic and its blobs in Caffe's order.

Every module's ``forward(*bottoms)`` returns a tuple of tops. Modules with weights list them in
``blob_names`` (attributes, in the order a .caffemodel stores them), so loading and saving weights is one
loop. ``build(layer, shapes)`` makes the module of one LayerParameter given its bottoms' shapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dlbox.base.errors import UserError
from dlbox.convert.caffe.textformat import Msg

Shape = tuple[int, ...]


def _bad(layer: Msg, what: str, hint: str | None = None) -> UserError:
    return UserError(f"layer {layer.get('name', '?')!r} ({layer.get('type')}): {what}", hint)


# --- fillers (what Caffe initialises weights with when a caffemodel does not provide them) ------------------
def fill(t: torch.Tensor, filler: Msg, layer: Msg, default: str = "constant", value: float = 0.0) -> None:
    kind = filler.get("type", default)
    n_in = t[0].numel() if t.dim() > 1 else t.numel()  # Caffe: fan_in = count / num
    n_out = t.numel() / t.shape[1] if t.dim() > 1 else t.numel()
    with torch.no_grad():
        if kind == "constant":
            t.fill_(float(filler.get("value", value)))
        elif kind == "uniform":
            t.uniform_(float(filler.get("min", 0.0)), float(filler.get("max", 1.0)))
        elif kind == "gaussian":
            t.normal_(float(filler.get("mean", 0.0)), float(filler.get("std", 1.0)))
        elif kind in ("xavier", "msra"):
            norm = filler.get("variance_norm", "FAN_IN")
            n = {"FAN_IN": n_in, "FAN_OUT": n_out, "AVERAGE": (n_in + n_out) / 2}.get(norm)
            if n is None:
                raise _bad(layer, f"unknown variance_norm {norm!r}", "use FAN_IN, FAN_OUT or AVERAGE")
            if kind == "xavier":
                bound = math.sqrt(3.0 / n)
                t.uniform_(-bound, bound)
            else:
                t.normal_(0.0, math.sqrt(2.0 / n))
        elif kind == "bilinear":  # upsampling kernels for Deconvolution
            k = t.shape[-1]
            f = math.ceil(k / 2)
            c = (2 * f - 1 - f % 2) / (2.0 * f)
            r = torch.arange(k, dtype=t.dtype)
            w1 = 1 - (r / f - c).abs()
            t.copy_((w1[:, None] * w1[None, :]).expand_as(t))
        else:
            raise _bad(layer, f"filler type {kind!r} is not supported", "use constant, uniform, gaussian, xavier, msra or bilinear")


def _pair(p: Msg, name: str, default: int | None, layer: Msg) -> tuple[int, int]:
    """kernel_size/pad/stride/dilation: repeated (1 or 2 values) or NAME_h + NAME_w, as caffe.proto allows."""
    base = "kernel" if name == "kernel_size" else name
    if p.has(f"{base}_h") or p.has(f"{base}_w"):
        return int(p.get(f"{base}_h", default or 0)), int(p.get(f"{base}_w", default or 0))
    values = p.all(name)
    if not values:
        if default is None:
            raise _bad(layer, f"{name} is required")
        return default, default
    if len(values) > 2:
        raise _bad(layer, f"{len(values)} values of {name}: only 2-D layers are supported")
    return (int(values[0]), int(values[-1]))


def _bias_term(p: Msg) -> bool:
    return bool(p.get("bias_term", True))


class CaffeModule(nn.Module):
    blob_names: tuple[str, ...] = ()

    def caffe_blobs(self) -> list[torch.Tensor]:
        return [getattr(self, n) for n in self.blob_names if getattr(self, n, None) is not None]


# --- layers ------------------------------------------------------------------------------------------
class Conv(CaffeModule):
    blob_names = ("weight", "bias")

    def __init__(self, layer: Msg, shapes: list[Shape], transposed: bool):
        super().__init__()
        p = layer.msg("convolution_param")
        if len(shapes[0]) != 4:
            raise _bad(layer, f"input of shape {shapes[0]}: only 2-D convolution (N, C, H, W) is supported")
        if int(p.get("axis", 1)) != 1:
            raise _bad(layer, "axis other than 1 is not supported")
        self.kernel = _pair(p, "kernel_size", None, layer)
        self.pad, self.stride = _pair(p, "pad", 0, layer), _pair(p, "stride", 1, layer)
        self.dilation = _pair(p, "dilation", 1, layer)
        self.groups, self.transposed = int(p.get("group", 1)), transposed
        c_in, c_out = shapes[0][1], int(p.get("num_output", 0))
        if c_out < 1 or c_in % self.groups or c_out % self.groups:
            raise _bad(layer, f"num_output {c_out} and {c_in} input channels must both divide by group {self.groups}")
        shape = (c_in, c_out // self.groups) if transposed else (c_out, c_in // self.groups)
        self.weight = nn.Parameter(torch.empty(*shape, *self.kernel))
        fill(self.weight, p.msg("weight_filler"), layer)
        self.bias = nn.Parameter(torch.empty(c_out)) if _bias_term(p) else None
        if self.bias is not None:
            fill(self.bias, p.msg("bias_filler"), layer)

    def forward(self, x):  # (N, C, H, W)
        if self.transposed:
            y = F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.pad, 0, self.groups, self.dilation)
        else:
            y = F.conv2d(x, self.weight, self.bias, self.stride, self.pad, self.dilation, self.groups)
        return (y,)


class Pool(CaffeModule):
    """MAX/AVE with Caffe's output size: ceil((H + 2p - k) / s) + 1, minus one when the last window would start
    in the padding; AVE divides by the window clipped to [-p, H + p) (the padding counts, the overshoot of
    the rounding does not). Where rounding up adds a window, the extra padding is explicit, so the same
    numbers come out of exported ONNX graphs (ONNX's ceil_mode has no clipping rule)."""

    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        p = layer.msg("pooling_param")
        self.method = {0: "MAX", 1: "AVE"}.get(p.get("pool", "MAX"), p.get("pool", "MAX"))
        if self.method not in ("MAX", "AVE"):
            raise _bad(layer, f"pool {self.method} is not supported", "use MAX or AVE")
        if len(shapes[0]) != 4:
            raise _bad(layer, f"input of shape {shapes[0]}: pooling needs (N, C, H, W)")
        self.global_pool = bool(p.get("global_pooling", False))
        self.ceil = p.get("round_mode", "CEIL") in ("CEIL", 0)  # FLOOR: the option newer Caffe forks have
        if not self.global_pool:
            self.kernel = _pair(p, "kernel_size", None, layer)
            self.pad, self.stride = _pair(p, "pad", 0, layer), _pair(p, "stride", 1, layer)
            for k, pad in zip(self.kernel, self.pad, strict=True):
                if pad >= k:
                    raise _bad(layer, f"pad {pad} is not smaller than kernel {k}", "Caffe requires pad < kernel")

    def _out(self, size: int, k: int, s: int, p: int) -> int:
        if not self.ceil:
            return (size + 2 * p - k) // s + 1
        out = -(-(size + 2 * p - k) // s) + 1
        if p and (out - 1) * s >= size + p:
            out -= 1
        return out

    def forward(self, x):  # (N, C, H, W)
        size = (int(x.shape[2]), int(x.shape[3]))
        if self.global_pool:
            return ((x.amax((2, 3), keepdim=True) if self.method == "MAX" else x.mean((2, 3), keepdim=True)),)
        k, s, p = self.kernel, self.stride, self.pad
        out = [self._out(n, *a) for n, *a in zip(size, k, s, p, strict=True)]
        if all(o == (n + 2 * q - kk) // ss + 1 for o, n, kk, ss, q in zip(out, size, k, s, p, strict=True)) and 2 * max(p[0], p[1]) <= min(k):
            # Rounding changes nothing: the plain symmetric pooling every runtime has.
            if self.method == "MAX":
                return (F.max_pool2d(x, k, s, p),)
            return (F.avg_pool2d(x, k, s, p, count_include_pad=True),)
        end = [(o - 1) * ss + kk - n - q for o, n, kk, ss, q in zip(out, size, k, s, p, strict=True)]  # pad after
        pads = (p[1], end[1], p[0], end[0])
        if self.method == "MAX":
            return (F.max_pool2d(F.pad(x, pads, value=float("-inf")), k, s),)
        y = F.avg_pool2d(F.pad(x, pads), k, s)  # divides by k_h * k_w; Caffe's clipped windows divide by less
        fix = []
        for o, n, kk, ss, q in zip(out, size, k, s, p, strict=True):
            starts = torch.arange(o) * ss - q
            fix.append(kk / ((starts + kk).clamp(max=n + q) - starts).to(x.dtype))
        if any(bool((f != 1).any()) for f in fix):
            y = y * (fix[0][:, None] * fix[1][None, :]).to(x.device)
        return (y,)


class InnerProduct(CaffeModule):
    blob_names = ("weight", "bias")

    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        p = layer.msg("inner_product_param")
        self.axis = int(p.get("axis", 1)) % len(shapes[0])
        n_in, n_out = math.prod(shapes[0][self.axis :]), int(p.get("num_output", 0))
        if n_out < 1:
            raise _bad(layer, "num_output is required")
        self.transpose = bool(p.get("transpose", False))  # the stored blob is (in, out)
        self.weight = nn.Parameter(torch.empty(n_in, n_out) if self.transpose else torch.empty(n_out, n_in))
        fill(self.weight, p.msg("weight_filler"), layer)
        self.bias = nn.Parameter(torch.empty(n_out)) if _bias_term(p) else None
        if self.bias is not None:
            fill(self.bias, p.msg("bias_filler"), layer)

    def forward(self, x):
        x = x.flatten(self.axis)  # (N, C*H*W)
        return (F.linear(x, self.weight.t() if self.transpose else self.weight, self.bias),)


class Activation(CaffeModule):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return (self.fn(x),)


class PReLU(CaffeModule):
    blob_names = ("weight",)

    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        p = layer.msg("prelu_param")
        channels = 1 if p.get("channel_shared", False) else shapes[0][1]
        self.weight = nn.Parameter(torch.empty(channels))
        fill(self.weight, p.msg("filler"), layer, value=0.25)

    def forward(self, x):
        return (F.prelu(x, self.weight),)


class LRN(CaffeModule):
    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        p = layer.msg("lrn_param")
        self.size, self.alpha, self.beta = int(p.get("local_size", 5)), float(p.get("alpha", 1.0)), float(p.get("beta", 0.75))
        self.k = float(p.get("k", 1.0))
        self.region = {0: "ACROSS_CHANNELS", 1: "WITHIN_CHANNEL"}.get(p.get("norm_region"), p.get("norm_region", "ACROSS_CHANNELS"))
        if self.size % 2 == 0:
            raise _bad(layer, f"local_size {self.size} is even", "Caffe's LRN takes odd sizes only")
        if self.region not in ("ACROSS_CHANNELS", "WITHIN_CHANNEL"):
            raise _bad(layer, f"norm_region {self.region} is unknown")

    def forward(self, x):
        if self.region == "ACROSS_CHANNELS":
            # b = a / (k + alpha/n * sum over n channels of a^2)^beta (torch's formula is the same)
            return (F.local_response_norm(x, self.size, self.alpha, self.beta, self.k),)
        # WITHIN_CHANNEL: Caffe pools x^2 (AVE, pad (n-1)/2, padding counted) then (1 + alpha * avg)^-beta.
        avg = F.avg_pool2d(x * x, self.size, 1, (self.size - 1) // 2, ceil_mode=True, count_include_pad=True)
        return (x * (1 + self.alpha * avg).pow(-self.beta),)


class Dropout(CaffeModule):
    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        self.ratio = float(layer.msg("dropout_param").get("dropout_ratio", 0.5))

    def forward(self, x):
        return (F.dropout(x, self.ratio, self.training),)


class BatchNorm(CaffeModule):
    """Caffe's BatchNorm: no scale/shift (a Scale layer follows), blobs = running sums of mean and variance and
    their normaliser; the statistics are sum / normaliser, updated as Caffe does (variance unbiased)."""

    blob_names = ("mean_sum", "var_sum", "factor")

    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        p = layer.msg("batch_norm_param")
        self.eps = float(p.get("eps", 1e-5))
        self.fraction = float(p.get("moving_average_fraction", 0.999))
        self.global_stats = p.get("use_global_stats")  # None: batch statistics in TRAIN, running ones in TEST
        c = shapes[0][1]
        self.register_buffer("mean_sum", torch.zeros(c))
        self.register_buffer("var_sum", torch.zeros(c))
        self.register_buffer("factor", torch.zeros(1))

    def forward(self, x):  # (N, C, ...)
        view = (1, -1) + (1,) * (x.dim() - 2)
        use_global = self.global_stats if self.global_stats is not None else not self.training
        if use_global:
            s = torch.where(self.factor == 0, torch.zeros_like(self.factor), 1 / self.factor)
            mean, var = self.mean_sum * s, self.var_sum * s
        else:
            dims = [0, *range(2, x.dim())]
            mean, var = x.mean(dims), x.var(dims, unbiased=False)
            m = x.numel() // x.shape[1]
            with torch.no_grad():
                self.mean_sum.mul_(self.fraction).add_(mean.detach())
                self.var_sum.mul_(self.fraction).add_(var.detach() * (m / max(m - 1, 1)))
                self.factor.mul_(self.fraction).add_(1)
        return ((x - mean.view(view)) / torch.sqrt(var.view(view) + self.eps),)


class Scale(CaffeModule):
    blob_names = ("weight", "bias")

    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        p = layer.msg("scale_param")
        nd = len(shapes[0])
        self.axis = int(p.get("axis", 1)) % nd
        num_axes = int(p.get("num_axes", 1))
        if len(shapes) == 2:
            self.dims = tuple(shapes[1])
        else:
            self.dims = tuple(shapes[0][self.axis : nd if num_axes == -1 else self.axis + num_axes])
        self.trailing = nd - self.axis - len(self.dims)
        self.weight = None
        if len(shapes) == 1:
            self.weight = nn.Parameter(torch.empty(self.dims))
            fill(self.weight, p.msg("filler"), layer, value=1.0)
        self.bias = nn.Parameter(torch.empty(self.dims)) if p.get("bias_term", False) else None
        if self.bias is not None:
            fill(self.bias, p.msg("bias_filler"), layer)

    def _b(self, t):  # broadcast a blob of self.dims against the input
        return t.reshape((1,) * self.axis + self.dims + (1,) * self.trailing)

    def forward(self, x, *scale):
        y = x * self._b(scale[0] if scale else self.weight)
        return (y + self._b(self.bias) if self.bias is not None else y,)


class Eltwise(CaffeModule):
    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        p = layer.msg("eltwise_param")
        self.op = {0: "PROD", 1: "SUM", 2: "MAX"}.get(p.get("operation"), p.get("operation", "SUM"))
        self.coeff = [float(c) for c in p.all("coeff")]
        if self.coeff and (self.op != "SUM" or len(self.coeff) != len(shapes)):
            raise _bad(layer, "coeff needs operation SUM and one value per bottom")
        if any(s != shapes[0] for s in shapes):
            raise _bad(layer, f"bottoms of different shapes {shapes}")

    def forward(self, *xs):
        if self.op == "PROD":
            y = xs[0]
            for x in xs[1:]:
                y = y * x
        elif self.op == "MAX":
            y = xs[0]
            for x in xs[1:]:
                y = torch.maximum(y, x)
        else:
            coeff = self.coeff or [1.0] * len(xs)
            y = xs[0] * coeff[0] if coeff[0] != 1 else xs[0]
            for c, x in zip(coeff[1:], xs[1:], strict=True):
                y = y + (x * c if c != 1 else x)
        return (y,)


class Concat(CaffeModule):
    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        p = layer.msg("concat_param")
        self.axis = int(p.get("concat_dim", p.get("axis", 1)))

    def forward(self, *xs):
        return (torch.cat(xs, self.axis),)


class Flatten(CaffeModule):
    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        p = layer.msg("flatten_param")
        self.axis, self.end = int(p.get("axis", 1)), int(p.get("end_axis", -1))

    def forward(self, x):
        return (x.flatten(self.axis, self.end),)


class Reshape(CaffeModule):
    """dims replace input axes [axis, axis + num_axes): 0 copies the input's dimension, -1 is inferred."""

    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        p = layer.msg("reshape_param")
        self.dims = [int(d) for d in p.msg("shape").all("dim")]
        self.axis, self.num_axes = int(p.get("axis", 0)), int(p.get("num_axes", -1))
        if self.dims.count(-1) > 1:
            raise _bad(layer, "more than one -1 in reshape_param")
        self.target(shapes[0], layer)

    def target(self, shape: Shape, layer: Msg | None = None) -> list[int]:
        nd = len(shape)
        start = self.axis if self.axis >= 0 else nd + self.axis + 1
        end = nd if self.num_axes == -1 else start + self.num_axes
        new = [shape[start + i] if d == 0 else d for i, d in enumerate(self.dims)]
        out = list(shape[:start]) + new + list(shape[end:])
        if -1 in out:
            known = math.prod(d for d in out if d != -1)
            out[out.index(-1)] = math.prod(shape) // max(known, 1)
        if math.prod(out) != math.prod(shape):
            what = f"reshape of {tuple(shape)} to {out} changes the number of values"
            raise _bad(layer, what) if layer is not None else UserError(what)
        return out

    def forward(self, x):
        return (x.reshape(self.target(tuple(int(d) for d in x.shape))),)


class Softmax(CaffeModule):
    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        self.axis = int(layer.msg("softmax_param").get("axis", 1))

    def forward(self, x):
        return (F.softmax(x, self.axis),)


def _labels(x: torch.Tensor, label: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits moved to (M, C), labels (M,)) for any axis, as Caffe's outer x inner loop counts them."""
    c = x.shape[axis]
    logits = x.movedim(axis, -1).reshape(-1, c)
    return logits, label.reshape(-1).long()


class SoftmaxWithLoss(CaffeModule):
    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        lp = layer.msg("loss_param")
        self.axis = int(layer.msg("softmax_param").get("axis", 1))
        self.ignore = lp.get("ignore_label")
        norm = lp.get("normalization")
        if norm is None:
            norm = "VALID" if lp.get("normalize", True) else "BATCH_SIZE"
        self.norm = {0: "FULL", 1: "VALID", 2: "BATCH_SIZE", 3: "NONE"}.get(norm, norm)
        if len(shapes) != 2:
            raise _bad(layer, "needs two bottoms (scores, labels)")

    def forward(self, x, label):
        logits, y = _labels(x, label, self.axis)
        ignore = -100 if self.ignore is None else int(self.ignore)
        total = F.cross_entropy(logits, y, ignore_index=ignore, reduction="sum")
        if self.norm == "VALID":
            denom = (y != ignore).sum().clamp(min=1)
        elif self.norm == "FULL":
            denom = y.numel()
        elif self.norm == "BATCH_SIZE":
            denom = x.shape[0]
        else:
            denom = 1
        return total / denom, F.softmax(x, self.axis)


class Accuracy(CaffeModule):
    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        p = layer.msg("accuracy_param")
        self.top_k, self.axis, self.ignore = int(p.get("top_k", 1)), int(p.get("axis", 1)), p.get("ignore_label")

    def forward(self, x, label):
        logits, y = _labels(x, label, self.axis)
        hit = (logits.topk(self.top_k, dim=1).indices == y[:, None]).any(dim=1)
        if self.ignore is not None:
            keep = y != int(self.ignore)
            return ((hit & keep).sum() / keep.sum().clamp(min=1),)
        return (hit.float().mean(),)


class DataTransform(CaffeModule):
    """A Data layer's transform_param on the raw pixels fed in, in the order of Caffe's DataTransformer:
    subtract the mean (mean_file: a (C, H, W) blob at each uncropped pixel; or one mean_value per channel),
    crop to crop_size (a random window per image in TRAIN, the centre in TEST), multiply by scale, and mirror
    half the images at random. Caffe's DataTransformer also mirrors in TEST (its Rand(2) ignores the phase);
    here mirroring is for training only, so that test scores and imported nets are deterministic."""

    def __init__(self, layer: Msg, shapes: list[Shape]):
        super().__init__()
        t = layer.msg("transform_param")
        self.scale = float(t.get("scale", 1.0))
        self.mean = [float(m) for m in t.all("mean_value")]
        self.crop = int(t.get("crop_size", 0))
        self.mirror = bool(t.get("mirror", False))
        self.mean_blob: torch.Tensor | None = None
        if t.get("mean_file"):
            if self.mean:
                raise _bad(layer, "cannot specify mean_file and mean_value at the same time", "keep one of them")
            from dlbox.convert.caffe.wire import read_blobproto

            blob = torch.from_numpy(read_blobproto(t.get("mean_file")))
            self.mean_blob = blob.reshape(blob.shape[-3:]) if blob.dim() >= 3 else blob  # (C, H, W)
        if shapes and len(shapes[0]) == 4:
            c, h, w = shapes[0][1:]
            if self.mean_blob is not None and tuple(self.mean_blob.shape) != (c, h, w):
                raise _bad(layer, f"mean_file is {tuple(self.mean_blob.shape)}, the images are {(c, h, w)}",
                           "compute the mean over images of the same size as the database's")  # fmt: skip
            if self.mean and len(self.mean) not in (1, c):
                raise _bad(layer, f"{len(self.mean)} mean_value for {c} channels", "give 1 mean_value or one per channel")
            if self.crop > min(h, w):
                raise _bad(layer, f"crop_size {self.crop} is larger than the images ({h}x{w})")

    def forward(self, x, *rest):  # x: (N, C, H, W) raw pixels
        if self.mean_blob is not None:
            x = x - self.mean_blob.to(x.device, x.dtype)
        elif self.mean:
            m = torch.tensor(self.mean if len(self.mean) > 1 else self.mean * x.shape[1], dtype=x.dtype, device=x.device)
            x = x - m.view(1, -1, 1, 1)
        if self.crop:
            c, (h, w) = self.crop, x.shape[-2:]
            if self.training:
                hs = torch.randint(0, h - c + 1, (x.shape[0],)).tolist()
                ws = torch.randint(0, w - c + 1, (x.shape[0],)).tolist()
                x = torch.stack([img[:, i : i + c, j : j + c] for img, i, j in zip(x, hs, ws, strict=True)])
            else:
                i, j = (h - c) // 2, (w - c) // 2
                x = x[..., i : i + c, j : j + c]  # (N, C, crop, crop)
        if self.scale != 1.0:
            x = x * self.scale
        if self.mirror and self.training:
            flip = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        return (x, *rest)


class Passthrough(CaffeModule):
    """Input (the net's inputs as given) and Split (one blob under several names)."""

    def __init__(self, n_tops: int):
        super().__init__()
        self.n_tops = n_tops

    def forward(self, *xs):
        return xs if len(xs) == self.n_tops else xs * self.n_tops


def _relu(layer: Msg, shapes) -> CaffeModule:
    slope = float(layer.msg("relu_param").get("negative_slope", 0.0))
    return Activation(F.relu if slope == 0 else (lambda x: F.leaky_relu(x, slope)))


BUILDERS: dict[str, Callable[[Msg, list[Shape]], CaffeModule]] = {
    "Convolution": lambda layer, s: Conv(layer, s, transposed=False),
    "Deconvolution": lambda layer, s: Conv(layer, s, transposed=True),
    "Pooling": Pool,
    "InnerProduct": InnerProduct,
    "ReLU": _relu,
    "PReLU": PReLU,
    "Sigmoid": lambda layer, s: Activation(torch.sigmoid),
    "TanH": lambda layer, s: Activation(torch.tanh),
    "LRN": LRN,
    "Dropout": Dropout,
    "BatchNorm": BatchNorm,
    "Scale": Scale,
    "Eltwise": Eltwise,
    "Concat": Concat,
    "Flatten": Flatten,
    "Reshape": Reshape,
    "Softmax": Softmax,
    "SoftmaxWithLoss": SoftmaxWithLoss,
    "Accuracy": Accuracy,
    "Data": DataTransform,
    "Split": lambda layer, s: Passthrough(len(layer.all("top"))),
    "Silence": lambda layer, s: Passthrough(0),
}
INPUT_TYPES = ("Input", "Data")
LOSS_TYPES = ("SoftmaxWithLoss",)
# V1 prototxts (`layers { type: CONVOLUTION }`) name types by enum; the supported ones map to today's names.
V1_TYPES = {
    "CONVOLUTION": "Convolution", "DECONVOLUTION": "Deconvolution", "POOLING": "Pooling",
    "INNER_PRODUCT": "InnerProduct", "RELU": "ReLU", "SIGMOID": "Sigmoid", "TANH": "TanH", "LRN": "LRN",
    "DROPOUT": "Dropout", "ELTWISE": "Eltwise", "CONCAT": "Concat", "FLATTEN": "Flatten", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "ACCURACY": "Accuracy", "DATA": "Data", "SPLIT": "Split", "SILENCE": "Silence",
}  # fmt: skip


def supported_types() -> list[str]:
    return sorted([*BUILDERS, "Input"])


def build(layer: Msg, shapes: list[Shape]) -> CaffeModule:
    kind = layer.get("type")
    builder = BUILDERS.get(kind)
    if builder is None:
        raise UserError(
            f"layer {layer.get('name', '?')!r} has type {kind!r}, which dlbox's Caffe importer does not support",
            f"supported types: {', '.join(supported_types())}",
        )
    return builder(layer, shapes)
