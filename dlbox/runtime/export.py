"""One exporter for every task: a table of formats, one function per format, one metadata schema, one parity check.

A task builds its export module and an example input, fills an ``ExportMeta`` (what anything loading the file
needs: task, classes, input facts, preprocessing) and calls ``export``. The metadata goes into the file under one
key, ``dlbox`` (ONNX ``metadata_props``; TorchScript extra file ``dlbox.json``; OpenVINO IR ``rt_info``), so
``dlbox.runtime.exported.load_exported`` opens any task's file the same way. The batch axis (axis 0 of every
input and output) is dynamic unless a task says its graph cannot have one. Schema: docs/export.md.

ONNX goes through the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): no onnxscript.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlbox.base.errors import UserError
from dlbox.base.fileio import atomic_write
from dlbox.runtime.schema import (  # noqa: F401 (the schema is part of the exporter's interface)
    LEGACY_KEYS,
    META_KEY,
    OPSET,
    SCHEMA_VERSION,
    TOLERANCE,
    TORCHSCRIPT_META,
    ExportMeta,
    InputFacts,
    first_line,
    image_input,
)


def weights_sha256(model: nn.Module) -> str:
    """sha256 over the state dict: every tensor's name, dtype, shape and bytes, in state-dict order (the same
    weights give the same hash whatever file or checkpoint they came from)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


@dataclass
class Graph:
    """What every format function gets: the eval-mode module, its example inputs (a batch of 2 or more when
    the batch is dynamic, so the check covers a batch), names, extra free axes and the metadata."""

    module: nn.Module
    example: tuple[torch.Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    meta: ExportMeta
    dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)  # beyond the batch axis
    props: dict[str, str] = field(default_factory=dict)  # further ONNX metadata (e.g. sherpa-onnx's)
    lengths: dict[str, str] = field(default_factory=dict)  # output -> the output of its valid lengths (axis 1)
    opset: int = OPSET

    def axes(self) -> dict[str, dict[int, str]] | None:
        out = {k: dict(v) for k, v in self.dynamic_axes.items()}
        if self.meta.dynamic_batch:
            for n in self.input_names + self.output_names:
                out.setdefault(n, {}).setdefault(0, "batch")
        return out or None


def _onnx_graph(g: Graph, tmp: str) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on Python values taken as constants
        torch.onnx.export(g.module, g.example, tmp, dynamo=False, opset_version=g.opset, input_names=g.input_names,
                          output_names=g.output_names, dynamic_axes=g.axes())  # fmt: skip


def export_onnx(g: Graph, path: Path) -> None:
    """ONNX with the metadata (and ``g.props``) in ``metadata_props``."""
    import onnx

    def write(tmp: str) -> None:
        _onnx_graph(g, tmp)
        m = onnx.load(tmp)
        for k, v in {**g.props, META_KEY: g.meta.to_json()}.items():
            e = m.metadata_props.add()
            e.key, e.value = k, v
        onnx.save(m, tmp)

    atomic_write(path, write)


