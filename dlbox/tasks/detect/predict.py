"""`dlbox detect predict`: boxes, labels and scores for images, a folder or a glob; optionally drawn."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import torch

from dlbox.base.errors import UserError
from dlbox.base.fileio import atomic_write
from dlbox.base.progress import bar
from dlbox.data.folders import IMAGE_EXTENSIONS
from dlbox.tasks.detect.data import letterbox, read_image, to_tensor
from dlbox.tasks.detect.draw import draw_detections
from dlbox.tasks.detect.inference import (
    SCORE_THRESH,
    Detector,
    load_detector,
    result_row,
    set_inference_threads,
)


def list_images(inputs: list[str]) -> list[Path]:
    """Image files from files, folders (their images, sorted) and quoted globs."""
    out: list[Path] = []
    for spec in inputs:
        p = Path(spec)
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS)
        elif p.is_file():
            out.append(p)
        elif any(ch in spec for ch in "*?["):
            out += sorted(Path(f) for f in glob.glob(spec) if Path(f).suffix.lower().lstrip(".") in IMAGE_EXTENSIONS)
        else:
            raise UserError(f"{spec!r} does not exist", "pass image files, folders or a quoted glob")
    if not out:
        raise UserError(f"no images found in {', '.join(inputs)}", f"image types: {', '.join(sorted(IMAGE_EXTENSIONS))}")
    return out


def predict_image(det: Detector, path: Path, conf: float) -> tuple[dict[str, Any], Any]:
    """(result row, the PIL image); boxes in the original image's pixels."""
    im = read_image(path)
    canvas, scale = letterbox(im, det.img_size)
    found = det.detect(to_tensor(canvas)[None], score_thresh=min(conf, SCORE_THRESH))[0]
    return {"file": str(path), **result_row(det.classes, found, scale, im.width, im.height, conf)}, im


@torch.no_grad()
def predict(source: str, inputs: list[str], conf: float = 0.5, save_images: str | None = None,
            threads: int | None = None) -> list[dict[str, Any]]:
    """Detections per image (box = [x1, y1, x2, y2] in pixels); with ``save_images`` each image is also
    written there (PNG) with its boxes drawn and labelled."""
    if not 0 <= conf <= 1:
        raise UserError(f"--conf must be in [0, 1], got {conf}", "e.g. --conf 0.25")
    set_inference_threads(threads)
    det = load_detector(source, threads=threads)
    files = list_images(inputs)
    rows = []
    with bar(len(files), "predict", unit="img") as pbar:
        for path in files:
            row, im = predict_image(det, path, conf)
            if save_images:
                d = row["detections"]
                drawn = draw_detections(im, [x["box"] for x in d], [x["score"] for x in d], [x["label"] for x in d], det.classes)
                out = Path(save_images) / f"{path.stem}.png"
                atomic_write(out, lambda tmp, drawn=drawn: drawn.save(tmp, format="PNG"))
                row["saved"] = str(out)
            rows.append(row)
            pbar.update(1)
    return rows


def render_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'file':<32} {'label':<16} {'score':>6}  box (x1, y1, x2, y2)"]
    for r in rows:
        name = Path(r["file"]).name
        if not r["detections"]:
            lines.append(f"{name:<32} {'-':<16} {'-':>6}")
        for d in r["detections"]:
            box = ", ".join(f"{v:.1f}" for v in d["box"])
            lines.append(f"{name:<32} {d['label']:<16} {d['score']:>6.3f}  ({box})")
    saved = [r["saved"] for r in rows if r.get("saved")]
    if saved:
        lines.append(f"drew {len(saved)} image(s) into {Path(saved[0]).parent}")
    return "\n".join(lines)
