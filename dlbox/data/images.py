"""Image datasets for training: class folders, a built dataset (manifests), or its WebDataset shards.

All are map-style datasets (the engine's DistributedSampler needs indices). Shards are indexed once (member
name, offset, size) and read by seeking, so a tar of a thousand images needs no unpacking.

Read errors: every file was verified when it was scanned (or built), so an image that fails to decode at
training time changed on disk since. It is not worth losing a long run for: the dataset logs the file once
on stderr and returns the next readable sample instead (deterministic: index i+1, i+2, ...). When more than
1% of the images (at least 10) fail, something is wrong with the disk or the data, and it raises UserError.
Set ``strict = True`` to raise on the first failure instead (evaluation wants every image or an error).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from dlbox.base.errors import UserError
from dlbox.base.progress import log
from dlbox.data.folders import IMAGE_EXTENSIONS, report_skipped, scan_class_folders
from dlbox.data.manifest import FORMAT_VERSION

Source = str | tuple[str, int, int]  # a file path, or (tar path, data offset, size)
SPLIT_NAMES = frozenset({"train", "val", "test"})  # sub-folders of a split layout: root/train/<class>/...


def read_bytes(src: Source) -> bytes:
    """The encoded file (or tar member) as it is on disk."""
    if isinstance(src, tuple):
        tar, offset, size = src
        with open(tar, "rb") as f:
            f.seek(offset)
            data = f.read(size)
        if len(data) != size:
            raise OSError(f"shard {tar} is truncated")
        return data
    with open(src, "rb") as f:
        return f.read()


def open_image(src: Source) -> Image.Image:
    """A decoded RGB image from a file or a tar member; OSError/ValueError when it cannot be read."""
    im = Image.open(io.BytesIO(read_bytes(src))) if isinstance(src, tuple) else Image.open(src)
    with im:
        im.load()
        return im.convert("RGB")  # grayscale, palette, RGBA -> 3 channels


def image_size(src: Source) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    if isinstance(src, tuple):
        tar, offset, size = src
        with open(tar, "rb") as f:
            f.seek(offset)
            with Image.open(io.BytesIO(f.read(size))) as im:
                return im.size
    with Image.open(src) as im:
        return im.size


def median_side(samples: list[tuple[Source, int]], most: int = 64) -> int | None:
    """The median image side (widths and heights together) over up to ``most`` evenly spaced samples."""
    if not samples:
        return None
    step = max(1, len(samples) // most)
    sides: list[int] = []
    for src, _ in samples[::step][:most]:
        try:
            sides.extend(image_size(src))
        except (OSError, ValueError, SyntaxError):
            continue  # unreadable files are reported when training reads them
    return sorted(sides)[len(sides) // 2] if sides else None


def describe(src: Source) -> str:
    return src if isinstance(src, str) else f"{src[0]} (offset {src[1]})"


class ImageDataset(Dataset):
    """``ds[i] -> (transform(PIL RGB image), label)``; ``transform`` may be set after creation (None: the image).

    ``samples`` is a list of (source, label): a file path, or (tar path, offset, size) for a shard member.
    """

    def __init__(self, samples: list[tuple[Source, int]], classes: list[str], transform=None, strict: bool = False):
        self.samples, self.classes, self.transform, self.strict = samples, classes, transform, strict
        self.unreadable: dict[int, str] = {}  # index -> reason, in this process (each DataLoader worker has its own)

    def __len__(self) -> int:
        return len(self.samples)

    def read(self, i: int) -> Image.Image:
        """The RGB image of sample ``i``; UserError naming the file when it cannot be read."""
        src = self.samples[i][0]
        try:
            return open_image(src)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise UserError(f"cannot read image {describe(src)}: {e}",
                            "the file changed after the dataset was scanned or built; fix or remove it") from None  # fmt: skip

    def _read_any(self, i: int) -> tuple[Image.Image, int]:
        """Sample ``i``, or the next readable one after it when it fails (see the module docstring)."""
        n = len(self.samples)
        for j in (i + k for k in range(n)):
            j %= n
            if j in self.unreadable:
                continue
            try:
                return self.read(j), self.samples[j][1]
            except UserError as e:
                if self.strict:
                    raise
                self.unreadable[j] = e.message
                log(f"warning: {e.message}; using another image instead (it changed since the scan)")
                if len(self.unreadable) > max(10, n // 100):
                    raise UserError(f"{len(self.unreadable)} of {n} images are unreadable, e.g. {e.message}",
                                    "check the disk or rebuild the dataset (dlbox data build)") from None  # fmt: skip
        raise UserError(f"none of the {n} images can be read", "check the disk or rebuild the dataset")

    def __getitem__(self, i: int):
        im, label = self._read_any(i)
        return (self.transform(im) if self.transform is not None else im), label


def stratified_split(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, val), each sorted. Each class gives round(n * fraction) of its images to val, at least 1
    and at most n - 1 when it has 2 or more (so every class is in both splits); seeded."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    for y in sorted(by_class):
        idx = by_class[y]
        order = [idx[j] for j in rng.permutation(len(idx))]
        k = int(round(len(idx) * fraction))
        if fraction > 0 and len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        val += order[:k]
        train += order[k:]
    return sorted(train), sorted(val)


def _split(samples: list[tuple[Source, int]], classes: list[str], val_split: float, seed: int):
    """(train, val or None) datasets; val_split=0 keeps everything in train."""
    if val_split <= 0:
        return ImageDataset(samples, classes), None
    tr, va = stratified_split([y for _, y in samples], val_split, seed)
    val = ImageDataset([samples[i] for i in va], classes) if va else None
    return ImageDataset([samples[i] for i in tr], classes), val


# --- built datasets (dlbox data build) ----------------------------------------------------------------------


def _read_manifest(root: Path, name: str, n_classes: int) -> list[tuple[Source, int]]:
    path = root / name
    if not path.exists():
        return []
    rows: list[tuple[Source, int]] = []
    missing: list[tuple[str, str]] = []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), 2):
            try:
                p, label = Path(row["path"]), int(row["label"])
            except (KeyError, TypeError, ValueError):
                raise UserError(f"{path}:{line} is not a 'path,label' row", "rebuild with `dlbox data build`") from None
            if not 0 <= label < n_classes:
                raise UserError(f"{path}:{line} has label {label} but labels.txt has {n_classes} classes",
                                "rebuild with `dlbox data build`")  # fmt: skip
            full = str(p if p.is_absolute() else root / p)
            if os.path.isfile(full):
                rows.append((full, label))
            else:
                missing.append((full, "missing (moved or deleted since the dataset was built)"))
    if missing:
        report_skipped(missing)
        if not rows:
            raise UserError(f"none of the {len(missing)} images listed in {path} exist, e.g. {missing[0][0]}",
                            "the source images moved; rebuild with `dlbox data build` or build with --shards")  # fmt: skip
    return rows


def index_shards(paths: list[Path], n_classes: int | None = None) -> list[tuple[Source, int]]:
    """WebDataset shards (``<key>.<ext>`` image + ``<key>.cls`` label) -> [((tar, offset, size), label)].

    Reads only the tar headers and the small .cls members; images are read later by seeking to their offset.
    """
    samples: list[tuple[Source, int]] = []
    for tar_path in paths:
        members: dict[str, dict[str, Any]] = {}
        try:
            with tarfile.open(tar_path) as tar:
                for m in tar:
                    if not m.isfile():
                        continue
                    key, _, ext = m.name.rpartition(".")
                    entry = members.setdefault(key, {})
                    if ext == "cls":
                        entry["label"] = int(tar.extractfile(m).read().decode().strip())
                    elif ext.lower() in IMAGE_EXTENSIONS:
                        entry["image"] = (str(tar_path), m.offset_data, m.size)
        except FileNotFoundError:
            raise UserError(f"shard {tar_path} is missing", "rebuild the shards with `dlbox data build --shards`") from None
        except (tarfile.TarError, OSError, ValueError) as e:
            raise UserError(f"shard {tar_path} is corrupt: {e}", "rebuild the shards with `dlbox data build --shards`") from None
        for key, entry in members.items():
            if "image" not in entry or "label" not in entry:
                raise UserError(f"shard {tar_path} has {key} without {'a label' if 'image' in entry else 'an image'}",
                                "rebuild the shards with `dlbox data build --shards`")  # fmt: skip
            if n_classes is not None and not 0 <= entry["label"] < n_classes:
                raise UserError(f"shard {tar_path}: {key} has label {entry['label']} but there are {n_classes} classes",
                                "rebuild the shards with `dlbox data build --shards`")  # fmt: skip
            samples.append((entry["image"], entry["label"]))
    return samples


def load_built(root: str | Path) -> tuple[list[tuple[Source, int]], list[tuple[Source, int]], list[str]]:
    """(train samples, val samples, classes) of a dataset directory written by ``build_dataset``; from the
    shards when it has them, else from the manifests."""
    root = Path(root)
    try:
        meta = json.loads((root / "dataset.json").read_text())
        classes = (root / "labels.txt").read_text().splitlines()
    except FileNotFoundError as e:
        raise UserError(f"{root} is not a complete dataset: {Path(e.filename).name} is missing",
                        "rebuild it with `dlbox data build`") from None  # fmt: skip
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{root / 'dataset.json'} is corrupt: {e}", "rebuild it with `dlbox data build`") from None
    if not isinstance(meta, dict) or int(meta.get("format", 0)) > FORMAT_VERSION:
        raise UserError(f"{root} was built by a newer dlbox (format {meta.get('format')})", "update dlbox or rebuild it")
    shards = meta.get("shards") or {}
    if shards:
        train = index_shards([root / p for p in shards.get("train", [])], len(classes))
        val = index_shards([root / p for p in shards.get("val", [])], len(classes))
    else:
        train, val = _read_manifest(root, "train.csv", len(classes)), _read_manifest(root, "val.csv", len(classes))
    return train, val, classes


# --- the entry point -------------------------------------------------------------------------------------------


def load_image_splits(data: str | Path, val_split: float = 0.1, seed: int = 0):
    """(train, val or None, classes) for training, from any of:

    - a built dataset (has ``dataset.json``): its splits, read from the shards when it has them;
    - a split layout, ``data/train/<class>/...`` and optionally ``data/val/<class>/...``;
    - flat class folders, ``data/<class>/...``.

    ``s3://bucket/prefix`` (any of the above, in object storage) is synced into a local cache first and read
    from there (:mod:`dlbox.data.remote`).

    Where the data has no validation split, ``val_split`` of the training images (stratified, seeded) become
    it. ``val_split=0`` puts every image, validation included, into ``train`` (to evaluate on a whole set).
    Skipped files are reported on stderr.
    """
    from dlbox.data.remote import resolve_data

    root = resolve_data(data)
    if (root / "dataset.json").is_file():
        train, val, classes = load_built(root)
        if val_split <= 0:
            return ImageDataset(train + val, classes), None, classes
        if not val:
            return (*_split(train, classes, val_split, seed), classes)
        return ImageDataset(train, classes), ImageDataset(val, classes), classes
    subdirs = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")} if root.is_dir() else set()
    if "train" in subdirs and subdirs <= SPLIT_NAMES:
        scan = scan_class_folders(root / "train")
        report_skipped(scan.skipped)
        if "val" not in subdirs:
            return (*_split(scan.samples, scan.classes, val_split, seed), scan.classes)
        vscan = scan_class_folders(root / "val", min_classes=1)
        report_skipped(vscan.skipped)
        unknown = [c for c in vscan.classes if c not in scan.classes]
        if unknown:
            raise UserError(f"{root / 'val'} has classes {unknown[:5]} that train/ lacks",
                            "give train/ and val/ the same class folders")  # fmt: skip
        remap = [scan.classes.index(c) for c in vscan.classes]  # val/ may lack a class; labels follow train/
        val_samples = [(s, remap[y]) for s, y in vscan.samples]
        if val_split <= 0:
            return ImageDataset(scan.samples + val_samples, scan.classes), None, scan.classes
        return ImageDataset(scan.samples, scan.classes), ImageDataset(val_samples, scan.classes), scan.classes
    scan = scan_class_folders(root)
    report_skipped(scan.skipped)
    return (*_split(scan.samples, scan.classes, val_split, seed), scan.classes)
