"""`dlbox face compare` (the distance matrix of a few photos), `enroll` (a gallery) and `identify` (one to many)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dlbox.base.errors import UserError
from dlbox.base.fileio import atomic_write
from dlbox.tasks.face.faces import default_align, expand_inputs, face_crops, save_npz
from dlbox.tasks.face.inference import load_embedder

UNKNOWN = "unknown"


def compare(inputs: list[str], source: str, model: str | None = None, aligned: bool = False, align: str | None = None,
            threshold: float | None = None, heatmap: str | None = None, flip: bool = False) -> dict[str, Any]:  # fmt: skip
    """Distances between the largest face of every image, same/different per pair at the model's threshold."""
    emb = load_embedder(source, model, threshold)
    files = expand_inputs(inputs)
    if len(files) < 2:
        raise UserError("compare needs at least 2 images", "e.g. dlbox face compare a1.jpg a2.jpg b1.jpg")
    crops, ok, _ = face_crops(files, align or default_align(emb), aligned, strict=True)
    vecs = emb.embed_images(crops, flip=flip)
    dist = np.linalg.norm(vecs[:, None] - vecs[None], axis=2)  # (N, N)
    names = [str(f) for f in ok]
    pairs = [{"a": names[i], "b": names[j], "distance": float(dist[i, j]), "same": bool(dist[i, j] < emb.threshold)}
             for i in range(len(names)) for j in range(i + 1, len(names))]  # fmt: skip
    result = {"files": names, "distances": dist.round(4).tolist(), "threshold": emb.threshold, "pairs": pairs}
    if heatmap:
        atomic_write(heatmap, lambda tmp: heatmap_image(dist, crops).save(tmp, format="PNG"))
        result["heatmap"] = str(heatmap)
    return result


def render_compare(r: dict[str, Any]) -> str:
    short = [Path(f).name for f in r["files"]]
    w = max(8, *(len(s) for s in short))
    lines = [" " * w + " " + " ".join(f"{s[:8]:>8}" for s in short)]
    for s, row in zip(short, r["distances"], strict=True):
        lines.append(f"{s:<{w}} " + " ".join(f"{d:>8.4f}" for d in row))
    lines.append(f"\nsame person when distance < {r['threshold']:.4f}:")
    for p in r["pairs"]:
        lines.append(f"  {Path(p['a']).name} - {Path(p['b']).name}: {p['distance']:.4f} {'same' if p['same'] else 'different'}")
    if r.get("heatmap"):
        lines.append(f"heatmap: {r['heatmap']}")
    return "\n".join(lines)


