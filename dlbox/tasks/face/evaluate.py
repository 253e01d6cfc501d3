"""`dlbox face evaluate`: LFW's 10-fold verification protocol, TAR at FAR 1e-3 and 1e-4, a ROC curve.

Pairs come from LFW's ``pairs.txt`` as it is (a header "10 300", then per fold 300 lines ``name n1 n2`` of one
person and 300 lines ``name1 n1 name2 n2`` of two; images at ROOT/name/name_NNNN.jpg), or are drawn balanced and
seeded from identity folders (``--data``). Pairs naming a missing or unreadable file, or an image without a
face, are skipped, counted and listed. The threshold over all pairs is stored with the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dlbox.base.errors import UserError, not_found
from dlbox.base.fileio import atomic_write, atomic_write_text
from dlbox.base.progress import log
from dlbox.tasks.face import metrics


def read_pairs(pairs_file: str | Path, images: str | Path | None = None) -> tuple[list[tuple[str, str, bool]], np.ndarray]:
    """(file_a, file_b, same) per line, and each pair's fold (from the header; else 10 contiguous folds)."""
    pairs_file = Path(pairs_file)
    if not pairs_file.is_file():
        raise UserError(f"pairs file {str(pairs_file)!r} {not_found(pairs_file)}", "pass LFW's pairs.txt (`dlbox hub download lfw`)")
    root = Path(images) if images else pairs_file.parent / "lfw"
    lines = [ln.split() for ln in pairs_file.read_text().splitlines() if ln.strip()]
    header = None
    if lines and len(lines[0]) in (1, 2) and all(t.isdigit() for t in lines[0]):
        header, lines = [int(t) for t in lines[0]], lines[1:]
    pairs = []
    for n, parts in enumerate(lines, start=2 if header else 1):
        if len(parts) == 3:
            a, b, same = (parts[0], parts[1]), (parts[0], parts[2]), True
        elif len(parts) == 4:
            a, b, same = (parts[0], parts[1]), (parts[2], parts[3]), False
        else:
            raise UserError(f"{pairs_file} line {n}: expected 'name n1 n2' or 'name1 n1 name2 n2', got {' '.join(parts)!r}", "use LFW's pairs.txt format")
        try:
            fa, fb = (root / p / f"{p}_{int(k):04d}.jpg" for p, k in (a, b))
        except ValueError:
            raise UserError(f"{pairs_file} line {n}: image numbers must be integers, got {' '.join(parts)!r}", "use LFW's pairs.txt format") from None
        pairs.append((str(fa), str(fb), same))
    if not pairs:
        raise UserError(f"{pairs_file} holds no pairs", "use LFW's pairs.txt (`dlbox hub download lfw`)")
    if header and len(header) == 2 and header[0] * header[1] * 2 == len(pairs):
        folds = np.repeat(np.arange(header[0]), 2 * header[1])  # LFW: fold k = 2 * per_fold lines in a row
    else:
        folds = np.concatenate([np.full(len(c), k) for k, c in enumerate(np.array_split(np.arange(len(pairs)), 10))])
    return pairs, folds


def pairs_from_folders(data: str | Path, n_pairs: int, seed: int) -> tuple[list[tuple[str, str, bool]], np.ndarray, list[str]]:
    from dlbox.tasks.face.data import draw_pairs, scan_identities

    ids = scan_identities(data, min_photos=1)
    labels = [lbl for _, lbl in ids.samples]
    idx = draw_pairs(labels, n_pairs, seed)
    pairs = [(ids.samples[i][0], ids.samples[j][0], same) for i, j, same in idx]
    folds = np.concatenate([np.full(len(c), k) for k, c in enumerate(np.array_split(np.arange(len(pairs)), 10))])
    return pairs, folds, ids.names


