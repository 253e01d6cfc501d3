"""The one loader of exports: ``load_exported(path)`` opens any task's ONNX, TorchScript or OpenVINO IR file
written by ``dlbox.runtime.export`` (or by dlbox before it, metadata keys ``dlbox`` and ``dlbox_face``) and
gives its metadata (schema of docs/export.md), its tensor specs and ``run(dict of numpy) -> dict of numpy``."""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlbox.base.errors import UserError, not_found
from dlbox.runtime.predictor import V2_DTYPES, TensorSpec
from dlbox.runtime.schema import (
    LEGACY_KEYS,
    META_KEY,
    SCHEMA_VERSION,
    TORCHSCRIPT_META,
    ExportMeta,
    InputFacts,
    first_line,
    image_input,
)  # fmt: skip

NUMPY_TO_V2 = {np.dtype(v).name: k for k, v in V2_DTYPES.items() if k != "BYTES"}
ORT_TO_NUMPY = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
                "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
                "tensor(bool)": "bool"}  # fmt: skip


@dataclass
class Exported:
    """An opened export. ``meta``: the schema's dict; ``inputs``/``outputs``: v2 tensor specs, -1 for free
    axes (axis 0 is the batch of a dynamic-batch export); ``run``: feeds by input name -> outputs by name."""

    path: Path
    format: str
    meta: dict[str, Any]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    backend: Any = None  # the onnxruntime session, the TorchScript module, the OpenVINO compiled model
    _run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = field(default=None, repr=False)

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def fixed_batch(self) -> int | None:
        """The batch size a static-batch export takes (older exports), else None."""
        b = self.inputs[0].shape[0] if self.inputs and self.inputs[0].shape else -1
        return None if b == -1 else int(b)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [s.name for s in self.inputs if s.name not in feeds]
        if missing:
            raise UserError(f"{self.path}: missing input {', '.join(missing)}",
                            f"inputs: {', '.join(s.name for s in self.inputs)}")  # fmt: skip
        step = self.fixed_batch
        n = len(next(iter(feeds.values())))
        if step is None or n == step:
            return self._run(feeds)
        # a static-batch export: feed it `step` at a time (outputs batch-major)
        parts = [self._run({k: v[i : i + step] for k, v in feeds.items()}) for i in range(0, n, step)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


class RunsExported:
    """For a task's model object that runs in PyTorch or, when ``exported`` is set, through a dlbox export: the
    backend's name and the onnxruntime session, said once for every task."""

    exported: Exported | None

    @property
    def session(self) -> Any:
        """The onnxruntime session of an ONNX export (else None)."""
        return self.exported.backend if self.exported is not None and self.exported.format == "onnx" else None

    @property
    def backend(self) -> str:
        return "pytorch" if self.exported is None else {"onnx": "onnxruntime"}.get(self.exported.format, self.exported.format)


def _spec(name: str, dtype: str, shape) -> TensorSpec:
    dims = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (shape or ()))
    return TensorSpec(name, NUMPY_TO_V2.get(dtype, "FP32"), dims)


def upgrade(raw: dict[str, Any], key: str = META_KEY, props: dict[str, str] | None = None,
            input_shape: list[int] | None = None) -> dict[str, Any]:  # fmt: skip
    """Any dlbox export's metadata as the current schema's dict: schema-1 files as they are; older ones
    (classify/detect/asr under ``dlbox``, face under ``dlbox_face``) rebuilt from what they stored."""
    props = props or {}
    if raw.get("schema") == SCHEMA_VERSION:
        return ExportMeta.from_dict(raw).to_dict()
    shape = list(input_shape or [])
    batch = shape[0] if shape else -1
    dynamic = not isinstance(batch, int) or batch < 0
    if key == "dlbox_face":
        size = int(raw["img_size"])
        meta = ExportMeta("face", raw.get("arch", ""), [image_input("faces", size, [0.5] * 3, [128 / 255] * 3)],
                          preprocessing={"crop": "face", "scale": 1.0, "normalise": "(x - 127.5) / 128"},
                          extra={"arch": raw.get("arch", ""), "threshold": raw.get("threshold"),
                                 "source": raw.get("source", "")})  # fmt: skip
    elif raw.get("task") == "detect":
        size = int(raw["img_size"])
        meta = ExportMeta("detect", raw.get("model_name", ""), [image_input("images", size, batch=1)],
                          classes=list(raw.get("classes", [])),
                          preprocessing={"resize": "letterbox", "scale": 1 / 255},
                          extra={k: raw[k] for k in ("score_thresh", "nms_iou", "max_det") if k in raw})  # fmt: skip
        dynamic = False
    elif raw.get("task") == "asr":
        meta = ExportMeta("asr", "ctc", [InputFacts("x", [-1, -1, 80], "float32", "NTC"), InputFacts("x_lens", [-1], "int64", "N")],
                          preprocessing={"features": "fbank", "sample_rate": 16000},
                          extra={"hparams": raw.get("hparams", {}), "cmvn_mode": raw.get("cmvn_mode", "global"),
                                 "subsampling_factor": int(props.get("subsampling_factor", 4))})  # fmt: skip
    elif "classes" in raw and "mean" in raw:  # classify exports before the schema had no "task"
        size = int(raw["img_size"])
        meta = ExportMeta("classify", raw.get("model_name", ""), [image_input("images", size, raw["mean"], raw["std"])],
                          classes=list(raw["classes"]), preprocessing={"resize": "center-crop", "scale": 1 / 255})  # fmt: skip
    else:
        raise ValueError("unknown metadata layout")
    meta.dynamic_batch = dynamic
    if not dynamic:
        meta.inputs[0].shape[0] = batch
    meta.dlbox_version = "before-schema-1"
    return meta.to_dict()


