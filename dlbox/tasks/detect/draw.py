"""Boxes with labels drawn on images, with PIL's built-in bitmap font (no font files, nothing fetched)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLORS = [(255, 56, 56), (56, 200, 56), (56, 120, 255), (255, 178, 29), (207, 56, 255), (0, 212, 212),
          (255, 112, 31), (146, 204, 23), (255, 55, 199), (52, 69, 147)]  # fmt: skip


def _font():
    # Pillow >= 10.1: load_default() may return a scalable font; the bitmap one is always built in.
    loader = getattr(ImageFont, "load_default_imagefont", None)
    return loader() if loader else ImageFont.load_default()


def color_of(label: str, classes: Sequence[str] | None = None) -> tuple[int, int, int]:
    i = list(classes).index(label) if classes and label in classes else sum(map(ord, label))
    return COLORS[i % len(COLORS)]


def draw_detections(image: Image.Image, boxes: np.ndarray, scores: np.ndarray, labels: Sequence[str],
                    classes: Sequence[str] | None = None, width: int | None = None) -> Image.Image:
    """A copy of ``image`` with each box (K, 4) xyxy outlined and tagged 'label 0.93'."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    font = _font()
    width = width or max(1, round(max(out.size) / 300))
    for (x1, y1, x2, y2), score, label in zip(np.asarray(boxes).tolist(), np.asarray(scores).tolist(), labels, strict=True):
        color = color_of(label, classes)
        draw.rectangle([x1, y1, x2, y2], outline=color, width=width)
        text = f"{label} {score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left, bottom - top
        ty = y1 - th - 2 if y1 - th - 2 >= 0 else y1  # above the box, or inside it at the top edge
        draw.rectangle([x1, ty, x1 + tw + 3, ty + th + 2], fill=color)
        draw.text((x1 + 2, ty + 1 - top), text, fill=(255, 255, 255), font=font)
    return out