def export_torchscript(g: Graph, path: Path) -> None:
    """TorchScript by tracing; the metadata in the archive's extra file ``dlbox.json``."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes, and torch.jit's deprecation in favour of torch.export
        traced = torch.jit.trace(g.module, g.example, check_trace=False)

        def write(tmp: str) -> None:
            torch.jit.save(traced, tmp, _extra_files={TORCHSCRIPT_META: g.meta.to_json()})

        atomic_write(path, write)


def export_openvino(g: Graph, path: Path) -> None:
    """OpenVINO IR (``.xml`` + ``.bin`` beside it) converted from the ONNX graph; metadata in ``rt_info``."""
    import openvino as ov

    tmpdir = Path(tempfile.mkdtemp(prefix="dlbox-ov-"))
    try:
        _onnx_graph(g, str(tmpdir / "model.onnx"))
        model = ov.convert_model(str(tmpdir / "model.onnx"))
        model.set_rt_info(g.meta.to_json(), [META_KEY])
        ov.save_model(model, str(tmpdir / "model.xml"), compress_to_fp16=False)
        # the weights first: a reader finds the .xml only once its .bin is complete
        atomic_write(path.with_suffix(".bin"), lambda tmp: shutil.copyfile(tmpdir / "model.bin", tmp))
        atomic_write(path, lambda tmp: shutil.copyfile(tmpdir / "model.xml", tmp))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _has(module: str) -> Callable[[], bool]:
    def available() -> bool:
        import importlib.util

        return importlib.util.find_spec(module) is not None

    return available


@dataclass(frozen=True)
class Format:
    suffix: str
    write: Callable[[Graph, Path], None]
    available: Callable[[], bool]
    runtime: str  # what load_exported runs it with


FORMATS: dict[str, Format] = {
    "onnx": Format(".onnx", export_onnx, _has("onnxruntime"), "onnxruntime"),
    "torchscript": Format(".torchscript.pt", export_torchscript, lambda: True, "torch.jit"),
    "openvino": Format(".xml", export_openvino, _has("openvino"), "openvino"),
}


def check_format(fmt: str, allowed: tuple[str, ...] | None = None) -> Format:
    names = allowed or tuple(FORMATS)
    if fmt not in names:
        raise UserError(f"unknown export format {fmt!r}", f"one of {', '.join(names)}")
    f = FORMATS[fmt]
    if not f.available():
        raise UserError(f"--format {fmt} needs {f.runtime}, which is not installed", f"pip install {f.runtime}")
    return f


def parity(want: dict[str, np.ndarray], got: dict[str, np.ndarray], tolerance: float = TOLERANCE,
           lengths: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """The one parity check: every output of the export against eager PyTorch's on the same input.
    ``lengths``: outputs padded along axis 1 -> the output holding each row's valid length (compared only
    there; the lengths themselves must be equal). Returns ``max_abs_diff`` (over all outputs), per-output
    differences (None: shapes or lengths differ), ``tolerance`` and ``ok``."""
    per: dict[str, float | None] = {}
    lengths = lengths or {}
    for name, w in want.items():
        g = got.get(name)
        if g is None or np.shape(g) != np.shape(w):
            per[name] = None
            continue
        w64, g64 = np.asarray(w, np.float64), np.asarray(g, np.float64)
        if name in lengths:
            lens = np.asarray(want[lengths[name]])
            if not np.array_equal(lens, np.asarray(got.get(lengths[name]))):
                per[name] = None
                continue
            diffs = [np.abs(w64[i, :n] - g64[i, :n]).max() for i, n in enumerate(lens.tolist()) if n]
            per[name] = float(max(diffs, default=0.0))
            continue
        per[name] = float(np.abs(w64 - g64).max()) if w64.size else 0.0
    worst = max((v for v in per.values() if v is not None), default=0.0)
    ok = all(v is not None and v <= tolerance for v in per.values())
    return {"max_abs_diff": worst, "outputs": per, "tolerance": tolerance, "ok": ok}


def eager_outputs(g: Graph) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = g.module(*g.example)
    out = out if isinstance(out, tuple | list) else (out,)
    return {n: o.detach().cpu().numpy() for n, o in zip(g.output_names, out, strict=True)}


def export(g: Graph, path: str | Path, fmt: str = "onnx", check: bool = True,
           tolerance: float = TOLERANCE) -> dict[str, Any]:  # fmt: skip
    """Write ``g`` as ``fmt`` to ``path`` (atomically) and, with ``check``, run the file through
    ``load_exported`` on the example input against the eager module. Returns the file, format and parity."""
    f = check_format(fmt)
    path = Path(path)
    g.module.eval()
    g.meta.format = fmt
    if not g.meta.weights_sha256:
        g.meta.weights_sha256 = weights_sha256(g.module)
    if not g.meta.outputs:
        g.meta.outputs = [{"name": n, "shape": list(np.shape(a)), "dtype": str(np.asarray(a).dtype)}
                          for n, a in eager_outputs(g).items()]  # fmt: skip
        for o in g.meta.outputs:  # the free axes as -1
            for ax in (g.axes() or {}).get(o["name"], {}):
                o["shape"][ax] = -1
    try:
        f.write(g, path)
    except UserError:
        raise
    except Exception as e:  # an operator the exporter cannot handle: one line, not a traceback
        raise UserError(f"{fmt} export of {g.meta.model_name} failed: {type(e).__name__}: {first_line(e)}") from None
    result: dict[str, Any] = {"file": str(path), "format": fmt, "dynamic_batch": g.meta.dynamic_batch}
    if check:
        from dlbox.runtime.exported import load_exported

        loaded = load_exported(path)
        got = loaded.run({n: x.cpu().numpy() for n, x in zip(g.input_names, g.example, strict=True)})
        result["parity"] = parity(eager_outputs(g), got, tolerance, g.lengths)
    return result
