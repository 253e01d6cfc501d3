"""`dlbox classify predict`: label names with softmax probabilities for images, a folder or a glob."""

from __future__ import annotations

import csv
import glob
import io
from pathlib import Path
from typing import Any

import torch

from dlbox.data.folders import IMAGE_EXTENSIONS
from dlbox.engine.progress import bar
from dlbox.errors import UserError
from dlbox.tasks.classify.inference import load_classifier


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Image files from paths, folders (recursively) and glob patterns, in a stable order."""
    files: list[Path] = []
    for spec in inputs:
        p = Path(spec)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS)
        elif p.is_file():
            files.append(p)
        elif any(ch in spec for ch in "*?["):
            files += sorted(Path(f) for f in glob.glob(spec, recursive=True) if Path(f).is_file())
        else:
            raise UserError(f"{spec!r} does not exist", "pass image files, a folder or a quoted glob like 'imgs/*.jpg'")
    if not files:
        raise UserError(f"no images found in {' '.join(inputs)}", f"supported: {', '.join(sorted(IMAGE_EXTENSIONS))}")
    return files


def predict(source: str, inputs: list[str], topk: int = 5, model_name: str | None = None, batch_size: int = 32) -> list[dict[str, Any]]:
    """For each image: ``{"file", "predictions": [{"label", "prob"}, ...]}`` (top ``topk``, softmax)."""
    from PIL import Image, UnidentifiedImageError

    clf = load_classifier(source, model_name)
    tf = clf.transform()
    files = expand_inputs(inputs)
    k = min(topk, len(clf.classes))
    results: list[dict[str, Any]] = []
    with bar(len(files), "predict", unit="img") as pbar:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            tensors, ok = [], []
            for f in chunk:
                try:
                    with Image.open(f) as im:
                        tensors.append(tf(im.convert("RGB")))
                    ok.append(f)
                except (UnidentifiedImageError, OSError) as e:
                    results.append({"file": str(f), "error": f"unreadable image: {e}"})
            if tensors:
                probs = clf.logits(torch.stack(tensors)).float().softmax(1)  # (N, C)
                values, indices = probs.topk(k, dim=1)
                for f, v, i in zip(ok, values.tolist(), indices.tolist(), strict=True):
                    preds = [{"label": clf.classes[j], "prob": round(p, 6)} for p, j in zip(v, i, strict=True)]
                    results.append({"file": str(f), "predictions": preds})
            pbar.update(len(chunk))
    return results


def render_table(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        if "error" in r:
            lines.append(f"{r['file']}: {r['error']}")
            continue
        preds = "  ".join(f"{p['label']} {100 * p['prob']:.1f}%" for p in r["predictions"])
        lines.append(f"{r['file']}: {preds}")
    return "\n".join(lines)


def render_csv(results: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "rank", "label", "prob"])
    for r in results:
        for rank, p in enumerate(r.get("predictions", []), 1):
            w.writerow([r["file"], rank, p["label"], p["prob"]])
    return buf.getvalue().rstrip("\n")
