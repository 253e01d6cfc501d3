"""Image datasets for training: class folders, a built dataset (manifests), or its WebDataset shards.

All are map-style datasets (the engine's DistributedSampler needs indices). Shards are indexed once (member
name, offset, size) and read by seeking, so a tar of a thousand images needs no unpacking.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from dlbox.data.folders import IMAGE_EXTENSIONS, report_skipped, scan_class_folders
from dlbox.errors import UserError

Source = str | tuple[str, int, int]  # a file path, or (tar path, data offset, size)


class ImageDataset(Dataset):
    """``ds[i] -> (transform(PIL RGB image), label)``; ``transform`` may be set after creation."""

    def __init__(self, samples: list[tuple[Source, int]], classes: list[str], transform=None):
        self.samples, self.classes, self.transform = samples, classes, transform

    def __len__(self) -> int:
        return len(self.samples)

    def read(self, i: int) -> Image.Image:
        src = self.samples[i][0]
        try:
            if isinstance(src, tuple):
                tar, offset, size = src
                with open(tar, "rb") as f:
                    f.seek(offset)
                    data = f.read(size)
                im = Image.open(io.BytesIO(data))
            else:
                im = Image.open(src)
            im.load()
        except OSError as e:
            # Scanning verified every file; one that breaks later changed on disk since.
            raise UserError(f"cannot read image {src}: {e}", "the file changed after the dataset was built; rebuild it") from None
        return im.convert("RGB")

    def __getitem__(self, i: int):
        im = self.read(i)
        return (self.transform(im) if self.transform is not None else im), self.samples[i][1]


def stratified_split(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, val): each class contributes round(n * fraction) images to val (at least 1 when it has 2+)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    for y in sorted(by_class):
        idx = by_class[y]
        order = [idx[j] for j in rng.permutation(len(idx))]
        k = int(round(len(idx) * fraction))
        k = max(k, 1) if fraction > 0 and len(idx) >= 2 else k
        val += order[:k]
        train += order[k:]
    return sorted(train), sorted(val)


def _read_manifest(root: Path, name: str) -> list[tuple[Source, int]]:
    path = root / name
    if not path.exists():
        return []
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            p = Path(row["path"])
            out.append((str(p if p.is_absolute() else root / p), int(row["label"])))
    return out


def index_shards(paths: list[Path]) -> list[tuple[Source, int]]:
    """WebDataset shards (``<key>.<ext>`` image + ``<key>.cls`` label) -> [((tar, offset, size), label)]."""
    samples = []
    for tar_path in paths:
        members: dict[str, dict[str, Any]] = {}
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
        for key, entry in members.items():
            if "image" not in entry or "label" not in entry:
                raise UserError(f"shard {tar_path} has {key} without {'a label' if 'image' in entry else 'an image'}",
                                "rebuild the shards with `dlbox data build --shards`")  # fmt: skip
            samples.append((entry["image"], entry["label"]))
    return samples


def _built(root: Path, val_split: float, seed: int):
    meta = json.loads((root / "dataset.json").read_text())
    classes = (root / "labels.txt").read_text().splitlines()
    shards = meta.get("shards") or {}
    if shards:
        train = index_shards([root / p for p in shards.get("train", [])])
        val = index_shards([root / p for p in shards.get("val", [])])
    else:
        train, val = _read_manifest(root, "train.csv"), _read_manifest(root, "val.csv")
    if val_split == 0:  # every image, e.g. for evaluation on a whole set
        train, val = train + val, []
    return ImageDataset(train, classes), (ImageDataset(val, classes) if val else None), classes


def load_image_splits(data: str | Path, val_split: float = 0.1, seed: int = 0):
    """(train, val or None, classes) from class folders (flat or ``train/`` + ``val/``) or a built dataset.

    Flat class folders are split with ``val_split`` (stratified, seeded); ``val_split=0`` keeps every image in
    ``train`` (used to evaluate on a whole folder)."""
    spec = str(data)
    if "://" in spec or spec.startswith("hub:"):
        raise UserError(f"remote data {spec!r} is not supported here yet", "download it first (dlbox hub download / sync)")
    root = Path(spec)
    if (root / "dataset.json").is_file():
        return _built(root, val_split, seed)
    if (root / "train").is_dir():
        scan = scan_class_folders(root / "train")
        report_skipped(scan.skipped)
        train = ImageDataset(scan.samples, scan.classes)
        if not (root / "val").is_dir():
            return train, None, scan.classes
        vscan = scan_class_folders(root / "val")
        report_skipped(vscan.skipped)
        if vscan.classes != scan.classes:
            raise UserError(f"{root}/val has classes {vscan.classes} but train has {scan.classes}",
                            "give train/ and val/ the same class folders")  # fmt: skip
        if val_split == 0:
            return ImageDataset(scan.samples + vscan.samples, scan.classes), None, scan.classes
        return train, ImageDataset(vscan.samples, scan.classes), scan.classes
    scan = scan_class_folders(root)
    report_skipped(scan.skipped)
    if val_split == 0:
        return ImageDataset(scan.samples, scan.classes), None, scan.classes
    tr, va = stratified_split([y for _, y in scan.samples], val_split, seed)
    samples = scan.samples
    return (ImageDataset([samples[i] for i in tr], scan.classes), ImageDataset([samples[i] for i in va], scan.classes),
            scan.classes)  # fmt: skip
