"""`dlbox detect bench`: latency and throughput of a detector at one input size, batch 1 (the embedded case).

The timed call is the whole detector: network, decoding and NMS (in the ONNX graph for onnxruntime, the
same function eagerly for PyTorch). Letterboxing is timed separately, as it happens once per camera frame.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from dlbox.base.errors import UserError
from dlbox.engine.device import physical_cores
from dlbox.runtime.exported import load_exported
from dlbox.tasks.detect.data import letterbox, to_tensor
from dlbox.tasks.detect.inference import Detector, load_detector


def _timed(fn, runs: int, warmup: int) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t
    return out


def bench(source: str, img_size: int = 320, runtime: Literal["onnx", "torch"] = "onnx", runs: int = 100,
          warmup: int = 10, threads: int | None = None) -> dict[str, Any]:
    """Latency (ms: mean, p50, p90) and throughput (images/s) of ``source`` (a run, checkpoint or .onnx)."""
    if img_size < 32 or img_size % 32:
        raise UserError(f"--img-size must be a multiple of 32, got {img_size}")
    if runs < 1 or warmup < 0:
        raise UserError("--runs must be at least 1 and --warmup at least 0")
    threads = threads or physical_cores()
    det: Detector = load_detector(source, threads=threads)
    from dlbox.data.shapes_det import CLASSES, render_scene

    scene, _ = render_scene(np.random.default_rng(0), CLASSES[:3])  # a 128-256 px sample image
    x = to_tensor(letterbox(scene, img_size)[0])[None]  # (1, 3, S, S)
    if runtime == "onnx":
        path = Path(source)
        if det.session is None or det.img_size != img_size:
            if det.model is None:
                raise UserError(f"{source} was exported at {det.img_size} px", f"bench it with --img-size {det.img_size}, "
                                "or export the run again with --img-size")  # fmt: skip
            from dlbox.tasks.detect.export import export_temp

            path = export_temp(det, img_size)
        try:
            ex = load_exported(path, threads=threads, task="detect")
            feed = {ex.inputs[0].name: x.numpy()}
            times = _timed(lambda: ex.run(feed), runs, warmup)
        finally:
            if path != Path(source):  # the temporary export's folder
                shutil.rmtree(path.parent, ignore_errors=True)
    else:
        if det.model is None:
            raise UserError("--runtime torch needs a run or checkpoint, not an .onnx file")
        torch.set_num_threads(threads)
        with torch.inference_mode():
            times = _timed(lambda: det.detect(x), runs, warmup)
    pre = _timed(lambda: letterbox(scene, img_size), 20, 2)
    ms = times * 1000
    return {
        "source": str(source), "model": det.model_name, "runtime": runtime, "img_size": img_size, "batch": 1,
        "threads": threads, "runs": runs,
        "latency_ms": {"mean": float(ms.mean()), "p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90))},
        "images_per_sec": float(1000 / ms.mean()),
        "letterbox_ms": float(pre.mean() * 1000),
    }  # fmt: skip


def render(r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    return (
        f"{r['model']} via {r['runtime']} at {r['img_size']} px, batch 1, {r['threads']} thread(s), {r['runs']} runs\n"
        f"latency  mean {lat['mean']:.2f} ms  p50 {lat['p50']:.2f} ms  p90 {lat['p90']:.2f} ms\n"
        f"throughput {r['images_per_sec']:.1f} images/s (network + decoding + NMS; letterbox {r['letterbox_ms']:.2f} ms more)"
    )
