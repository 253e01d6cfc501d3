"""`dlbox face export`: the embedder to ONNX (unit embeddings out), with a parity check against PyTorch.

The file's metadata holds the architecture, input size and threshold, so `compare`, `identify` and
`evaluate` take the .onnx file like a run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from dlbox.engine.fileio import atomic_write
from dlbox.errors import UserError
from dlbox.tasks.face.inference import load_embedder


def export(source: str, out: str | None = None, model: str | None = None, dynamic_batch: bool = True) -> dict[str, Any]:
    import onnx
    import onnxruntime as ort

    emb = load_embedder(source, model)
    if emb.model is None:
        raise UserError(f"{source} is already an exported model", "export from a run, a checkpoint or weights")
    src = Path(source)
    path = Path(out) if out else (src / "model.onnx" if src.is_dir() else Path(src.stem + ".onnx"))
    g = torch.Generator().manual_seed(0)
    example = torch.randn(2 if dynamic_batch else 1, 3, emb.img_size, emb.img_size, generator=g)  # (N, 3, S, S) standardised crops
    meta = {"arch": emb.arch, "img_size": emb.img_size, "threshold": emb.threshold, "source": str(source),
            "input": "RGB face crops, (pixel - 127.5) / 128"}  # fmt: skip

    def write(tmp: str) -> None:
        torch.onnx.export(
            emb.model, (example,), tmp, dynamo=False, input_names=["faces"], output_names=["embeddings"],
            dynamic_axes={"faces": {0: "batch"}, "embeddings": {0: "batch"}} if dynamic_batch else None,
            opset_version=17,
        )  # fmt: skip
        m = onnx.load(tmp)
        entry = m.metadata_props.add()
        entry.key, entry.value = "dlbox_face", json.dumps(meta)
        onnx.save(m, tmp)

    atomic_write(path, write)
    x = example
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"faces": x.numpy()})[0])
    with torch.no_grad():
        want = emb.model(x)
    return {"file": str(path), "max_abs_diff": float((got - want).abs().max()), "img_size": emb.img_size,
            "dim": int(want.shape[1]), "threshold": emb.threshold}  # fmt: skip
