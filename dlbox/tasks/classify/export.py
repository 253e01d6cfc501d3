"""`dlbox classify export`: one table of formats, one function per format, a parity check for each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from dlbox.engine.fileio import atomic_write
from dlbox.errors import UserError
from dlbox.tasks.classify.inference import Classifier, load_classifier


def _meta(clf: Classifier) -> dict[str, Any]:
    return {"classes": clf.classes, "img_size": clf.img_size, "mean": list(clf.mean), "std": list(clf.std),
            "model_name": clf.model_name}  # fmt: skip


def export_onnx(clf: Classifier, path: Path, example: torch.Tensor, dynamic_batch: bool) -> float:
    """ONNX through the TorchScript-based exporter (no onnxscript needed); class names and input facts go into
    the file's metadata so `classify predict model.onnx` needs nothing else. Returns max |onnx - torch|."""
    import onnx
    import onnxruntime as ort

    def write(tmp: str) -> None:
        torch.onnx.export(
            clf.model, (example,), tmp, dynamo=False, input_names=["images"], output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None,
            opset_version=17,
        )  # fmt: skip
        m = onnx.load(tmp)
        entry = m.metadata_props.add()
        entry.key, entry.value = "dlbox", json.dumps(_meta(clf))
        onnx.save(m, tmp)

    atomic_write(path, write)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"images": example.numpy()})[0])
    return float((got - clf.logits(example)).abs().max())


def export_torchscript(clf: Classifier, path: Path, example: torch.Tensor, dynamic_batch: bool) -> float:
    """TorchScript by tracing (eval mode); metadata in the archive's extra files."""
    traced = torch.jit.trace(clf.model, example, check_trace=False)
    atomic_write(path, lambda tmp: torch.jit.save(traced, tmp, _extra_files={"dlbox.json": json.dumps(_meta(clf))}))
    loaded = torch.jit.load(str(path))
    return float((loaded(example) - clf.logits(example)).abs().max())


FORMATS = {
    # format: (file suffix, function)
    "onnx": (".onnx", export_onnx),
    "torchscript": (".torchscript.pt", export_torchscript),
}


def export(source: str, fmt: str = "onnx", out: str | None = None, dynamic_batch: bool = False) -> dict[str, Any]:
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}", f"one of {', '.join(FORMATS)}")
    clf = load_classifier(source)
    if clf.model is None:
        raise UserError(f"{source} is already an exported model", "export from a run directory or checkpoint")
    suffix, fn = FORMATS[fmt]
    src = Path(source)
    run_dir = src if src.is_dir() else src.parent.parent
    path = Path(out) if out else run_dir / f"model{suffix}"
    g = torch.Generator().manual_seed(0)
    # (N, 3, H, W); a static-batch export takes batches of N=1, a dynamic one any N (checked with 2)
    example = torch.randn(2 if dynamic_batch else 1, 3, clf.img_size, clf.img_size, generator=g)
    diff = fn(clf, path, example, dynamic_batch)
    return {"file": str(path), "format": fmt, "max_abs_diff": diff, "dynamic_batch": dynamic_batch, "img_size": clf.img_size}
