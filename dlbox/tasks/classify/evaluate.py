"""`dlbox classify evaluate`: precision@1, recall@5, per-class precision/recall/F1, confusion matrix, misses."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from dlbox.base.errors import UserError
from dlbox.base.fileio import atomic_write, atomic_write_text
from dlbox.base.progress import bar
from dlbox.tasks.classify.inference import load_classifier


def _dataset(data: str, split: str, val_split: float, seed: int):
    """The images of ``split``; "val" is the split training used (same fraction and seed)."""
    from dlbox.data.images import load_image_splits

    if split == "all":
        train, _, classes = load_image_splits(data, val_split=0.0, seed=seed)
        return train, classes
    train, val, classes = load_image_splits(data, val_split=val_split or 0.1, seed=seed)
    if split == "train":
        return train, classes
    if val is None:
        raise UserError(f"{data} has no validation split", "use --split all to evaluate on every image")
    return val, classes


def _training_split(source: str) -> tuple[float, int]:
    """val_split and seed of the run that made ``source`` (so "val" means the same images), else defaults."""
    from dlbox.engine import checkpoint

    try:
        cfg = checkpoint.saved_config(source)
        return float(cfg.get("val_split", 0.1)), int(cfg.get("seed", 0))
    except UserError:
        return 0.1, 0


def evaluate(
    source: str, data: str, split: str = "val", out_dir: str | None = None, batch_size: int = 64,
    model_name: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Evaluate a trained classifier on ``data``; writes confusion matrix (CSV, PNG) and misclassified.csv."""
    clf = load_classifier(source, model_name)
    ds, data_classes = _dataset(data, split, *_training_split(source))
    unknown = [c for c in data_classes if c not in clf.classes]
    if unknown:
        raise UserError(f"classes {unknown[:5]} in {data} are unknown to the model", f"the model knows {clf.classes[:10]}")
    remap = torch.tensor([clf.classes.index(c) for c in data_classes])  # data label -> model label
    ds.transform = clf.transform()
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    k = min(5, len(clf.classes))
    labels, top = [], []
    probs_top1 = []
    with bar(len(loader), "evaluate", unit="batch") as pbar:
        for x, y in loader:
            logits = clf.logits(x)  # (N, C)
            p = logits.float().softmax(1)
            topk = p.topk(k, dim=1)
            labels.append(remap[y])
            top.append(topk.indices)
            probs_top1.append(topk.values[:, 0])
            pbar.update(1)
    y_true = torch.cat(labels).numpy()
    topk_idx = torch.cat(top).numpy()  # (N, k)
    y_pred = topk_idx[:, 0]
    n_cls = len(clf.classes)
    cm = np.zeros((n_cls, n_cls), dtype=np.int64)  # rows: true, columns: predicted
    np.add.at(cm, (y_true, y_pred), 1)
    per_class = {}
    for i, name in enumerate(clf.classes):
        tp, support, predicted = cm[i, i], cm[i].sum(), cm[:, i].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": int(support)}
    files = [str(s[0]) for s in ds.samples]
    conf = torch.cat(probs_top1).numpy()
    misses = [
        {"file": files[i], "true": clf.classes[y_true[i]], "predicted": clf.classes[y_pred[i]], "prob": float(conf[i])}
        for i in np.nonzero(y_pred != y_true)[0]
    ]
    out = Path(out_dir) if out_dir else _default_out(source, split)
    out.mkdir(parents=True, exist_ok=True)
    _write_confusion(cm, clf.classes, out)
    _write_misses(misses, out / "misclassified.csv")
    return {
        "top1": float((y_pred == y_true).mean()),
        "top5": float((topk_idx == y_true[:, None]).any(1).mean()),
        "k": k,
        "images": int(len(y_true)),
        "per_class": per_class,
        "misclassified": misses,
        "confusion_matrix": cm.tolist(),
        "classes": clf.classes,
        "out_dir": str(out),
    }


def _default_out(source: str, split: str) -> Path:
    p = Path(source)
    run = p if p.is_dir() else p.parent.parent if p.parent.name == "checkpoints" else p.parent
    return run / f"eval-{split}"


def _write_confusion(cm: np.ndarray, classes: list[str], out: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["true \\ predicted", *classes])
    for name, row in zip(classes, cm, strict=True):
        w.writerow([name, *row.tolist()])
    atomic_write_text(out / "confusion_matrix.csv", buf.getvalue())
    atomic_write(out / "confusion_matrix.png", lambda tmp: confusion_image(cm, classes).save(tmp, format="PNG"))


def confusion_image(cm: np.ndarray, classes: list[str], cell: int = 28):
    """A heat map with counts, drawn with PIL's built-in font (no font downloads, works offline)."""
    from PIL import Image, ImageDraw, ImageFont

    n = len(classes)
    margin = 8 + 7 * min(max((len(c) for c in classes), default=1), 16)
    img = Image.new("RGB", (margin + n * cell + 4, margin + n * cell + 4), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    row_max = cm.sum(1, keepdims=True).clip(min=1)
    for i in range(n):
        draw.text((2, margin + i * cell + cell // 3), classes[i][:16], fill="black", font=font)
        draw.text((margin + i * cell + 2, 2 + (i % 2) * 10), classes[i][:4], fill="black", font=font)
        for j in range(n):
            v = cm[i, j] / row_max[i, 0]
            shade = int(255 * (1 - v))
            x0, y0 = margin + j * cell, margin + i * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=(shade, shade, 255))
            draw.text((x0 + 3, y0 + cell // 3), str(cm[i, j]), fill="white" if v > 0.5 else "black", font=font)
    return img


def _write_misses(misses: list[dict], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["file", "true", "predicted", "prob"])
    w.writeheader()
    w.writerows(misses)
    atomic_write_text(path, buf.getvalue())


def render(r: dict[str, Any]) -> str:
    lines = [f"images {r['images']}   precision@1 {100 * r['top1']:.2f}%   recall@{r['k']} {100 * r['top5']:.2f}%", ""]
    width = max(len(c) for c in r["classes"])
    lines.append(f"{'class'.ljust(width)}  precision  recall  f1      support")
    for name, m in r["per_class"].items():
        lines.append(f"{name.ljust(width)}  {m['precision']:.3f}      {m['recall']:.3f}   {m['f1']:.3f}   {m['support']}")
    lines.append(f"\nmisclassified: {len(r['misclassified'])} (listed in {r['out_dir']}/misclassified.csv)")
    lines.append(f"confusion matrix: {r['out_dir']}/confusion_matrix.csv and .png")
    return "\n".join(lines)

