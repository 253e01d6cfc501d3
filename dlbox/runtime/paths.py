"""Execution paths: how one model is run (backend, precision, memory format, compilation), and the prepared
step each one times.

A path either prepares a step or raises ``Unavailable`` with the reason (no GPU, package not installed, the
CPU lacks the instructions, compilation failed), which the benchmark reports as a skipped row. Impossible
combinations (int8 in eager PyTorch, bf16 in onnxruntime) are user errors, raised by ``PathSpec.validate``.

Export and quantization choices, and why:
- ONNX export uses the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``): it needs no onnxscript
  and handles every torchvision classifier; the graph has a dynamic batch axis.
- int8 is onnxruntime static quantization (QDQ format, per-channel int8 weights, uint8 activations, MinMax
  calibration on synthetic batches). torch 2.14 no longer ships PT2E quantization (``torch.ao.quantization.
  quantize_pt2e`` moved to the separate torchao package), while onnxruntime is already a dependency; the
  same QDQ file also runs in OpenVINO, which maps it onto its own int8 kernels (VNNI/AMX where present).
  Calibrating on synthetic data is right for speed; for accuracy, calibrate on real images (see fastpath).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlbox.base.errors import UserError
from dlbox.engine.device import autocast, grad_scaler

BACKENDS = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
INPUT, OUTPUT = "images", "logits"


class Unavailable(Exception):
    """This path cannot run here; the message says why (shown as 'skipped: <reason>')."""


@dataclass(frozen=True)
class PathSpec:
    backend: str = "torch"
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False

    @property
    def label(self) -> str:
        if self.backend != "torch":
            return f"{self.backend} {self.precision}"
        parts = [self.precision, "channels_last" if self.channels_last else "NCHW"]
        parts.append("compile" if self.compile else "eager")
        return " ".join(parts)

    @property
    def is_baseline(self) -> bool:
        return self == BASELINE

    @property
    def trains(self) -> bool:
        """Only PyTorch paths train; exported graphs are inference only."""
        return self.backend == "torch"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PathSpec:
        return cls(
            backend=d.get("backend", "torch"), precision=d.get("precision", "fp32"),
            channels_last=bool(d.get("channels_last", False)), compile=bool(d.get("compile", False)),
        )  # fmt: skip

    def validate(self) -> PathSpec:
        if self.backend not in BACKENDS:
            raise UserError(f"unknown backend {self.backend!r}", f"one of {', '.join(BACKENDS)}")
        if self.precision not in PRECISIONS:
            raise UserError(f"unknown precision {self.precision!r}", f"one of {', '.join(PRECISIONS)}")
        if self.backend == "torch" and self.precision == "int8":
            raise UserError(
                "int8 runs through an exported, quantized graph, not eager PyTorch",
                "use --precision int8 with --backend onnxruntime or --backend openvino",
            )
        if self.backend != "torch" and (self.compile or self.channels_last):
            raise UserError(
                f"--compile and --channels-last apply to --backend torch, not {self.backend}",
                f"{self.backend} picks its own memory layout and compiles the graph itself",
            )
        if self.backend == "onnxruntime" and self.precision in ("bf16", "fp16"):
            raise UserError(f"onnxruntime on the CPU runs fp32 and int8 here, not {self.precision}",
                            "use --backend torch or openvino for bf16/fp16")  # fmt: skip
        return self


BASELINE = PathSpec()


@dataclass
class Prepared:
    """A path ready to time: ``step()`` runs one step on the fixed batch; ``predict(x)`` returns fp32 logits on
    the CPU (for parity checks; same batch shape as the benchmark's)."""

    step: Callable[[], Any]
    predict: Callable[[torch.Tensor], torch.Tensor] | None = None


@contextlib.contextmanager
def quiet():
    """Exporters and quantizers print progress and deprecation notes; keep stdout clean for --json."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        yield


def cxx_compiler() -> str | None:
    for name in (os.environ.get("CXX"), "g++", "clang++", "c++"):
        if name and shutil.which(name):
            return name
    return None


def check_torch(spec: PathSpec, device: torch.device) -> None:
    if spec.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise Unavailable(f"{torch.cuda.get_device_name(device)} has no bf16 support")
    if spec.compile:
        if device.type == "cpu" and cxx_compiler() is None:
            raise Unavailable("torch.compile (inductor) needs a C++ compiler on the CPU and none was found "
                              "(install g++ or set CXX)")  # fmt: skip
        if device.type == "cuda":
            try:
                import triton  # noqa: F401
            except ImportError:
                raise Unavailable("torch.compile on the GPU needs triton, which is not installed") from None


def _compile(model: nn.Module, freeze: bool):
    # Freezing folds weights into the graph as constants (conv+BN folding, prepacked oneDNN weights):
    # inference only, as the weights can no longer change.
    return torch.compile(model, options={"freezing": True} if freeze else None)


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def torch_infer(spec: PathSpec, model: nn.Module, x: torch.Tensor, device: torch.device) -> Prepared:
    check_torch(spec, device)
    fmt = torch.channels_last if spec.channels_last else torch.contiguous_format
    model = model.to(device).eval().to(memory_format=fmt)
    fn = _compile(model, freeze=True) if spec.compile else model
    x = x.to(device).contiguous(memory_format=fmt)

    def run(inp: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), autocast(device, spec.precision):
            return fn(inp)

    def predict(inp: torch.Tensor) -> torch.Tensor:
        return run(inp.to(device).contiguous(memory_format=fmt)).float().cpu()

    return Prepared(step=lambda: run(x), predict=predict)


def torch_train(spec: PathSpec, model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
                device: torch.device) -> Prepared:  # fmt: skip
    """SGD with momentum on cross-entropy, as tf_cnn_benchmarks times it: forward, backward, update."""
    check_torch(spec, device)
    fmt = torch.channels_last if spec.channels_last else torch.contiguous_format
    model = model.to(device).train().to(memory_format=fmt)
    fn = _compile(model, freeze=False) if spec.compile else model
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = grad_scaler(device, spec.precision)
    x, labels = x.to(device).contiguous(memory_format=fmt), labels.to(device)

    def step() -> torch.Tensor:
        with autocast(device, spec.precision):
            loss = F.cross_entropy(fn(x), labels)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    return Prepared(step=step)


class Workspace:
    """Exported and quantized ONNX files, made once per model/shape and shared by the paths that use them."""

    def __init__(self, root: str | Path | None = None):
        self._tmp = None if root else tempfile.TemporaryDirectory(prefix="dlbox-bench-")
        self.root = Path(root or self._tmp.name)
        self.root.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def onnx(self, key: str, model: nn.Module, x: torch.Tensor) -> Path:
        path = self.root / f"{key}.fp32.onnx"
        if not path.exists():
            export_onnx(model, x, path)
        return path

    def int8(
        self, key: str, model: nn.Module, x: torch.Tensor, calibration: Iterable[np.ndarray] | None
    ) -> Path:
        path = self.root / f"{key}.int8.onnx"
        if not path.exists():
            fp32 = self.onnx(key, model, x)
            batches = list(calibration) if calibration is not None else synthetic_calibration(x)
            quantize_int8(fp32, path, batches)
        return path


def export_onnx(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    """The benchmarked graph, (N, ...) -> logits with N free, through the one exporter (dlbox.runtime.export)."""
    from dlbox.runtime import export as exporter

    model = model.cpu().eval()
    meta = exporter.ExportMeta("classify", type(model).__name__, [exporter.InputFacts(INPUT, [-1, *x.shape[1:]], layout="NCHW")])
    try:
        with quiet():
            exporter.export_onnx(exporter.Graph(model, (x.cpu(),), [INPUT], [OUTPUT], meta), path)
    except Exception as e:
        path.unlink(missing_ok=True)
        raise Unavailable(f"ONNX export failed: {first_line(e)}") from e


def synthetic_images(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 3, size, size) synthetic images: noise plus a colour cast per image, so images differ in more than
    noise and a model's top-1 class can differ between them (what the parity checks compare)."""
    cast = torch.randn((n, 3, 1, 1), generator=generator)
    return torch.randn((n, 3, size, size), generator=generator) + 2 * cast


def synthetic_calibration(x: torch.Tensor, batches: int = 4, size: int = 8) -> list[np.ndarray]:
    """Calibration batches drawn like the benchmark's synthetic images (seeded, so reruns agree)."""
    g = torch.Generator().manual_seed(1234)
    return [synthetic_images(size, x.shape[-1], g).numpy() for _ in range(batches)]


def int8_reduce_range() -> bool:
    """Without VNNI/AMX, x86 int8 kernels multiply u8 x s8 pairs into saturating int16 (vpmaddubsw); 7-bit
    weights avoid that overflow (onnxruntime's quantization guide)."""
    from dlbox.runtime.hardware import cpu_info

    info = cpu_info()
    return not any(info.has(f) for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def quantize_int8(fp32: Path, out: Path, batches: list[np.ndarray]) -> None:
    try:
        import onnxruntime.quantization as q
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise Unavailable("int8 quantization needs onnxruntime, which is not installed") from None

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.it = iter(batches)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {INPUT: b}

    pre = out.with_suffix(".pre.onnx")
    try:
        with quiet():
            quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
            q.quantize_static(
                str(pre),
                str(out),
                Reader(),
                quant_format=q.QuantFormat.QDQ,
                per_channel=True,
                activation_type=q.QuantType.QUInt8,
                weight_type=q.QuantType.QInt8,
                reduce_range=int8_reduce_range(),
                calibrate_method=q.CalibrationMethod.MinMax,
            )
    except Exception as e:
        out.unlink(missing_ok=True)
        raise Unavailable(f"int8 quantization failed: {first_line(e)}") from e
    finally:
        pre.unlink(missing_ok=True)
        for aug in out.parent.glob("augmented_model*.onnx"):  # calibration leftovers of older onnxruntime
            aug.unlink(missing_ok=True)


def ort_session(path: Path, threads: int, interop: int):
    try:
        import onnxruntime as ort
    except ImportError:
        raise Unavailable("onnxruntime is not installed (pip install onnxruntime)") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = interop
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: its warnings would bury the table
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_infer(path: Path, x: torch.Tensor, threads: int, interop: int) -> Prepared:
    session = ort_session(path, threads, interop)
    xn = x.cpu().numpy()

    def predict(inp: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT], {INPUT: inp.cpu().numpy()})[0])

    return Prepared(step=lambda: session.run([OUTPUT], {INPUT: xn}), predict=predict)


