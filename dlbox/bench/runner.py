"""The benchmark: one path (`dlbox bench`), or the suite of paths from the plain baseline to the fastest ones
this device has (`dlbox bench --suite`). Every measurement is a row (a dict) ready for the table, JSON, CSV."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import gc
import importlib.metadata
import platform
import time
from typing import Any

import torch

from dlbox.base.progress import log
from dlbox.bench import flops as flops_mod
from dlbox.bench import models
from dlbox.bench.config import BenchConfig, Mode  # noqa: F401  (re-exported)
from dlbox.bench.timing import TooSlow, measure
from dlbox.engine.device import physical_cores, resolve_device
from dlbox.runtime import hardware
from dlbox.runtime.parity import TOLERANCE, parity
from dlbox.runtime.paths import BASELINE, PathSpec, Unavailable, Workspace, first_line, prepare

SLOW_FACTOR = 4  # a path whose step takes this many times the baseline's is skipped (not timed to the end)


def suite_paths(
    device: torch.device, cpu: hardware.CpuInfo | None = None
) -> list[tuple[PathSpec, str | None]]:
    """From the plain baseline to the best settings of this device, one change at a time; each path with the
    reason it is skipped here (None: it runs). bf16/fp16 on a CPU without native units for them would be
    emulated, slower than fp32, so the suite skips them (`--precision bf16` alone still measures it)."""
    if device.type == "cuda":
        paths = [BASELINE, PathSpec(channels_last=True), PathSpec(precision="bf16", channels_last=True),
                 PathSpec(precision="fp16", channels_last=True),
                 PathSpec(precision="bf16", channels_last=True, compile=True),
                 PathSpec(precision="fp16", channels_last=True, compile=True)]  # fmt: skip
        return [(p, None) for p in paths]
    cpu = cpu or hardware.cpu_info()
    no_bf16 = (
        None
        if cpu.has("amx_bf16") or cpu.has("avx512_bf16")
        else (
            "no native bf16 on this CPU (AMX-BF16 or AVX512-BF16 absent): emulated bf16 is slower than fp32"
        )
    )
    # AVX512-FP16 alone is not enough: on a Xeon with it (no AMX) one ResNet-50 fp16 training step took over
    # 8 minutes, against 5 s in fp32; oneDNN's fast CPU fp16 kernels need AMX-FP16.
    no_fp16 = None if cpu.has("amx_fp16") else (
        "no AMX-FP16 on this CPU: fp16 autocast has no fast kernels here (a GPU path)")  # fmt: skip
    return [
        (BASELINE, None), (PathSpec(channels_last=True), None),
        (PathSpec(precision="bf16", channels_last=True), no_bf16),
        (PathSpec(precision="fp16", channels_last=True), no_fp16),
        (PathSpec(channels_last=True, compile=True), None),
        (PathSpec(precision="bf16", channels_last=True, compile=True), no_bf16),
        (PathSpec("onnxruntime", "fp32"), None), (PathSpec("onnxruntime", "int8"), None),
        (PathSpec("openvino", "fp32"), None), (PathSpec("openvino", "bf16"), None),
        (PathSpec("openvino", "int8"), None),
    ]  # fmt: skip


def set_threads(threads: int | None, interop: int) -> tuple[int, int]:
    n = threads or physical_cores()
    torch.set_num_threads(n)
    try:  # only possible before the first inter-op parallel work of the process
        torch.set_num_interop_threads(interop)
    except RuntimeError:
        pass
    return n, torch.get_num_interop_threads()


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


class Bench:
    """One model at one shape on one device: the reference model, the synthetic batch and its FLOPs, shared by
    every path measured. Paths get a fresh copy of the model each (compilation and training change it)."""

    def __init__(self, cfg: BenchConfig):
        cfg.validate()
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # autotuned convolutions, as tf_cnn_benchmarks does
        self.threads, self.interop = set_threads(cfg.threads, cfg.interop)
        self.cpu = hardware.cpu_info()
        if cfg.weights:  # trained weights: the network (and its input size) the weights are for
            self.model, name, size = models.from_weights(cfg.weights, cfg.model)
            self.cfg = cfg = dataclasses.replace(cfg, model=name)
            self.image_size = cfg.image_size or size
        else:
            self.image_size = cfg.image_size or models.default_image_size(cfg.model)
            self.model = models.build(cfg.model, cfg.seed)
        g = torch.Generator().manual_seed(cfg.seed)
        self.x = models.synthetic_images(cfg.batch_size, self.image_size, g)  # (N, 3, S, S)
        self.flops_forward = flops_mod.forward_flops(self.model, self.x[:1]) * cfg.batch_size
        with torch.no_grad():
            classes = self.model.eval()(self.x[:1]).shape[1]
        self.labels = torch.randint(0, classes, (cfg.batch_size,), generator=g)  # (N,)
        self.workspace = Workspace()
        self.key = f"{cfg.model}-b{cfg.batch_size}-s{self.image_size}"
        self._reference: torch.Tensor | None = None
        self._baseline_step_s: dict[str, float] = {}  # mode -> fp32 eager median step, once measured

    def close(self) -> None:
        self.workspace.close()

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def device_name(self) -> str:
        return hardware.gpu_name(self.device) if self.device.type == "cuda" else self.cpu.model

    def peak(self, precision: str) -> hardware.Peak:
        return hardware.peak(self.device, precision, self.threads, self.cpu)

    def environment(self) -> dict[str, Any]:
        versions = {"python": platform.python_version()}
        for name in ("torch", "torchvision", "onnxruntime", "openvino"):
            versions[name] = _version(name)
        return {
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "device": str(self.device), "device_name": self.device_name, "cpu": self.cpu.model,
            "isa": self.cpu.isa, "physical_cores": self.cpu.physical_cores,
            "clock_ghz": round(self.cpu.mhz / 1000, 2) if self.cpu.mhz else None,
            "clock_source": self.cpu.mhz_source,
            "threads": self.threads, "interop": self.interop, "versions": versions,
            "model": self.cfg.model, "image_size": self.image_size, "batch_size": self.cfg.batch_size,
            "gflop_per_image": round(self.flops_forward / self.cfg.batch_size / 1e9, 3),
            "train_factor": flops_mod.TRAIN_FACTOR,
        }  # fmt: skip

    def prepared(self, spec: PathSpec, mode: str):
        model = copy.deepcopy(self.model)
        return prepare(spec, mode, model, self.x, self.labels, self.device, self.threads, self.interop,
                       self.workspace, self.key)  # fmt: skip

    def _row(self, spec: PathSpec, mode: str) -> dict[str, Any]:
        return {
            "model": self.cfg.model, "mode": mode, "batch_size": self.cfg.batch_size,
            "image_size": self.image_size,
            "precision": spec.precision, "backend": spec.backend, "channels_last": spec.channels_last,
            "compile": spec.compile, "path": spec.label, "device": str(self.device),
            "device_name": self.device_name,
            "threads": self.threads, "interop": self.interop, "status": "ok", "reason": None,
            "images_per_sec": None, "step_ms": None, "step_ms_p10": None, "step_ms_p90": None,
            "steps": self.cfg.steps, "warmup": self.cfg.warmup, "setup_s": None, "first_step_s": None,
            "gflop_per_image": round(flops_mod.step_flops(self.flops_forward, mode) / self.cfg.batch_size / 1e9,
                                     3),
            "achieved_tflops": None, "peak_tflops": None, "peak_fraction": None, "peak_basis": None,
            "vs_baseline": None, "parity": None,
        }  # fmt: skip

    def reference(self) -> torch.Tensor:
        """fp32 eager logits on the fixed batch, what every path's are compared with."""
        if self._reference is None:
            self._reference = self.prepared(BASELINE, "infer").predict(self.x)  # (N, classes)
        return self._reference

    def skipped(self, spec: PathSpec, mode: str, reason: str) -> dict[str, Any]:
        return {**self._row(spec, mode), "status": "skipped", "reason": reason}

    def run(self, spec: PathSpec, mode: str, check: bool = False, reject: bool = False,
            timed: bool = True) -> dict[str, Any]:  # fmt: skip
        """Measure one path in one mode; unavailable or failing paths come back as skipped rows, never raise.

        ``check``: compare an inference path's logits with fp32 eager first (row["parity"]); ``reject``: and
        skip the timing of a path that fails the comparison; ``timed=False``: the comparison alone."""
        row = self._row(spec, mode)
        log(f"{spec.label} ({mode}): preparing")
        try:
            reference = self.reference() if check and mode == "infer" and not spec.is_baseline else None
            t = time.perf_counter()
            ready = self.prepared(spec, mode)
            row["setup_s"] = round(time.perf_counter() - t, 2)  # export, quantization, session creation
            first = None
            if check and mode == "infer" and ready.predict is not None:
                t = time.perf_counter()
                out = ready.predict(self.x)  # (N, classes); the first call: it compiles, when compiling
                first = time.perf_counter() - t
                if spec.is_baseline and self._reference is None:
                    self._reference = out
                row["parity"] = parity(self._reference if reference is None else reference, out,
                                       TOLERANCE[spec.precision])  # fmt: skip
                if reject and not row["parity"]["ok"]:
                    return {
                        **row,
                        "status": "rejected",
                        "reason": f"wrong results: {row['parity']['reason']}",
                    }
            if not timed:
                return row
            sync = (lambda: torch.cuda.synchronize(self.device)) if self.device.type == "cuda" else None
            base = self._baseline_step_s.get(mode)
            limit = None if base is None or spec.is_baseline else SLOW_FACTOR * base
            timing = measure(ready.step, self.cfg.steps, self.cfg.warmup, sync, desc=f"{spec.label} {mode}",
                             limit_s=limit)  # fmt: skip
        except TooSlow as e:
            return {**row, "status": "skipped", "reason": f"too slow here: {e}, over {SLOW_FACTOR}x the fp32 "
                    f"NCHW eager step ({base:.1f} s); this machine has no fast kernels for it"}  # fmt: skip
        except Unavailable as e:
            return {**row, "status": "skipped", "reason": str(e)}
        except torch.OutOfMemoryError:
            return {**row, "status": "skipped", "reason": f"out of memory at batch {self.cfg.batch_size}"}
        except Exception as e:  # a broken path must not end the suite: report it, with its first line
            what = "torch.compile failed" if spec.compile else "failed"
            return {**row, "status": "skipped", "reason": f"{what}: {first_line(e)}"}
        finally:
            if spec.compile:
                torch._dynamo.reset()
            gc.collect()
        median = timing.median_s
        if spec.is_baseline:
            self._baseline_step_s[mode] = median
        achieved = flops_mod.step_flops(self.flops_forward, mode) / median
        peak = self.peak(spec.precision)
        row.update(
            images_per_sec=round(self.cfg.batch_size / median, 2), step_ms=round(1000 * median, 2),
            step_ms_p10=round(1000 * timing.percentile_s(10), 2),
            step_ms_p90=round(1000 * timing.percentile_s(90), 2),
            first_step_s=round(timing.first_s if first is None else first, 2),
            achieved_tflops=round(achieved / 1e12, 4),
            peak_tflops=round(peak.flops / 1e12, 3) if peak.flops else None,
            peak_fraction=round(achieved / peak.flops, 4) if peak.flops else None, peak_basis=peak.basis,
        )  # fmt: skip
        log(f"{spec.label} ({mode}): {row['images_per_sec']} img/s, {row['step_ms']} ms/step")
        return row


