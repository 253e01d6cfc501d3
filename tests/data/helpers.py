"""Shared by the data tests: small class folders and an in-process CLI runner (a child process per call costs
seconds of imports; the few tests that need a real process use the `cli` fixture instead)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from PIL import Image

from tests.conftest import run_main  # noqa: F401  (re-exported for the data tests)


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".*"))
    return dst


def jpeg_bytes(color=(200, 30, 30), size=(48, 40), noise: bool = False) -> bytes:
    """A JPEG of one colour, or of noise (big scan data: cutting it leaves the headers whole)."""
    import numpy as np

    w, h = size
    im = (Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)) if noise
          else Image.new("RGB", size, color))  # fmt: skip
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def manifest_rows(path: Path) -> list[tuple[str, int]]:
    lines = path.read_text().splitlines()
    assert lines[0] == "path,label"
    return [(p, int(y)) for p, y in (ln.rsplit(",", 1) for ln in lines[1:])]
