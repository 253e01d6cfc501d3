"""`dlbox caffe convert-imageset`: images (or the digits) into an LMDB of Datum records, as Caffe's
tools/convert_imageset.cpp writes it, for a solver's Data layers (dlbox's or BVLC Caffe's).

Sources: a folder of class subfolders (labels 0..K-1 in sorted order of the subfolder names), a folder with
Caffe's list file (``--list``: lines ``relative/path.jpg LABEL``), or ``digits:train`` / ``digits:test``
(scikit-learn's digits as 28x28 gray, the split dlbox's solver uses). Keys are Caffe's ``%08d_<path>``;
pixels are stored raw (C, H, W), colour in BGR as OpenCV reads it, or the image file itself with --encoded.
The database is written next to OUT and renamed into place when complete.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dlbox.base.errors import UserError, not_found
from dlbox.convert.caffe.wire import encode_datum

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}


def _listing(source: Path, list_file: str | None) -> tuple[list[tuple[str, int]], dict[str, int] | None]:
    """(relative path, label) per image, and the class names' labels when they come from subfolders."""
    if list_file:
        lines = []
        for n, line in enumerate(Path(list_file).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            path, _, label = line.strip().rpartition(" ")
            if not path or not label.lstrip("-").isdigit():
                raise UserError(f"{list_file} line {n}: expected `relative/path.jpg LABEL`, got {line.strip()!r}", "each line is 'relative/path.jpg LABEL' (an integer label)")
            lines.append((path.strip(), int(label)))
        return lines, None
    classes = sorted(d.name for d in source.iterdir() if d.is_dir())
    if not classes:
        raise UserError(f"{source} has no class subfolders",
                        "put each class's images in a subfolder (cat/, dog/...) or give --list with Caffe's list file")  # fmt: skip
    items = [(str(f.relative_to(source)), label) for label, c in enumerate(classes)
             for f in sorted((source / c).rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]  # fmt: skip
    return items, {c: i for i, c in enumerate(classes)}


def _load(path: Path, gray: bool, size: tuple[int, int] | None, encoded: bool, encode_type: str):
    """(pixels (C, H, W) uint8 or None, encoded bytes or None) of one image, as ReadImageToDatum makes them."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        img.load()
    except (OSError, UnidentifiedImageError) as e:
        raise UserError(f"cannot read image {path} ({e})", "remove it from the folder or the list") from None
    resized = size is not None and (img.height, img.width) != size
    if gray or img.mode in ("L", "I;16", "I", "F"):
        img = img.convert("L")
        changed = resized or gray
    else:
        img = img.convert("RGB")
        changed = resized
    if resized:
        img = img.resize((size[1], size[0]), Image.BILINEAR)  # cv::resize's default, INTER_LINEAR
    if encoded:
        kind = encode_type or path.suffix.lstrip(".").lower()
        if not changed and not encode_type:
            return None, path.read_bytes()  # the file as it is (ReadFileToDatum)
        buf = io.BytesIO()
        img.save(buf, format={"jpg": "JPEG", "jpeg": "JPEG"}.get(kind, kind.upper()))
        return None, buf.getvalue()
    a = np.asarray(img, dtype=np.uint8)
    a = a[None] if a.ndim == 2 else a[..., ::-1].transpose(2, 0, 1)  # (C, H, W), colour as BGR
    return np.ascontiguousarray(a), None


def _digit_records(split: str):
    import torch

    from dlbox.tasks.caffe.data import digits

    train, test = digits(None)
    ds = train if split == "train" else test
    x = ds.tensors[0].round().to(torch.uint8).numpy()  # (N, 1, 28, 28)
    for i, (img, label) in enumerate(zip(x, ds.tensors[1].tolist(), strict=True)):
        yield f"digit_{i}", int(label), img, None


def convert_imageset(source: str, out: str, list_file: str | None = None, gray: bool = False,
                     resize_height: int = 0, resize_width: int = 0, shuffle: bool = False, seed: int = 0,
                     encoded: bool = False, encode_type: str = "") -> dict[str, Any]:  # fmt: skip
    """Write the LMDB ``out`` (a new folder) from ``source``; returns what was written."""
    import lmdb

    from dlbox.base.progress import bar

    dest = Path(out)
    if dest.exists():
        raise UserError(f"{dest} already exists", "remove it or choose another OUT (convert_imageset never overwrites)")
    if (resize_height > 0) != (resize_width > 0):
        raise UserError("give both --resize-height and --resize-width (or neither)", "e.g. --resize-height 256 --resize-width 256")
    size = (resize_height, resize_width) if resize_height > 0 else None
    classes = None
    if source in ("digits:train", "digits:test"):
        records = list(_digit_records(source.split(":")[1]))
        if shuffle:
            random.Random(seed).shuffle(records)
        items = None
    else:
        root = Path(source)
        if not root.is_dir():
            raise UserError(f"{source!r} is not a folder", "pass a folder of class subfolders, or digits:train / digits:test")
        items, classes = _listing(root, list_file)
        if not items:
            raise UserError(f"{source} holds no images", f"image files end in {', '.join(sorted(IMAGE_SUFFIXES))}")
        if shuffle:
            random.Random(seed).shuffle(items)  # before keys are given, as convert_imageset --shuffle
        records = None
    total = len(records if records is not None else items)

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # a folder like any other, not mkdtemp's private one
    shapes: set[tuple[int, ...]] = set()
    written = 0
    try:
        env = lmdb.open(str(tmp), map_size=64 << 20, subdir=True, lock=True)
        pending: list[tuple[bytes, bytes]] = []

        def commit() -> None:
            nonlocal env
            while True:  # Caffe's LMDB writer doubles the map when it is full; so does this one
                try:
                    with env.begin(write=True) as txn:
                        for k, v in pending:
                            txn.put(k, v)
                    break
                except lmdb.MapFullError:
                    env.set_mapsize(env.info()["map_size"] * 2)
            pending.clear()

        pbar = bar(total, "convert-imageset", unit="img")
        for i in range(total):
            if records is not None:
                name, label, pixels, blob = records[i]
                if encoded:
                    pixels, blob = None, _png(pixels)
            else:
                name, label = items[i]
                path = Path(source) / name
                if not path.is_file():
                    raise UserError(f"{path} (listed in {list_file}) {not_found(path)}", "paths in the list are relative to SOURCE; fix the list or the folder")
                pixels, blob = _load(path, gray, size, encoded, encode_type)
            if pixels is not None:
                shapes.add(tuple(pixels.shape))
            pending.append((f"{i:08d}_{name}".encode(), encode_datum(label, pixels, blob)))
            written += 1
            if len(pending) == 1000:  # convert_imageset commits every 1,000 records
                commit()
            pbar.update(1)
        commit()
        pbar.close()
        env.sync()
        env.close()
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "lmdb": str(dest), "records": written, "source": source, "encoded": encoded,
        "shapes": sorted(list(s) for s in shapes), "classes": classes,
    }  # fmt: skip


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    img = Image.fromarray(pixels[0]) if pixels.shape[0] == 1 else Image.fromarray(pixels[::-1].transpose(1, 2, 0))
    img.save(buf, format="PNG")
    return buf.getvalue()