def attach_baseline(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """vs_baseline = images/sec over the fp32 NCHW eager PyTorch row of the same model, mode and batch."""
    base = {(r["model"], r["mode"], r["batch_size"]): r["images_per_sec"] for r in rows
            if r["status"] == "ok" and PathSpec.from_dict(r).is_baseline}  # fmt: skip
    for r in rows:
        ref = base.get((r["model"], r["mode"], r["batch_size"]))
        if r["status"] == "ok" and ref:
            r["vs_baseline"] = round(r["images_per_sec"] / ref, 2)
    return rows


def run(cfg: BenchConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One path (the config's) in the config's modes; returns (rows, environment)."""
    spec = cfg.spec
    # --mode both on an inference-only backend: the inference row; --mode train alone: a skipped row saying so
    modes = ["infer"] if cfg.mode == "both" and not spec.trains else cfg.modes
    with Bench(cfg) as b:
        rows = [b.run(spec, mode, check=not spec.is_baseline) for mode in modes]
        return attach_baseline(rows), b.environment()


def suite(cfg: BenchConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every path of ``suite_paths`` in the config's modes (training only where the path trains)."""
    with Bench(cfg) as b:
        rows = []
        for spec, reason in suite_paths(b.device, b.cpu):
            for mode in cfg.modes:
                if mode == "train" and not spec.trains:
                    continue  # shown as 'inference only' in the table, not as a skip
                rows.append(b.skipped(spec, mode, reason) if reason else b.run(spec, mode, check=True))
        return attach_baseline(rows), b.environment()