def _not_dlbox(path: Path) -> UserError:
    return UserError(f"{path} was not exported by dlbox (no dlbox metadata inside)",
                     "export it with `dlbox TASK export`")  # fmt: skip


def _read_meta(path: Path, found: dict[str, str], input_shape: list[int] | None) -> dict[str, Any]:
    for key in (META_KEY, *LEGACY_KEYS):
        if key in found:
            try:
                return upgrade(json.loads(found[key]), key, found, input_shape)
            except (ValueError, KeyError, TypeError) as e:
                raise UserError(f"{path}: its dlbox metadata is unreadable ({first_line(e)})", "export it again") from None
    raise _not_dlbox(path)


def _open_onnx(path: Path, threads: int | None) -> Exported:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise UserError(f"cannot open ONNX file {path}: truncated or not ONNX ({first_line(e)[:120]})",
                        "export it again") from None  # fmt: skip
    ins, outs = sess.get_inputs(), sess.get_outputs()
    meta = _read_meta(path, sess.get_modelmeta().custom_metadata_map, list(ins[0].shape) if ins else None)
    names = [o.name for o in outs]

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(names, sess.run(names, {i.name: feeds[i.name] for i in ins}), strict=True))

    return Exported(path, "onnx", meta, [_spec(i.name, ORT_TO_NUMPY.get(i.type, "float32"), i.shape) for i in ins],
                    [_spec(o.name, ORT_TO_NUMPY.get(o.type, "float32"), o.shape) for o in outs], sess, run)  # fmt: skip


def _open_torchscript(path: Path, threads: int | None) -> Exported:
    import torch

    extra = {TORCHSCRIPT_META: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as e:
        raise UserError(f"cannot open TorchScript file {path}: truncated or not TorchScript ({first_line(e)[:120]})",
                        "export it again") from None  # fmt: skip
    if not extra[TORCHSCRIPT_META]:
        raise _not_dlbox(path)
    try:
        meta = upgrade(json.loads(extra[TORCHSCRIPT_META]))
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: its dlbox metadata is unreadable ({first_line(e)})", "export it again") from None
    ins = [InputFacts(**i) for i in meta["inputs"]]
    out_names = [o["name"] for o in meta["outputs"]] or ["output"]

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if threads:
            torch.set_num_threads(threads)
        with torch.no_grad():
            out = module(*[torch.from_numpy(np.ascontiguousarray(feeds[i.name])) for i in ins])
        out = out if isinstance(out, tuple | list) else (out,)
        return {n: o.numpy() for n, o in zip(out_names, out, strict=True)}

    return Exported(path, "torchscript", meta, [_spec(i.name, i.dtype, i.shape) for i in ins],
                    [_spec(o["name"], o.get("dtype", "float32"), o.get("shape")) for o in meta["outputs"]], module, run)  # fmt: skip


def _open_openvino(path: Path, threads: int | None) -> Exported:
    try:
        import openvino as ov
    except ImportError:
        raise UserError(f"{path} is an OpenVINO IR and openvino is not installed", "pip install openvino") from None
    core = ov.Core()
    try:
        model = core.read_model(str(path))
        text = str(model.get_rt_info([META_KEY]).astype(str)) if model.has_rt_info([META_KEY]) else ""
    except Exception as e:
        raise UserError(f"cannot open OpenVINO IR {path}: truncated or not OpenVINO ({first_line(e)[:120]})",
                        "export it again (the .bin beside it too)") from None  # fmt: skip
    if not text:
        raise _not_dlbox(path)
    meta = upgrade(json.loads(text))
    config = {"INFERENCE_PRECISION_HINT": "f32", **({"INFERENCE_NUM_THREADS": threads} if threads else {})}
    compiled = core.compile_model(model, "CPU", config)
    in_names = [p.get_any_name() for p in model.inputs]
    out_ports = list(compiled.outputs)
    out_names = [p.get_any_name() for p in out_ports]

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        res = compiled({n: feeds[n] for n in in_names})
        return {n: np.asarray(res[p]) for n, p in zip(out_names, out_ports, strict=True)}

    def dims(p) -> list[int]:
        return [d.get_length() if d.is_static else -1 for d in p.get_partial_shape()]

    return Exported(path, "openvino", meta,
                    [_spec(p.get_any_name(), p.get_element_type().to_dtype().name, dims(p)) for p in model.inputs],
                    [_spec(p.get_any_name(), p.get_element_type().to_dtype().name, dims(p)) for p in model.outputs],
                    compiled, run)  # fmt: skip


def is_export(path: str | Path) -> bool:
    """Does ``path`` name an export file (by its name), rather than a run, checkpoint or weights?"""
    name = Path(path).name
    return Path(path).suffix in (".onnx", ".xml") or name.endswith(".torchscript.pt")


def load_exported(path: str | Path, threads: int | None = None, task: str | None = None) -> Exported:
    """Open an export of any task (``task``: refuse other tasks' files in one line)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p} {not_found(p)}", "pass an exported .onnx, .torchscript.pt or OpenVINO .xml file")
    if p.suffix == ".xml":
        ex = _open_openvino(p, threads)
    elif p.suffix == ".onnx" or not zipfile.is_zipfile(p):
        ex = _open_onnx(p, threads)
    else:
        ex = _open_torchscript(p, threads)
    if task and ex.task != task:
        raise UserError(f"{p} is a {ex.task} export, not a {task} one", f"export one with `dlbox {task} export`")
    return ex
