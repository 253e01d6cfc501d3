"""Embedded sample data, offline: scikit-learn's digits as class folders, and generated shapes.

`dlbox data sample digits|shapes|shapes-det --out DIR`. Everything is seeded: the same seed gives the same
files, byte for byte.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from dlbox.engine.fileio import atomic_write
from dlbox.engine.progress import bar
from dlbox.errors import UserError

SHAPES = ("circle", "square", "triangle", "star", "cross")


def _save_png(im: Image.Image, path: Path) -> None:
    atomic_write(path, lambda tmp: im.save(tmp, format="PNG"))


def write_digits(out: Path, seed: int = 0, size: int = 32) -> dict[str, Any]:
    """The 1,797 real 8x8 scans bundled with scikit-learn, as ``out/<digit>/<n>.png`` RGB images of ``size`` px.

    The digits are dark ink on white like a scan; ``seed`` is unused (the data are fixed) but kept for symmetry.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    counts: dict[str, int] = {}
    with bar(len(d.target), "digits", unit="img") as pbar:
        for i, (img, label) in enumerate(zip(d.images, d.target, strict=True)):
            gray = (255 - img * (255 / 16)).clip(0, 255).astype(np.uint8)  # (8, 8), ink dark
            im = Image.fromarray(gray, "L").resize((size, size), Image.BILINEAR).convert("RGB")
            _save_png(im, out / str(label) / f"{i:04d}.png")
            counts[str(label)] = counts.get(str(label), 0) + 1
            pbar.update(1)
    return {"name": "digits", "out": str(out), "classes": sorted(counts), "images": sum(counts.values()), "per_class": counts}


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    def rot(points):
        c, s = math.cos(angle), math.sin(angle)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]

    if kind == "square":
        return rot([(-r, -r), (r, -r), (r, r), (-r, r)])
    if kind == "triangle":
        return rot([(r * math.cos(a), r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)])
    if kind == "star":
        pts = []
        for k in range(10):
            rr = r if k % 2 == 0 else r * 0.45
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((rr * math.cos(a), rr * math.sin(a)))
        return rot(pts)
    if kind == "cross":
        w = r * 0.35
        return rot([(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w)])
    raise ValueError(kind)


def draw_shape(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, angle: float, color) -> None:
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    else:
        draw.polygon(_polygon(kind, cx, cy, r, angle), fill=color)


def noisy_background(rng: np.random.Generator, w: int, h: int) -> tuple[Image.Image, np.ndarray]:
    base = rng.integers(0, 256, size=3)
    noise = rng.normal(0, 18, size=(h, w, 3))
    arr = np.clip(base[None, None, :] + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB"), base


def contrasting_color(rng: np.random.Generator, background: np.ndarray) -> tuple[int, int, int]:
    """A random colour at least ~100 away from the background (so the shape is visible)."""
    for _ in range(100):
        c = rng.integers(0, 256, size=3)
        if np.abs(c - background).sum() > 200:
            return tuple(int(v) for v in c)
    return tuple(int(255 - v) for v in background)


def write_shapes(out: Path, seed: int = 0, n_per_class: int = 200, classes: int = 4) -> dict[str, Any]:
    """Shapes on noisy backgrounds, one per image: colour, size, position and rotation vary; 32-64 px."""
    if not 3 <= classes <= len(SHAPES):
        raise UserError(f"shapes: --classes must be 3 to {len(SHAPES)}, got {classes}")
    if n_per_class < 1:
        raise UserError(f"shapes: --n-per-class must be at least 1, got {n_per_class}")
    kinds = SHAPES[:classes]
    rng = np.random.default_rng(seed)
    with bar(n_per_class * len(kinds), "shapes", unit="img") as pbar:
        for i in range(n_per_class):
            for kind in kinds:
                size = int(rng.integers(32, 65))
                im, bg = noisy_background(rng, size, size)
                r = size * rng.uniform(0.26, 0.42)
                cx, cy = rng.uniform(r, size - r, size=2)
                draw_shape(ImageDraw.Draw(im), kind, cx, cy, r, rng.uniform(0, 2 * math.pi), contrasting_color(rng, bg))
                _save_png(im, out / kind / f"{i:04d}.png")
                pbar.update(1)
    return {"name": "shapes", "out": str(out), "classes": sorted(kinds), "images": n_per_class * len(kinds),
            "per_class": {k: n_per_class for k in sorted(kinds)}}  # fmt: skip


def _shapes_det(out: Path, seed: int = 0, **kw) -> dict[str, Any]:
    try:
        from dlbox.data.shapes_det import write_shapes_det
    except ImportError:
        raise UserError("the shapes-det sample is not available in this version", "update dlbox") from None
    return write_shapes_det(out, seed=seed, **kw)


SAMPLES = {"digits": write_digits, "shapes": write_shapes, "shapes-det": _shapes_det}


def write_sample(name: str, out: str | Path, seed: int = 0, **kw) -> dict[str, Any]:
    if name not in SAMPLES:
        from dlbox.errors import close_matches

        raise UserError(f"unknown sample {name!r}", close_matches(name, SAMPLES) or f"one of {', '.join(SAMPLES)}")
    return SAMPLES[name](Path(out), seed=seed, **kw)