OV_HINT = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def openvino_compiled(path: Path, precision: str, threads: int, shape: tuple[int, ...] | None):
    try:
        import openvino as ov
    except ImportError:
        raise Unavailable("openvino is not installed (pip install openvino)") from None
    core = ov.Core()
    caps = set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    if precision in ("bf16", "fp16") and precision.upper() not in caps:
        raise Unavailable(f"OpenVINO reports no {precision.upper()} capability on this CPU "
                          f"(it has: {', '.join(sorted(caps))})")  # fmt: skip
    model = core.read_model(str(path))
    if shape is not None:  # static shapes let OpenVINO pick and pre-pack kernels for this batch
        model.reshape({INPUT: list(shape)})
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision in OV_HINT:  # int8 graphs: OpenVINO chooses the precision of the layers left unquantized
        config["INFERENCE_PRECISION_HINT"] = OV_HINT[precision]
    return core.compile_model(model, "CPU", config)


def openvino_infer(path: Path, precision: str, x: torch.Tensor, threads: int) -> Prepared:
    compiled = openvino_compiled(path, precision, threads, tuple(x.shape))
    request = compiled.create_infer_request()
    out = compiled.output(0)
    xn = x.cpu().numpy()

    def predict(inp: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.array(request.infer({0: inp.cpu().numpy()})[out], dtype=np.float32))

    return Prepared(step=lambda: request.infer({0: xn}), predict=predict)


def prepare(
    spec: PathSpec,
    mode: str,
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    threads: int,
    interop: int,
    workspace: Workspace,
    key: str,
) -> Prepared:
    """The step for ``spec`` in ``mode`` ('train' or 'infer'); raises Unavailable with the reason."""
    if mode == "train" and not spec.trains:
        raise Unavailable(f"{spec.backend} is inference only here")
    if spec.backend == "torch":
        if mode == "train":
            return torch_train(spec, model, x, labels, device)
        return torch_infer(spec, model, x, device)
    if device.type != "cpu":
        raise Unavailable(f"{spec.backend} runs on the CPU in dlbox bench; this run is on {device.type}")
    if spec.precision == "int8":
        path = workspace.int8(key, model, x, None)
    else:
        path = workspace.onnx(key, model, x)
    if spec.backend == "onnxruntime":
        return ort_infer(path, x, threads, interop)
    return openvino_infer(path, spec.precision, x, threads)
