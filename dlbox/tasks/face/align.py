"""Alignment: a similarity transform (rotation, uniform scale, shift) from a face's 5 landmarks to a template.

facenet-pytorch's MTCNN only crops the box; embedders learn better on faces whose eyes and mouth always land
on the same pixels. Templates (x, y per point: left eye, right eye, nose, left and right mouth corners):

- ``arcface112``: the 112x112 template of InsightFace/ArcFace.
- ``facenet160``: the same face geometry in a 160x160 crop with a margin (FaceNet's input), the template scaled
  into the centre (160 - margin) pixels.
- ``box160``: no rotation: the detector's box grown by a margin and resized to 160x160 (what facenet-pytorch's
  ``extract_face`` does, and how its published Inception-ResNet-v1 weights were used).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from dlbox.base.errors import UserError

ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)  # fmt: skip
FACENET_MARGIN = 32  # pixels of the 160 crop around the template's face (davidsandberg/facenet's default)
MODES = ("arcface112", "facenet160", "box160")


def template(mode: str) -> tuple[np.ndarray, int]:
    """(5, 2) template points and the square output size."""
    if mode == "arcface112":
        return ARCFACE_112, 112
    if mode == "facenet160":
        s = (160 - FACENET_MARGIN) / 112
        return ARCFACE_112 * s + FACENET_MARGIN / 2, 160
    raise UserError(f"unknown alignment {mode!r}", f"one of {', '.join(MODES)}")


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 matrix M minimising sum |M [src; 1] - dst|^2 over similarities (Umeyama 1991, no reflection)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1
    rot = u @ np.diag(d) @ vt
    var = (s0**2).sum() / len(src)
    scale = (sig * d).sum() / var if var > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def warp(image: Image.Image, m: np.ndarray, size: int) -> Image.Image:
    """``image`` warped by the 2x3 matrix ``m`` (source -> output pixels) into a size x size crop."""
    full = np.vstack([m, [0, 0, 1]])
    inv = np.linalg.inv(full)  # PIL maps output pixels back to source pixels
    return image.convert("RGB").transform((size, size), Image.Transform.AFFINE, tuple(inv[:2].reshape(-1)),
                                          resample=Image.Resampling.BILINEAR)  # fmt: skip


def box_crop(image: Image.Image, box, size: int = 160, margin: int = FACENET_MARGIN) -> Image.Image:
    """facenet-pytorch's ``extract_face``: ``margin`` is in output pixels, the box is clipped to the image."""
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = margin * (x2 - x1) / (size - margin), margin * (y2 - y1) / (size - margin)
    w, h = image.size
    crop = (int(max(x1 - mx / 2, 0)), int(max(y1 - my / 2, 0)), int(min(x2 + mx / 2, w)), int(min(y2 + my / 2, h)))
    return image.convert("RGB").crop(crop).resize((size, size), Image.Resampling.BILINEAR)


def align(image: Image.Image, face, mode: str = "arcface112") -> Image.Image:
    """The aligned crop of one detected face (an ``mtcnn.Face``)."""
    if mode == "box160":
        return box_crop(image, face.box)
    points, size = template(mode)
    return warp(image, similarity_transform(face.landmarks, points), size)
