"""Request bodies -> data, shared by every task's ``predictor`` (images, WAV audio, UTF-8 text); a bad body is a
one-line ``UserError``. Also the small helpers predictors share (options, default names)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np

from dlbox.base.errors import UserError


def decode_image(payload: bytes):
    """Bytes -> an RGB PIL image, fully decoded (what ``Image.open(file).convert("RGB")`` gives for a file)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(payload)) as im:
            return im.convert("RGB")
    except UnidentifiedImageError:
        raise UserError("the body is not an image", "send a PNG, JPEG, BMP, GIF or WebP file") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(f"cannot decode the image: {str(e)[:120]}", "the upload may be truncated") from None


def decode_audio(payload: bytes) -> tuple[np.ndarray, int]:
    """Bytes of a WAV/FLAC/OGG file -> (T,) float32 mono samples and their sample rate."""
    import soundfile as sf

    try:
        wave, sr = sf.read(io.BytesIO(payload), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile's errors are RuntimeError/LibsndfileError with long texts
        raise UserError(f"the body is not audio soundfile can read ({str(e).split(':')[-1].strip()[:80]})",
                        "send a WAV, FLAC or OGG file") from None  # fmt: skip
    if not len(wave):
        raise UserError("the audio is empty", "send a WAV file with samples in it")
    return wave.mean(axis=1).astype(np.float32), int(sr)


def decode_text(payload: bytes) -> str:
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UserError("the body is not UTF-8 text", "send the word as UTF-8") from None
    if not text:
        raise UserError("the body is empty", "send a word")
    return text


def int_option(options: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = options.pop(name, default)
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be an integer, got {value!r}") from None
    if not lo <= n <= hi:
        raise UserError(f"{name} must be in [{lo}, {hi}], got {n}")
    return n


def float_option(options: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    value = options.pop(name, default)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {value!r}") from None
    if not lo <= x <= hi:
        raise UserError(f"{name} must be in [{lo}, {hi}], got {x}")
    return x


def no_more_options(options: dict[str, Any], known: str) -> None:
    if options:
        raise UserError(f"unknown option {', '.join(sorted(options))}", f"this model takes: {known}")


def default_name(source: str | Path) -> str:
    """A run's folder name, a file's name without its suffixes, or NAME of a reference (hub:NAME, models:/NAME/2)."""
    s = str(source)
    p = Path(s)
    scheme = re.match(r"^([a-z][a-z0-9+.-]*):(?!\\)", s)
    if scheme and len(scheme.group(1)) > 1 and not p.exists():
        rest = s[scheme.end() :].strip("/")
        return rest.split("/")[0] or s
    if p.is_dir():
        return p.name
    if p.parent.name == "checkpoints":  # RUN/checkpoints/best.pt: the run's name
        return p.parent.parent.name
    if p.name.split(".")[0] == "model" and (p.parent / "checkpoints").is_dir():  # RUN/model.onnx
        return p.parent.name
    return p.name.split(".")[0] or p.name


def square_batch(tensors: dict[str, np.ndarray], name: str, size: int, send: str) -> np.ndarray:
    """The one input tensor ``name`` of a v2 request, (N, 3, size, size) FP32; anything else is one line
    (``send`` says what to send, e.g. "FP32 in [0, 1], letterboxed")."""
    no_more_options({k: 0 for k in tensors if k != name}, f"the tensor {name} (N, 3, S, S)")
    if name not in tensors:
        raise UserError(f"missing input tensor {name}", f"send {name}: (N, 3, S, S) {send}")
    x = np.ascontiguousarray(tensors[name], dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != (3, size, size):
        raise UserError(f"{name} must be (N, 3, {size}, {size}), got {tuple(x.shape)}")
    return x
