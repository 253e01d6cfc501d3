"""`dlbox face export`: the embedder through the one exporter (dlbox.runtime.export), unit embeddings out,
with a parity check against PyTorch.

The file's metadata (docs/export.md) holds the architecture, input size and threshold, so `compare`,
`identify` and `evaluate` take the exported file like a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dlbox.base.errors import UserError
from dlbox.runtime import export as exporter
from dlbox.tasks.face.inference import Embedder, export_meta, load_embedder


def graph(emb: Embedder, dynamic_batch: bool = True) -> exporter.Graph:
    g = torch.Generator().manual_seed(0)
    example = torch.randn(2 if dynamic_batch else 1, 3, emb.img_size, emb.img_size, generator=g)  # standardised crops
    meta = exporter.ExportMeta.from_dict(export_meta(emb, dynamic_batch))
    return exporter.Graph(emb.model.eval(), (example,), ["faces"], ["embeddings"], meta)


def export(source: str, out: str | None = None, model: str | None = None, dynamic_batch: bool = True,
           fmt: str = "onnx", register: str | None = None) -> dict[str, Any]:  # fmt: skip
    from dlbox.models import mlflow_registry

    if register:
        mlflow_registry.check_name(register)
    f = exporter.check_format(fmt)
    emb = load_embedder(source, model)
    if emb.model is None:
        raise UserError(f"{source} is already an exported model", "export from a run, a checkpoint or weights")
    src = Path(source)
    path = Path(out) if out else (src / f"model{f.suffix}" if src.is_dir() else Path(src.stem + f.suffix))
    g = graph(emb, dynamic_batch)
    res = exporter.export(g, path, fmt)
    result = {"file": str(path), "max_abs_diff": res["parity"]["max_abs_diff"], "img_size": emb.img_size,
           "dim": int(g.meta.outputs[0]["shape"][1]), "threshold": emb.threshold}  # fmt: skip
    registered = mlflow_registry.after_export(path, src if src.is_dir() else None, register)  # issue 24
    return {**result, "registered": registered} if registered else result
