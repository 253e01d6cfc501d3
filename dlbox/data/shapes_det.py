"""The `shapes-det` sample: generated detection data, offline, written as COCO with a train/val/test split.

Several shapes per image (3-5 classes), 8-64 px on 128-256 px images, on noisy coloured backgrounds, placed
at random and allowed to overlap: a later shape may hide up to ``max_occlusion`` of an earlier one. Boxes
are tight around the *visible* pixels (COCO's convention), measured from the rendered masks, not computed
from the geometry, so an occluded shape gets the box of what can be seen.

Layout: ``out/images/000000.png ...`` and ``out/annotations/{train,val,test}.json``. Seeded: the same seed
gives the same files byte for byte.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from dlbox.base.errors import UserError
from dlbox.base.fileio import atomic_write
from dlbox.base.progress import bar
from dlbox.data import coco

# The first ``classes`` are used: the most distinct outlines first (a small rotated square looks like a circle).
CLASSES = ("circle", "triangle", "cross", "star", "square")
# Backgrounds and shapes share one palette, so colour tells nothing about the class.
PALETTE = [(220, 40, 40), (40, 170, 60), (40, 80, 220), (240, 200, 30), (160, 60, 200), (30, 190, 200),
           (245, 245, 245), (25, 25, 25)]  # fmt: skip


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if kind == "square":
        pts = [(-r, -r), (r, -r), (r, r), (-r, r)]
        pts = [(x * 0.8, y * 0.8) for x, y in pts]  # the same visual size as a circle of radius r
    elif kind == "triangle":
        pts = [(r * math.cos(a), r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    elif kind == "star":
        pts = [((r if k % 2 == 0 else 0.45 * r) * math.cos(-math.pi / 2 + k * math.pi / 5),
                (r if k % 2 == 0 else 0.45 * r) * math.sin(-math.pi / 2 + k * math.pi / 5)) for k in range(10)]  # fmt: skip
    elif kind == "cross":
        w = 0.35 * r
        pts = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w)]
    else:
        raise ValueError(kind)
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]


def shape_mask(kind: str, w: int, h: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """(h, w) bool: the pixels the shape covers."""
    m = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(m)
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    else:
        d.polygon(_polygon(kind, cx, cy, r, angle), fill=255)
    return np.asarray(m) > 127


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of the True pixels (pixel edges: a single pixel at (3, 4) is (3, 4, 1, 1))."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def render_scene(rng: np.random.Generator, kinds: tuple[str, ...], size_range=(128, 256), obj_range=(8, 64),
                 objects=(2, 6), max_occlusion: float = 0.5) -> tuple[Image.Image, list[dict[str, Any]]]:
    """One image and its objects ``[{"kind", "bbox": [x, y, w, h], "occluded": fraction}]``."""
    W, H = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, size=2))
    bg = int(rng.integers(len(PALETTE)))
    base = np.array(PALETTE[bg], float) * rng.uniform(0.6, 1.0) + rng.uniform(0, 50)
    canvas = np.broadcast_to(base, (H, W, 3)).copy()  # (H, W, 3) float
    owner = np.full((H, W), -1, dtype=np.int32)  # which object is on top at each pixel
    full_area: list[int] = []
    placed: list[dict[str, Any]] = []
    for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
        for _attempt in range(30):
            kind = kinds[int(rng.integers(len(kinds)))]
            r = rng.uniform(obj_range[0], obj_range[1]) / 2
            cx, cy = rng.uniform(r * 0.5, W - r * 0.5), rng.uniform(r * 0.5, H - r * 0.5)
            mask = shape_mask(kind, W, H, cx, cy, r, rng.uniform(0, 2 * math.pi))
            box = _tight_box(mask)
            if box is None or not obj_range[0] <= max(box[2], box[3]) <= obj_range[1]:
                continue
            # Would this hide too much of an earlier object?
            visible = np.bincount(owner[owner >= 0], minlength=len(placed))
            covered = np.bincount(owner[mask & (owner >= 0)], minlength=len(placed))
            if any(visible[j] - covered[j] < (1 - max_occlusion) * full_area[j] for j in range(len(placed))):
                continue
            under = {placed[j]["color"] for j in np.unique(owner[mask]) if j >= 0}
            choices = [k for k in range(len(PALETTE)) if k != bg and k not in under]
            color = choices[int(rng.integers(len(choices)))]
            canvas[mask] = np.array(PALETTE[color], float) * rng.uniform(0.75, 1.0)
            owner[mask] = len(placed)
            full_area.append(int(mask.sum()))
            placed.append({"kind": kind, "color": color})
            break
    canvas += rng.normal(0, 10, size=canvas.shape)
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), "RGB")
    objs = []
    for j, p in enumerate(placed):
        visible = owner == j
        box = _tight_box(visible)
        if box is None:
            continue
        objs.append({"kind": p["kind"], "bbox": list(box), "occluded": round(1 - int(visible.sum()) / full_area[j], 4)})
    return image, objs


def write_shapes_det(out: str | Path, seed: int = 0, n_images: int = 500, classes: int = 3,
                     n_per_class: int | None = None, size_range: tuple[int, int] = (128, 256),
                     obj_range: tuple[int, int] = (8, 64), objects: tuple[int, int] = (2, 6),
                     max_occlusion: float = 0.5, split: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, Any]:
    """Write the sample to ``out``; returns a summary. ``n_per_class`` (the `dlbox data sample` option) asks
    for about that many boxes of each class instead of ``n_images`` images."""
    if not 3 <= classes <= len(CLASSES):
        raise UserError(f"shapes-det: classes must be 3 to {len(CLASSES)}, got {classes}")
    if n_per_class is not None:
        if n_per_class < 1:
            raise UserError(f"shapes-det: --n-per-class must be at least 1, got {n_per_class}")
        n_images = math.ceil(n_per_class * classes / (sum(objects) / 2))
    if n_images < 3:
        raise UserError(f"shapes-det: at least 3 images are needed for a train/val/test split, got {n_images}")
    kinds = CLASSES[:classes]
    out = Path(out)
    rng = np.random.default_rng(seed)
    categories = [{"id": i + 1, "name": k, "supercategory": "shape"} for i, k in enumerate(kinds)]
    cat_id = {k: i + 1 for i, k in enumerate(kinds)}
    images, annotations = [], []
    with bar(n_images, "shapes-det", unit="img") as pbar:
        for i in range(n_images):
            im, objs = render_scene(rng, kinds, size_range, obj_range, objects, max_occlusion)
            name = f"{i:06d}.png"
            atomic_write(out / "images" / name, lambda tmp, im=im: im.save(tmp, format="PNG"))
            images.append({"id": i + 1, "file_name": name, "width": im.width, "height": im.height})
            for o in objs:
                x, y, w, h = o["bbox"]
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": cat_id[o["kind"]],
                                    "bbox": [float(x), float(y), float(w), float(h)], "area": float(w * h),
                                    "iscrowd": 0, "occluded": o["occluded"]})  # fmt: skip
            pbar.update(1)
    data = {"info": {"description": "dlbox shapes-det sample", "seed": seed}, "licenses": [],
            "images": images, "annotations": annotations, "categories": categories}  # fmt: skip
    parts = coco.split(data, *split, seed=seed)
    for name, part in parts.items():
        coco.save(part, out / "annotations" / f"{name}.json")
    per_class = {k: sum(1 for a in annotations if a["category_id"] == cat_id[k]) for k in kinds}
    return {
        "name": "shapes-det", "out": str(out), "classes": list(kinds), "images": len(images),
        "annotations": len(annotations), "per_class": per_class,
        "splits": {name: len(part["images"]) for name, part in parts.items()},
        "occluded": sum(1 for a in annotations if a["occluded"] > 0),
    }  # fmt: skip
