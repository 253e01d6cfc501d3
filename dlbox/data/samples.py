"""Embedded sample data, offline: scikit-learn's digits as class folders, and generated shapes.

`dlbox data sample digits|shapes|shapes-det --out DIR`. Everything is seeded: the same seed gives the same
files, byte for byte. digits and shapes are written into a temporary sibling folder that replaces ``out``
in one rename when complete, so an interrupted run leaves no half-written sample behind and writing again
(a smaller ``n_per_class``, fewer classes) leaves no stale files. A folder that is not empty and was not
written by this module is never replaced.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from dlbox.base.errors import UserError
from dlbox.base.progress import bar

SHAPES = ("circle", "triangle", "cross", "star", "square")  # the first n are used; the most distinct first
MARKER = ".dlbox-sample.json"  # hidden, so class-folder scanning ignores it


def _into_folder(out: Path, name: str, write: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Run ``write(tmp_dir)`` and move the result to ``out`` in one rename (see the module docstring)."""
    if out.exists() and not (out / MARKER).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{str(out)!r} already exists and is not a dlbox sample folder",
                        "choose another --out, or remove it first")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        result = write(tmp)
        (tmp / MARKER).write_text(json.dumps({"sample": name, **{k: v for k, v in result.items() if k != "out"}}) + "\n")
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            out.rename(old / "x")
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**result, "out": str(out)}


def write_digits(out: Path, seed: int = 0, size: int = 32) -> dict[str, Any]:
    """The 1,797 real 8x8 scans bundled with scikit-learn, as ``out/<digit>/<n>.png`` RGB images of ``size`` px.

    The digits are dark ink on white like a scan; ``seed`` is unused (the data are fixed) but kept for symmetry.
    """
    from sklearn.datasets import load_digits

    if not 8 <= size <= 512:
        raise UserError(f"digits: size must be 8 to 512 px, got {size}")

    def write(tmp: Path) -> dict[str, Any]:
        d = load_digits()
        counts: dict[str, int] = {}
        with bar(len(d.target), "digits", unit="img") as pbar:
            for i, (img, label) in enumerate(zip(d.images, d.target, strict=True)):
                gray = (255 - img * (255 / 16)).clip(0, 255).astype(np.uint8)  # (8, 8), ink dark
                im = Image.fromarray(gray, "L").resize((size, size), Image.BILINEAR).convert("RGB")
                (tmp / str(label)).mkdir(exist_ok=True)
                im.save(tmp / str(label) / f"{i:04d}.png", format="PNG")
                counts[str(label)] = counts.get(str(label), 0) + 1
                pbar.update(1)
        return {"name": "digits", "classes": sorted(counts), "images": sum(counts.values()), "per_class": counts}

    return _into_folder(out, "digits", write)


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


# A fixed palette: every colour appears with every shape, so colour says nothing about the class and a
# model must learn the shapes (random RGB colours let a small network memorise images by colour instead).
PALETTE = [(220, 40, 40), (40, 170, 60), (40, 80, 220), (240, 200, 30), (160, 60, 200), (30, 190, 200),
           (245, 245, 245), (25, 25, 25)]  # fmt: skip


def noisy_background(rng: np.random.Generator, w: int, h: int) -> tuple[Image.Image, int]:
    """A palette colour, dimmed or lightened at random, with per-pixel noise. Returns (image, palette index)."""
    k = int(rng.integers(len(PALETTE)))
    base = np.array(PALETTE[k], dtype=float) * rng.uniform(0.6, 1.0) + rng.uniform(0, 60)
    arr = np.clip(base[None, None, :] + rng.normal(0, 12, size=(h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB"), k


def contrasting_color(rng: np.random.Generator, background: int) -> tuple[int, int, int]:
    """A palette colour other than the background's."""
    k = int(rng.integers(len(PALETTE) - 1))
    return PALETTE[k if k < background else k + 1]


def write_shapes(out: Path, seed: int = 0, n_per_class: int = 200, classes: int = 4) -> dict[str, Any]:
    """Shapes on noisy backgrounds, one per image: colour, size, position and rotation vary; 32-64 px."""
    if not 3 <= classes <= len(SHAPES):
        raise UserError(f"shapes: --classes must be 3 to {len(SHAPES)}, got {classes}")
    if n_per_class < 1:
        raise UserError(f"shapes: --n-per-class must be at least 1, got {n_per_class}")
    kinds = SHAPES[:classes]

    def write(tmp: Path) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        for kind in kinds:
            (tmp / kind).mkdir()
        with bar(n_per_class * len(kinds), "shapes", unit="img") as pbar:
            for i in range(n_per_class):
                for kind in kinds:
                    size = int(rng.integers(32, 65))
                    im, bg = noisy_background(rng, size, size)
                    r = size * rng.uniform(0.28, 0.4)
                    cx, cy = size / 2 + rng.uniform(-0.12, 0.12, size=2) * size  # near the centre, like a photo subject
                    draw_shape(ImageDraw.Draw(im), kind, cx, cy, r, rng.uniform(-0.45, 0.45), contrasting_color(rng, bg))
                    im.save(tmp / kind / f"{i:04d}.png", format="PNG")
                    pbar.update(1)
        return {"name": "shapes", "classes": sorted(kinds), "images": n_per_class * len(kinds),
                "per_class": {k: n_per_class for k in sorted(kinds)}, "seed": seed}  # fmt: skip

    return _into_folder(out, "shapes", write)


def _shapes_det(out: Path, seed: int = 0, **kw) -> dict[str, Any]:
    try:
        from dlbox.data.shapes_det import write_shapes_det
    except ImportError:
        raise UserError("the shapes-det sample is not available yet", "use digits or shapes") from None
    # like shapes: a folder of other files is refused, and an interrupted run leaves nothing half-written
    # (images and annotations appear together, in one rename)
    return _into_folder(out, "shapes-det", lambda tmp: write_shapes_det(tmp, seed=seed, **kw))


SAMPLES: dict[str, Callable[..., dict[str, Any]]] = {"digits": write_digits, "shapes": write_shapes, "shapes-det": _shapes_det}
# Options each sample takes (None: the detection helper's writer checks its own).
OPTIONS: dict[str, set[str] | None] = {"digits": {"size"}, "shapes": {"n_per_class", "classes"}, "shapes-det": None}


def write_sample(name: str, out: str | Path, seed: int = 0, **kw) -> dict[str, Any]:
    """Write sample ``name`` to ``out``; returns a summary (out, classes, images, per_class, ...).

    Options: digits ``size`` (px, default 32); shapes ``n_per_class`` (default 200), ``classes`` (3-5,
    default 4); shapes-det: see ``dlbox.data.shapes_det.write_shapes_det``.
    """
    from dlbox.base.errors import close_matches

    if name not in SAMPLES:
        raise UserError(f"unknown sample {name!r}", close_matches(name, SAMPLES) or f"one of {', '.join(SAMPLES)}")
    kw = {k: v for k, v in kw.items() if v is not None}
    allowed = OPTIONS[name]
    extra = sorted(set(kw) - allowed) if allowed is not None else []
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise UserError(f"sample {name!r} takes no {flags}", f"its options: {', '.join('--' + k.replace('_', '-') for k in sorted(allowed or [])) or 'none'}")
    return SAMPLES[name](Path(out), seed=seed, **kw)
