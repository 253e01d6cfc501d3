"""`dlbox data build`: class folders -> a dataset directory (labels, manifests, optional WebDataset shards).

The old build_image_data step, kept simple: every file is verified once here (skips are listed with the
reason and counted), the split is stratified and seeded, and files duplicated across train and val (same
bytes) are reported because they inflate validation accuracy.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from dlbox.data.folders import scan_class_folders
from dlbox.data.images import stratified_split
from dlbox.engine.fileio import atomic_write, atomic_write_text
from dlbox.engine.progress import bar
from dlbox.errors import UserError

FORMAT_VERSION = 1


def _sha1(path: str) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _manifest(rows: list[tuple[str, int]], out: Path) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "label"])
    for path, label in rows:
        rel = os.path.relpath(path, out) if Path(path).is_absolute() else path
        w.writerow([rel, label])
    return buf.getvalue()


def write_shards(rows: list[tuple[str, int]], out_dir: Path, prefix: str, shard_size: int) -> list[str]:
    """WebDataset layout: ``<key>.<ext>`` (the image bytes as they are) + ``<key>.cls`` (label index)."""
    names = []
    with bar(len(rows), f"shards {prefix}", unit="img") as pbar:
        for s, start in enumerate(range(0, len(rows), shard_size)):
            path = out_dir / f"{prefix}-{s:06d}.tar"

            def write(tmp: str, chunk=rows[start : start + shard_size], first=start) -> None:
                with tarfile.open(tmp, "w") as tar:
                    for i, (src, label) in enumerate(chunk, first):
                        key = f"{i:08d}"
                        ext = Path(src).suffix.lower().lstrip(".")
                        for name, data in ((f"{key}.{ext}", Path(src).read_bytes()), (f"{key}.cls", str(label).encode())):
                            info = tarfile.TarInfo(name)
                            info.size, info.mtime, info.mode = len(data), 0, 0o644
                            tar.addfile(info, io.BytesIO(data))
                        pbar.update(1)

            atomic_write(path, write)
            names.append(str(path.relative_to(out_dir.parent)))
    return names


def build_dataset(train_dir: str | Path, out: str | Path, val_dir: str | Path | None = None, val_split: float = 0.1,
                  seed: int = 0, shards: bool = False, shard_size: int = 1024) -> dict[str, Any]:  # fmt: skip
    out = Path(out)
    if not 0 <= val_split < 1:
        raise UserError(f"--val-split must be in [0, 1), got {val_split}")
    if shard_size < 1:
        raise UserError(f"--shard-size must be at least 1, got {shard_size}")
    scan = scan_class_folders(train_dir)
    skipped = list(scan.skipped)
    if val_dir is not None:
        vscan = scan_class_folders(val_dir)
        if vscan.classes != scan.classes:
            raise UserError(f"--val-dir has classes {vscan.classes}, the training folder {scan.classes}",
                            "give both the same class folders")  # fmt: skip
        train, val = scan.samples, vscan.samples
        skipped += vscan.skipped
    else:
        tr, va = stratified_split([y for _, y in scan.samples], val_split, seed)
        train, val = [scan.samples[i] for i in tr], [scan.samples[i] for i in va]
    train_hashes: dict[str, str] = {}
    for p, _ in train:
        train_hashes.setdefault(_sha1(p), p)
    duplicates = [{"train": train_hashes[h], "val": p} for p, _ in val if (h := _sha1(p)) in train_hashes]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "labels.txt", "".join(c + "\n" for c in scan.classes))
    atomic_write_text(out / "train.csv", _manifest(train, out))
    atomic_write_text(out / "val.csv", _manifest(val, out))
    shard_files: dict[str, list[str]] = {}
    if shards:
        (out / "shards").mkdir(exist_ok=True)
        shard_files = {"train": write_shards(train, out / "shards", "train", shard_size),
                       "val": write_shards(val, out / "shards", "val", shard_size) if val else []}  # fmt: skip

    def per_class(rows):
        counts = {c: 0 for c in scan.classes}
        for _, y in rows:
            counts[scan.classes[y]] += 1
        return counts

    summary = {
        "format": FORMAT_VERSION, "out": str(out), "classes": scan.classes,
        "train": {"images": len(train), "per_class": per_class(train)},
        "val": {"images": len(val), "per_class": per_class(val)},
        "skipped": [{"file": f, "reason": r} for f, r in skipped], "skipped_count": len(skipped),
        "duplicates": duplicates, "shards": shard_files, "seed": seed, "val_split": val_split if val_dir is None else None,
    }  # fmt: skip
    atomic_write_text(out / "dataset.json", json.dumps(summary, indent=2))
    return summary


def render(s: dict[str, Any]) -> str:
    lines = [f"dataset {s['out']}: {len(s['classes'])} classes, {s['train']['images']} train / {s['val']['images']} val images"]
    width = max(len(c) for c in s["classes"])
    for c in s["classes"]:
        lines.append(f"  {c.ljust(width)}  {s['train']['per_class'][c]:>6} train  {s['val']['per_class'][c]:>6} val")
    lines.append(f"skipped {s['skipped_count']} file(s)" + (":" if s["skipped"] else ""))
    lines += [f"  {x['file']}: {x['reason']}" for x in s["skipped"][:20]]
    if s["duplicates"]:
        lines.append(f"warning: {len(s['duplicates'])} val image(s) duplicate train images (same bytes):")
        lines += [f"  {d['val']} = {d['train']}" for d in s["duplicates"][:20]]
    for split, files in (s["shards"] or {}).items():
        lines.append(f"{split} shards: {len(files)}")
    return "\n".join(lines)
