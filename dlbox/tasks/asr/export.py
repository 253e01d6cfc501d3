"""`dlbox asr export`: a run -> ``model.onnx`` + ``tokens.txt`` in the layout sherpa-onnx's
``OfflineRecognizer.from_wenet_ctc`` loads, checked against PyTorch.

Inputs ``x`` (N, T, 80) float raw fbank and ``x_lens`` (N,) int64; outputs ``log_probs`` (N, T', V) and
``log_probs_lens`` (N,) int64; CMVN is inside the graph. sherpa-onnx's offline WeNet CTC reader needs the
metadata ``vocab_size`` and ``subsampling_factor`` (sherpa-onnx/csrc/offline-wenet-ctc-model.cc);
``model_type = wenet_ctc`` is what its older releases looked for. It computes the same fbank as
``dlbox.tasks.asr.features`` (samples in 16-bit range for WeNet models) and decodes greedily with blank 0.
Exported with the TorchScript-based exporter (``dynamo=False``): no onnxscript needed.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlbox.engine.fileio import atomic_write
from dlbox.errors import UserError
from dlbox.tasks.asr.inference import load_recognizer
from dlbox.tasks.asr.model import SUBSAMPLING

OPSET = 17


def export(source: str, fmt: str = "onnx", out: str | None = None) -> dict[str, Any]:
    import onnx
    import onnxruntime as ort

    if fmt != "onnx":
        raise UserError(f"--format {fmt!r} is not supported", "use --format onnx")
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
    meta = {"model_type": "wenet_ctc", "vocab_size": str(len(rec.vocab)), "subsampling_factor": str(SUBSAMPLING),
            "dlbox": json.dumps({"task": "asr", "hparams": model.hparams, "cmvn_mode": rec.cmvn_mode})}  # fmt: skip

    def write(tmp: str) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x, x_lens), tmp, dynamo=False, opset_version=OPSET, input_names=["x", "x_lens"],
                              output_names=["log_probs", "log_probs_lens"],
                              dynamic_axes={"x": {0: "N", 1: "T"}, "x_lens": {0: "N"}, "log_probs": {0: "N", 1: "T_out"},
                                            "log_probs_lens": {0: "N"}})  # fmt: skip
        m = onnx.load(tmp)
        for k, v in meta.items():
            e = m.metadata_props.add()
            e.key, e.value = k, v
        onnx.save(m, tmp)

    atomic_write(path, write)
    rec.vocab.save(path.with_name("tokens.txt"))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got, got_lens = sess.run(None, {"x": x.numpy(), "x_lens": x_lens.numpy()})
    with torch.no_grad():
        ref, ref_lens = model(x, x_lens)
    if not np.array_equal(got_lens, ref_lens.numpy()):
        raise RuntimeError(f"exported lengths differ: {got_lens} vs {ref_lens.numpy()}")
    diff = max(float(np.abs(got[i, :n] - ref[i, :n].numpy()).max()) for i, n in enumerate(ref_lens.tolist()))
    return {"file": str(path), "tokens": str(path.with_name("tokens.txt")), "format": "onnx", "max_abs_diff": diff,
            "vocab_size": len(rec.vocab), "subsampling_factor": SUBSAMPLING,
            "sherpa_onnx": f"sherpa_onnx.OfflineRecognizer.from_wenet_ctc(model={str(path)!r}, tokens="
                           f"{str(path.with_name('tokens.txt'))!r})"}  # fmt: skip