def evaluate(source: str, pairs_file: str | None = None, data: str | None = None, images: str | None = None,
             model: str | None = None, aligned: bool = False, align: str | None = None, flip: bool = False,
             n_pairs: int = 6000, seed: int = 0, out: str | None = None) -> dict[str, Any]:  # fmt: skip
    from dlbox.tasks.face.faces import default_align, face_crops
    from dlbox.tasks.face.inference import load_embedder

    if bool(pairs_file) == bool(data):
        raise UserError("pass exactly one of --pairs and --data", "e.g. --pairs lfw/pairs.txt --images lfw/lfw")
    emb = load_embedder(source, model)
    if pairs_file:
        pairs, folds = read_pairs(pairs_file, images)
    else:
        pairs, folds, _ = pairs_from_folders(data, n_pairs, seed)
    files = sorted({f for a, b, _ in pairs for f in (a, b)})
    missing = [f for f in files if not Path(f).is_file()]
    present = [Path(f) for f in files if Path(f).is_file()]
    crops, ok, skipped = face_crops(present, align or default_align(emb), aligned)
    skipped = [{"file": f, "error": "missing file"} for f in missing] + skipped
    vec = dict(zip(map(str, ok), emb.embed_images(crops, flip=flip), strict=True)) if crops else {}
    keep = [k for k, (a, b, _) in enumerate(pairs) if a in vec and b in vec]
    if len(keep) < len(pairs):
        log(f"skipped {len(pairs) - len(keep)} of {len(pairs)} pair(s): {len(skipped)} file(s) missing, unreadable "
            f"or without a face, e.g. {skipped[0]['file']} ({skipped[0]['error']})")  # fmt: skip
    if not keep:
        raise UserError(f"none of the {len(pairs)} pairs has both images usable",
                        "check --images (the folder holding one folder per person)")  # fmt: skip
    a = np.stack([vec[pairs[k][0]] for k in keep])
    b = np.stack([vec[pairs[k][1]] for k in keep])
    dist = np.linalg.norm(a - b, axis=1)
    same = np.array([pairs[k][2] for k in keep])
    if same.all() or not same.any():
        raise UserError("the usable pairs are all of one kind (same or different)", "verification needs both")
    res = metrics.kfold_accuracy(dist, same, folds[keep])
    fpr, tpr, auc = metrics.roc(dist, same)
    out_dir = Path(out) if out else _default_out(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "roc.png", lambda tmp: roc_image(fpr, tpr, auc).save(tmp, format="PNG"))
    result = {
        "source": str(source), "pairs": len(pairs), "pairs_used": len(keep), "skipped_pairs": len(pairs) - len(keep),
        "skipped_files": skipped, "accuracy": res["mean"], "accuracy_std": res["std"],
        "fold_accuracy": res["fold_accuracy"], "fold_threshold": res["fold_threshold"], "threshold": res["threshold"],
        "tar_at_far": [metrics.tar_at_far(dist, same, f) for f in (1e-3, 1e-4)], "auc": auc,
        "roc": str(out_dir / "roc.png"), "out_dir": str(out_dir),
    }  # fmt: skip
    atomic_write_text(out_dir / "metrics.json", json.dumps(result, indent=2))
    if emb.threshold_file:
        # Stored with the model: compare and identify use it from now on.
        atomic_write_text(emb.threshold_file, json.dumps({"threshold": res["threshold"], "accuracy": res["mean"],
                                                          "pairs": len(keep)}, indent=2))  # fmt: skip
        result["threshold_file"] = emb.threshold_file
    return result


def _default_out(source: str) -> Path:
    from dlbox.models.weights import split_scheme

    p = Path(source)
    if p.is_dir():
        return p / "eval"
    scheme, rest = split_scheme(source)  # hub:NAME -> runs/face/eval/NAME
    return Path("runs") / "face" / "eval" / (rest if scheme else p.stem)


def roc_image(fpr: np.ndarray, tpr: np.ndarray, auc: float, size: int = 360):
    """The ROC curve on linear axes, drawn with PIL (no plotting library needed, works offline)."""
    from PIL import Image, ImageDraw

    pad = 40
    img = Image.new("RGB", (size + 2 * pad, size + 2 * pad), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([pad, pad, pad + size, pad + size], outline="black")
    d.line([pad, pad + size, pad + size, pad], fill=(200, 200, 200))  # chance
    pts = [(pad + float(x) * size, pad + size - float(y) * size) for x, y in zip(fpr, tpr, strict=True)]
    d.line(pts, fill=(200, 30, 30), width=2)
    d.text((pad, 10), f"ROC (AUC {auc:.4f})", fill="black")
    d.text((pad + size // 2 - 60, pad + size + 12), "false accept rate", fill="black")
    d.text((4, pad + size // 2), "TAR", fill="black")
    return img


def render(r: dict[str, Any]) -> str:
    lines = [f"{'pairs':<18} {r['pairs_used']} of {r['pairs']} ({r['skipped_pairs']} skipped)",
             f"{'accuracy':<18} {100 * r['accuracy']:.2f}% +- {100 * r['accuracy_std']:.2f} (10 folds)",
             f"{'threshold':<18} {r['threshold']:.4f}" + (f" (stored in {r['threshold_file']})" if r.get("threshold_file") else ""),
             f"{'AUC':<18} {r['auc']:.4f}"]  # fmt: skip
    for t in r["tar_at_far"]:
        note = "" if t["resolved"] else " (too few different pairs to reach this FAR: measured at FAR 0)"
        lines.append(f"{'TAR @ FAR ' + format(t['far_target'], 'g'):<18} {100 * t['tar']:.2f}%{note}")
    lines.append(f"{'ROC curve':<18} {r['roc']}")
    return "\n".join(lines)
