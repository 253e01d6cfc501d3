"""`dlbox asr export`: a run -> ``model.onnx`` + ``tokens.txt`` in the layout sherpa-onnx's
``OfflineRecognizer.from_wenet_ctc`` loads, checked against PyTorch.

Inputs ``x`` (N, T, 80) float raw fbank and ``x_lens`` (N,) int64; outputs ``log_probs`` (N, T', V) and
``log_probs_lens`` (N,) int64; CMVN is inside the graph. sherpa-onnx's offline WeNet CTC reader needs the
metadata ``vocab_size`` and ``subsampling_factor`` (sherpa-onnx/csrc/offline-wenet-ctc-model.cc);
``model_type = wenet_ctc`` is what its older releases looked for. It computes the same fbank as
``dlbox.tasks.asr.features`` (samples in 16-bit range for WeNet models) and decodes greedily with blank 0.
Written through the one exporter (dlbox.runtime.export): its metadata (docs/export.md) under ``dlbox``, the
batch and time axes free.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from dlbox.base.errors import UserError
from dlbox.runtime import export as exporter
from dlbox.tasks.asr.inference import export_meta, load_recognizer
from dlbox.tasks.asr.model import SUBSAMPLING

OPSET = 17


def export(source: str, fmt: str = "onnx", out: str | None = None, register: str | None = None) -> dict[str, Any]:
    """``register``: model.onnx and tokens.txt also become the next version of that name in MLflow's model
    registry (one folder: ``models:/NAME/VERSION`` then resolves to a model.onnx with its tokens.txt)."""
    from dlbox.models import mlflow_registry

    if fmt != "onnx":
        raise UserError(f"--format {fmt!r} is not supported", "use --format onnx")
    if register:
        mlflow_registry.check_name(register)
    rec = load_recognizer(source)
    if rec.model is None:
        raise UserError(f"{source} is already an ONNX model", "pass the run directory it came from")
    if rec.cmvn_mode == "speaker":
        warnings.warn("per-speaker CMVN is not inside the export: the ONNX model expects normalised features", stacklevel=2)
    run = Path(rec.source).parent.parent
    path = Path(out) if out else run / "model.onnx"
    model = rec.model.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 200, 80, generator=g) * 3 + 10  # (N, T, 80) fbank-like values
    x_lens = torch.tensor([200, 137], dtype=torch.int64)
    # sherpa-onnx's offline WeNet CTC reader needs these beside dlbox's own metadata
    props = {"model_type": "wenet_ctc", "vocab_size": str(len(rec.vocab)), "subsampling_factor": str(SUBSAMPLING)}
    meta = export_meta(rec)
    graph = exporter.Graph(model, (x, x_lens), ["x", "x_lens"], ["log_probs", "log_probs_lens"],
                           exporter.ExportMeta.from_dict(meta), props=props, opset=OPSET,
                           dynamic_axes={"x": {1: "T"}, "log_probs": {1: "T_out"}},
                           lengths={"log_probs": "log_probs_lens"})  # fmt: skip
    res = exporter.export(graph, path, "onnx")
    rec.vocab.save(path.with_name("tokens.txt"))
    parity = res["parity"]
    if parity["outputs"]["log_probs_lens"] is None or parity["outputs"]["log_probs"] is None:
        raise RuntimeError(f"exported lengths or shapes differ from PyTorch's: {parity['outputs']}")
    diff = parity["max_abs_diff"]
    registered = mlflow_registry.after_export(path, run, register, meta)  # issue 24: MLflow run / registry
    result = {"file": str(path), "tokens": str(path.with_name("tokens.txt")), "format": "onnx", "max_abs_diff": diff,
            "vocab_size": len(rec.vocab), "subsampling_factor": SUBSAMPLING,
            "sherpa_onnx": f"sherpa_onnx.OfflineRecognizer.from_wenet_ctc(model={str(path)!r}, tokens="
                           f"{str(path.with_name('tokens.txt'))!r})"}  # fmt: skip
    return {**result, "registered": registered} if registered else result
