"""Procedural identities for offline tests and the notebook: drawn faces, one folder per person.

Each identity is a random set of facial traits (face shape and skin tone, hair colour and style, eye spacing,
size and colour, brows, nose, mouth, glasses, beard); each photo of it adds jitter a verification model must
ignore (rotation, scale, shift, lighting, background, expression, noise). No real face is involved and
nothing is downloaded.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from dlbox.base.fileio import atomic_write


def _identity(rng: np.random.Generator) -> dict:
    return {
        "skin": rng.uniform(90, 235, 3) * np.array([1.0, 0.85, 0.7]),
        "face_w": rng.uniform(0.50, 0.70), "face_h": rng.uniform(0.68, 0.88),
        "hair": rng.uniform(0, 255, 3), "hair_h": rng.uniform(0.05, 0.30), "hair_side": rng.uniform(0, 0.12),
        "eye_dx": rng.uniform(0.12, 0.22), "eye_y": rng.uniform(-0.12, 0.02), "eye_r": rng.uniform(0.035, 0.075),
        "iris": rng.uniform(0, 200, 3), "brow_tilt": rng.uniform(-0.06, 0.06), "brow_w": rng.uniform(0.01, 0.04),
        "nose_len": rng.uniform(0.06, 0.18), "nose_w": rng.uniform(0.03, 0.09),
        "mouth_w": rng.uniform(0.10, 0.26), "mouth_y": rng.uniform(0.20, 0.32), "lip": rng.uniform(60, 220, 3),
        "glasses": bool(rng.random() < 0.3), "beard": bool(rng.random() < 0.25),
    }  # fmt: skip


def draw_face(ident: dict, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """One photo of ``ident``: drawn at 4x and downsampled (anti-aliased), size x size RGB."""
    s = size * 4
    bg = tuple(int(v) for v in rng.uniform(60, 200) + rng.uniform(-20, 20, 3))  # greyish, varying
    img = Image.new("RGB", (s, s), bg)
    d = ImageDraw.Draw(img)
    light = rng.uniform(0.8, 1.2)

    def col(c, k=1.0):
        return tuple(int(np.clip(v * light * k, 0, 255)) for v in c)

    cx, cy = s / 2, s * 0.54
    fw, fh = ident["face_w"] * s / 2, ident["face_h"] * s / 2
    hair_top = cy - fh - ident["hair_h"] * s
    side = ident["hair_side"] * s
    d.ellipse([cx - fw - side, hair_top, cx + fw + side, cy + fh * 0.2], fill=col(ident["hair"]))
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=col(ident["skin"]))
    if ident["beard"]:
        d.chord([cx - fw, cy - fh * 0.1, cx + fw, cy + fh], 20, 160, fill=col(ident["hair"], 0.8))
    ey = cy + ident["eye_y"] * s
    er = ident["eye_r"] * s
    for sign in (-1, 1):
        ex = cx + sign * ident["eye_dx"] * s
        d.ellipse([ex - er, ey - er * 0.7, ex + er, ey + er * 0.7], fill=(245, 245, 245))
        d.ellipse([ex - er * 0.5, ey - er * 0.5, ex + er * 0.5, ey + er * 0.5], fill=col(ident["iris"]))
        by = ey - er * 1.6
        tilt = sign * ident["brow_tilt"] * s
        d.line([ex - er * 1.2, by + tilt, ex + er * 1.2, by - tilt], fill=col(ident["hair"], 0.7),
               width=max(1, int(ident["brow_w"] * s)))  # fmt: skip
        if ident["glasses"]:
            d.ellipse([ex - er * 1.7, ey - er * 1.4, ex + er * 1.7, ey + er * 1.4], outline=(20, 20, 20), width=max(1, s // 60))
    nl, nw = ident["nose_len"] * s, ident["nose_w"] * s
    d.polygon([(cx, ey + er), (cx - nw, ey + er + nl), (cx + nw, ey + er + nl)], fill=col(ident["skin"], 0.8))
    my, mw = cy + ident["mouth_y"] * s, ident["mouth_w"] * s
    smile = rng.uniform(-0.02, 0.05) * s  # expression varies from photo to photo
    d.chord([cx - mw, my - abs(smile) - 2, cx + mw, my + abs(smile) + s * 0.03], 0 if smile >= 0 else 180,
            180 if smile >= 0 else 360, fill=col(ident["lip"]))  # fmt: skip
    # Pose and framing jitter, then the camera: blur, downsampling, sensor noise.
    img = img.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BILINEAR, fillcolor=bg)
    zoom = rng.uniform(0.9, 1.1)
    crop = s / zoom
    ox, oy = rng.uniform(-0.05, 0.05, 2) * s
    left, top = (s - crop) / 2 + ox, (s - crop) / 2 + oy
    img = img.crop((int(left), int(top), int(left + crop), int(top + crop))).filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.5)))
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def make_identities(out: str | Path, identities: int = 20, photos: int = 8, size: int = 64, seed: int = 0,
                    prefix: str = "person") -> Path:  # fmt: skip
    """``out/<prefix>_NNN/NN.png``: ``identities`` folders of ``photos`` drawn photos each."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    width = max(3, int(math.log10(max(identities, 1))) + 1)
    for i in range(identities):
        ident = _identity(rng)
        folder = out / f"{prefix}_{i:0{width}d}"
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(photos):
            im = draw_face(ident, rng, size)
            atomic_write(folder / f"{j:02d}.png", lambda tmp, im=im: im.save(tmp, format="PNG"))
    return out