def heatmap_image(dist: np.ndarray, crops: list[Image.Image], cell: int = 64) -> Image.Image:
    """The distance matrix as coloured cells with their values, the face crops along both axes."""
    from PIL import ImageDraw

    n = len(crops)
    img = Image.new("RGB", ((n + 1) * cell, (n + 1) * cell), "white")
    d = ImageDraw.Draw(img)
    hi = max(float(dist.max()), 1e-6)
    for k, c in enumerate(crops):
        thumb = c.convert("RGB").resize((cell - 4, cell - 4))
        img.paste(thumb, ((k + 1) * cell + 2, 2))
        img.paste(thumb, (2, (k + 1) * cell + 2))
    for i in range(n):
        for j in range(n):
            v = float(dist[i, j]) / hi  # 0 (same face) dark blue -> far yellow
            colour = (int(255 * v), int(60 + 160 * v), int(160 * (1 - v)))
            x, y = (j + 1) * cell, (i + 1) * cell
            d.rectangle([x, y, x + cell - 1, y + cell - 1], fill=colour)
            d.text((x + 8, y + cell // 2 - 5), f"{dist[i, j]:.2f}", fill="white" if v < 0.6 else "black")
    return img


def enroll(gallery_dir: str, out: str, source: str, model: str | None = None, aligned: bool = False,
           align: str | None = None, flip: bool = False) -> dict[str, Any]:  # fmt: skip
    """One folder per person -> the mean unit embedding of each person's photos, saved with the model source."""
    from dlbox.data.folders import report_skipped, scan_class_folders

    emb = load_embedder(source, model)
    scan = scan_class_folders(gallery_dir, min_classes=1)
    report_skipped(scan.skipped)
    crops, ok, skipped = face_crops([Path(f) for f, _ in scan.samples], align or default_align(emb), aligned)
    label_of = {f: lbl for f, lbl in scan.samples}
    vecs = emb.embed_images(crops, flip=flip)
    labels = np.array([label_of[str(f)] for f in ok])
    names, centres, counts = [], [], []
    for lbl, name in enumerate(scan.classes):
        rows = vecs[labels == lbl] if len(ok) else np.zeros((0, 1))
        if not len(rows):
            continue  # every photo of this person was skipped (reported above)
        c = rows.mean(0)
        names.append(name)
        centres.append(c / np.linalg.norm(c))
        counts.append(len(rows))
    if not names:
        raise UserError(f"no usable face in {gallery_dir}", "one folder per person with photos of their face")
    save_npz(out, names=np.array(names), embeddings=np.stack(centres).astype(np.float32), photos=np.array(counts),
             source=np.array(str(source)), model=np.array(model or ""), aligned=np.array(aligned),
             align=np.array(align or ""), flip=np.array(flip))  # fmt: skip
    missing = [n for n in scan.classes if n not in names]
    return {"out": str(out), "people": len(names), "photos": int(sum(counts)), "skipped": skipped, "not_enrolled": missing}


GALLERY_KEYS = ("names", "embeddings", "source", "model", "aligned", "align", "flip")
ENROLL = "create one with `dlbox face enroll GALLERY_DIR --out gallery.npz`"


def load_gallery(path: str) -> dict[str, Any]:
    """A gallery written by ``enroll``, checked: a truncated or foreign file, missing keys or embeddings that are
    not one finite vector per name are one line naming the file."""
    import zipfile

    p = Path(path)
    if p.is_dir():
        raise UserError(f"gallery {path!r} is a folder, not a .npz file", ENROLL)
    if not p.is_file():
        raise UserError(f"gallery {path!r} does not exist", ENROLL)
    try:
        with np.load(p, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("a single array, not an .npz archive")
            g = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, TypeError, AttributeError) as e:
        why = "it is empty" if p.stat().st_size == 0 else (str(e).splitlines() or [type(e).__name__])[0][:100]
        raise UserError(f"gallery {path!r} is truncated or not an .npz gallery ({why})", ENROLL) from None
    missing = [k for k in GALLERY_KEYS if k not in g]
    if missing:
        raise UserError(f"gallery {path!r} is not a gallery written by `dlbox face enroll` (no {', '.join(missing)})",
                        ENROLL)  # fmt: skip
    emb, names = g["embeddings"], g["names"]
    if emb.ndim != 2 or names.ndim != 1 or len(emb) != len(names) or not len(names):
        raise UserError(f"gallery {path!r} is damaged: {emb.shape} embeddings for {names.shape} names", ENROLL)
    if not np.issubdtype(emb.dtype, np.floating) or not np.isfinite(emb).all():
        raise UserError(f"gallery {path!r} is damaged: its embeddings are not finite numbers", ENROLL)
    return g


def identify(gallery: str, inputs: list[str], source: str | None = None, threshold: float | None = None,
             aligned: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """The nearest enrolled person for the largest face of each image; "unknown" beyond the threshold."""
    g = load_gallery(gallery)
    src = source or str(g["source"])
    emb = load_embedder(src, str(g["model"]) or None, threshold)
    is_aligned = bool(g["aligned"]) if aligned is None else aligned
    files = expand_inputs(inputs)
    crops, ok, skipped = face_crops(files, str(g["align"]) or default_align(emb), is_aligned)
    vecs = emb.embed_images(crops, flip=bool(g["flip"]))
    if len(vecs) and vecs.shape[1] != g["embeddings"].shape[1]:
        raise UserError(f"gallery {gallery!r} holds {g['embeddings'].shape[1]}-dim embeddings, the model {src} "
                        f"makes {vecs.shape[1]}-dim ones (enrolled with another embedder)",
                        f"identify with the weights it was enrolled with, or enroll again with --weights {src}")  # fmt: skip
    results = []
    for f, v in zip(ok, vecs, strict=True):
        d = np.linalg.norm(g["embeddings"] - v[None], axis=1)
        k = int(np.argmin(d))
        known = bool(d[k] < emb.threshold)
        results.append({"file": str(f), "person": str(g["names"][k]) if known else UNKNOWN,
                        "nearest": str(g["names"][k]), "distance": float(d[k])})  # fmt: skip
    return {"results": results, "threshold": emb.threshold, "skipped": skipped}


def render_identify(r: dict[str, Any]) -> str:
    lines = [f"{x['file']}: {x['person']} (distance {x['distance']:.4f}"
             + (f"; nearest {x['nearest']})" if x["person"] == UNKNOWN else ")") for x in r["results"]]  # fmt: skip
    lines += [f"{s['file']}: skipped ({s['error']})" for s in r["skipped"]]
    lines.append(f"threshold {r['threshold']:.4f}")
    return "\n".join(lines)
