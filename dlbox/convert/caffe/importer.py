"""`dlbox caffe import`: prototxt (+ caffemodel) -> a PyTorch file or ONNX, checked against the imported net.

The .pt file holds the prototxt text, the input shapes and the state dict (plain tensors and strings, so
``torch.load(weights_only=True)`` reads it); ``load_pt`` rebuilds the module. ONNX goes through the
TorchScript-based exporter (no onnxscript needed) and is compared with PyTorch through onnxruntime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlbox.base.errors import UserError
from dlbox.base.fileio import atomic_write
from dlbox.convert.caffe.net import CaffeNet
from dlbox.convert.caffe.textformat import parse, parse_file
from dlbox.convert.caffe.wire import read_caffemodel

PT_FORMAT = "dlbox-caffe/1"


def parse_shapes(specs: list[str] | None) -> dict[str, tuple[int, ...]]:
    """["data=1,3,224,224", ...] -> {"data": (1, 3, 224, 224)}; a bare "1,3,224,224" names the blob "data"."""
    out = {}
    for spec in specs or []:
        name, _, dims = spec.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.replace("x", ",").split(",") if d.strip())
        except ValueError:
            shape = ()
        if not shape or min(shape) < 1:
            raise UserError(f"--input-shape {spec!r} is not a shape", "write NAME=N,C,H,W, e.g. data=1,3,224,224")
        out[name or "data"] = shape
    return out


def load_net(prototxt: str | Path, weights: str | Path | None = None, shapes: dict[str, tuple[int, ...]] | None = None,
             deploy: bool = True) -> tuple[CaffeNet, dict[str, list[str]]]:  # fmt: skip
    """The TEST-phase net of ``prototxt`` in eval mode, with the caffemodel's weights when given."""
    net = CaffeNet(parse_file(prototxt), phases=("TEST",), shapes=shapes, deploy=deploy).eval()
    report = {"loaded": [], "missing": []}
    if weights:
        report = net.load_caffe_weights(read_caffemodel(weights))
        if not report["loaded"] and report["missing"]:
            raise UserError(f"no layer of {prototxt} has weights in {weights}", "the layer names of the two files differ")
    return net, report


class Deploy(nn.Module):
    """The net with positional inputs and a tuple of its outputs (what exporters and other tools expect)."""

    def __init__(self, net: CaffeNet):
        super().__init__()
        self.net = net
        self.input_names, self.output_names = list(net.inputs["TEST"]), list(net.outputs["TEST"])

    def forward(self, *inputs):
        blobs = self.net(*inputs)
        return tuple(blobs[o] for o in self.output_names)


def load_pt(path: str | Path) -> CaffeNet:
    """A net written by `dlbox caffe import --out model.pt`."""
    from dlbox.engine.checkpoint import read_torch_file

    saved = read_torch_file(path, "net", hint="write it again with `dlbox caffe import PROTOTXT WEIGHTS --out model.pt`")
    if not isinstance(saved, dict) or saved.get("format") != PT_FORMAT:
        raise UserError(f"{path} is not a net written by `dlbox caffe import`")
    net = CaffeNet(parse(saved["prototxt"], str(path)), phases=("TEST",), shapes=saved["input_shapes"], deploy=True)
    net.load_state_dict(saved["state_dict"])
    return net.eval()


def _example(net: CaffeNet, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(net.input_shapes["TEST"][n], generator=g) for n in net.inputs["TEST"]]


@torch.no_grad()
def import_model(prototxt: str | Path, weights: str | Path | None, out: str | Path,
                 shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, Any]:  # fmt: skip
    out = Path(out)
    if out.suffix not in (".pt", ".onnx"):
        raise UserError(f"--out {str(out)!r}: the file name must end in .pt or .onnx")
    net, report = load_net(prototxt, weights, shapes)
    model = Deploy(net).eval()
    example = _example(net)
    reference = model(*example)
    if out.suffix == ".pt":
        state = {"format": PT_FORMAT, "prototxt": Path(prototxt).read_text(encoding="utf-8"),
                 "input_shapes": net.input_shapes["TEST"], "state_dict": net.state_dict()}  # fmt: skip
        atomic_write(out, lambda tmp: torch.save(state, tmp))
        got = Deploy(load_pt(out))(*example)
    else:
        from dlbox.runtime import export as exporter
        from dlbox.runtime.exported import load_exported

        # through the one exporter (metadata of docs/export.md); the graph is for the input shapes given
        # (Caffe's Reshape/Flatten take them as constants), so the batch stays as given too
        shapes = net.input_shapes["TEST"]
        meta = exporter.ExportMeta("caffe", net.net_name, [exporter.InputFacts(n, [int(d) for d in shapes[n]], "float32", "NCHW")
                                                           for n in model.input_names], dynamic_batch=False,
                                   extra={"prototxt": Path(prototxt).name, "layers": len(net.plans["TEST"])})  # fmt: skip
        graph = exporter.Graph(model, tuple(example), model.input_names, model.output_names, meta)
        exporter.export(graph, out, "onnx", check=False)
        outputs = load_exported(out).run({n: x.numpy() for n, x in zip(model.input_names, example, strict=True)})
        got = [torch.from_numpy(outputs[n]) for n in model.output_names]
    diff = max(float((g - r).abs().max()) for g, r in zip(got, reference, strict=True))
    return {
        "file": str(out), "format": out.suffix[1:], "net": net.net_name, "layers": len(net.plans["TEST"]),
        "inputs": {n: list(s) for n, s in net.input_shapes["TEST"].items()}, "outputs": model.output_names,
        "weights_loaded": len(report["loaded"]), "weights_missing": report["missing"],
        "parameters": sum(p.numel() for p in net.parameters()), "max_abs_diff": diff,
    }  # fmt: skip
