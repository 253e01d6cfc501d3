"""`dlbox classify export`: the classifier through the one exporter (dlbox.runtime.export), parity-checked.

The graph maps (N, 3, S, S) normalised images to (N, C) logits, N free by default; class names and input facts
travel in the file's metadata (docs/export.md), so `classify predict model.onnx` needs nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlbox.base.errors import UserError
from dlbox.runtime import export as exporter
from dlbox.tasks.classify.inference import Classifier, export_meta, load_classifier

FORMATS = ("onnx", "torchscript", "openvino")


class Logits(nn.Module):
    """The classifier with a plain tensor out (Hugging Face models return an object with ``.logits``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out if isinstance(out, torch.Tensor) else out.logits


def graph(clf: Classifier, dynamic_batch: bool = True) -> exporter.Graph:
    g = torch.Generator().manual_seed(0)
    # a static-batch export takes batches of N=1, a dynamic one any N (checked with 2)
    example = torch.randn(2 if dynamic_batch else 1, 3, clf.img_size, clf.img_size, generator=g)
    meta = exporter.ExportMeta.from_dict(export_meta(clf, dynamic_batch))
    return exporter.Graph(Logits(clf.model).eval(), (example,), ["images"], ["logits"], meta)


def export(source: str, fmt: str = "onnx", out: str | None = None, dynamic_batch: bool = True,
           register: str | None = None) -> dict[str, Any]:
    from dlbox.models import mlflow_registry

    f = exporter.check_format(fmt, FORMATS)
    if register:
        mlflow_registry.check_name(register)
    clf = load_classifier(source)
    if clf.model is None:
        raise UserError(f"{source} is already an exported model", "export from a run directory or checkpoint")
    src = Path(source)
    run_dir = src if src.is_dir() else src.parent.parent
    path = Path(out) if out else run_dir / f"model{f.suffix}"
    res = exporter.export(graph(clf, dynamic_batch), path, fmt)
    result = {"file": str(path), "format": fmt, "max_abs_diff": res["parity"]["max_abs_diff"],
           "dynamic_batch": dynamic_batch, "img_size": clf.img_size}  # fmt: skip
    registered = mlflow_registry.after_export(path, run_dir, register)  # issue 24: MLflow run / registry
    return {**result, "registered": registered} if registered else result
