"""`dlbox data build`: class folders -> a dataset directory (labels, manifests, optional WebDataset shards).

The old build_image_data step, kept simple: every file is verified once here (skips are listed with the
reason and counted), the split is stratified and seeded, and files duplicated across train and val (same
bytes) are reported because they inflate validation accuracy.

Layout of ``out/``: ``labels.txt`` (one class a line; label = line number from 0), ``train.csv`` and
``val.csv`` (``path,label``; paths relative to ``out/``), ``dataset.json`` (the summary below, with a format
version) and, with shards, ``shards/{train,val}-NNNNNN.tar``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError
from dlbox.base.fileio import atomic_write, atomic_write_text
from dlbox.base.progress import bar
from dlbox.data.folders import scan_class_folders
from dlbox.data.images import stratified_split
from dlbox.data.manifest import FORMAT_VERSION, SHARD_NAME


def sha1_file(path: str) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_duplicates(train: list[tuple[str, int]], val: list[tuple[str, int]]) -> list[dict[str, str]]:
    """Val images whose bytes equal a train image's (sha1), each with the first train file it matches."""
    paths = [p for p, _ in train] + [p for p, _ in val]
    with ThreadPoolExecutor(4) as pool, bar(len(paths), "hash", unit="file") as pbar:
        hashes = []
        for h in pool.map(sha1_file, paths):
            hashes.append(h)
            pbar.update(1)
    first: dict[str, str] = {}
    for (p, _), h in zip(train, hashes, strict=False):
        first.setdefault(h, p)
    return [{"train": first[h], "val": p} for (p, _), h in zip(val, hashes[len(train) :], strict=True) if h in first]


def _manifest(rows: list[tuple[str, int]], out: Path) -> str:
    """``path,label`` CSV; paths relative to ``out`` (survives moving the project), absolute where impossible."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "label"])
    for path, label in rows:
        try:
            rel = os.path.relpath(path, out)
        except ValueError:  # another drive on Windows
            rel = path
        w.writerow([rel, label])
    return buf.getvalue()


def write_shards(rows: list[tuple[str, int]], out_dir: Path, prefix: str, shard_size: int) -> list[str]:
    """WebDataset layout: ``<key>.<ext>`` (the image bytes as they are) + ``<key>.cls`` (label index as text),
    ``shard_size`` images a shard; keys are the running index in the split, zero-padded."""
    names = []
    with bar(len(rows), f"shards {prefix}", unit="img") as pbar:
        for s, start in enumerate(range(0, len(rows), shard_size)):
            path = out_dir / f"{prefix}-{s:06d}.tar"

            def write(tmp: str, chunk=rows[start : start + shard_size], first=start) -> None:
                with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
                    for i, (src, label) in enumerate(chunk, first):
                        key = f"{i:08d}"
                        ext = Path(src).suffix.lower().lstrip(".")
                        for name, data in ((f"{key}.{ext}", Path(src).read_bytes()), (f"{key}.cls", str(label).encode())):
                            info = tarfile.TarInfo(name)
                            info.size, info.mtime, info.mode = len(data), 0, 0o644  # mtime 0: same input, same bytes
                            tar.addfile(info, io.BytesIO(data))
                        pbar.update(1)

            atomic_write(path, write)
            names.append(f"shards/{path.name}")
    return names


def _remove_stale_shards(shard_dir: Path, keep: set[str]) -> None:
    """Shards of an earlier build into the same directory that this build did not rewrite."""
    if shard_dir.is_dir():
        for p in shard_dir.iterdir():
            if SHARD_NAME.fullmatch(p.name) and f"shards/{p.name}" not in keep:
                p.unlink()


def _check_out(out: Path, *sources: Path) -> None:
    o = out.resolve()
    for src in sources:
        s = src.resolve()
        if o == s or s in o.parents:
            raise UserError(f"--out {str(out)!r} is inside the class folders {str(src)!r}",
                            "write the dataset elsewhere, or it would be read as a class next time")  # fmt: skip


def build_dataset(train_dir: str | Path, out: str | Path, val_dir: str | Path | None = None, val_split: float = 0.1,
                  seed: int = 0, shards: bool = False, shard_size: int = 1024) -> dict[str, Any]:  # fmt: skip
    """Scan ``train_dir`` (and ``val_dir``), split, write ``out/``; returns the summary (also ``out/dataset.json``).

    Without ``val_dir``, ``val_split`` of each class goes to val (stratified, seeded by ``seed``). The summary
    holds: classes, images per split and class, skipped files with reasons and their count, val files
    duplicating a train file, and the shard files.
    """
    from dlbox.data.remote import resolve_data

    out = Path(out)
    if not 0 <= val_split < 1:
        raise UserError(f"--val-split must be in [0, 1), got {val_split}")
    train_dir = resolve_data(train_dir)  # s3://bucket/prefix: synced into the local cache first
    val_dir = resolve_data(val_dir) if val_dir is not None else None
    if shard_size < 1:
        raise UserError(f"--shard-size must be at least 1, got {shard_size}")
    _check_out(out, *(Path(d) for d in (train_dir, val_dir) if d is not None and Path(d).is_dir()))
    scan = scan_class_folders(train_dir)
    skipped = list(scan.skipped)
    if val_dir is not None:
        vscan = scan_class_folders(val_dir, min_classes=1)
        unknown = [c for c in vscan.classes if c not in scan.classes]
        if unknown:
            raise UserError(f"--val-dir has classes {unknown[:5]} that {str(train_dir)!r} lacks",
                            "give both the same class folders")  # fmt: skip
        remap = [scan.classes.index(c) for c in vscan.classes]
        train, val = scan.samples, [(p, remap[y]) for p, y in vscan.samples]
        skipped += vscan.skipped
    else:
        tr, va = stratified_split([y for _, y in scan.samples], val_split, seed)
        train, val = [scan.samples[i] for i in tr], [scan.samples[i] for i in va]
    duplicates = find_duplicates(train, val)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dataset.json").unlink(missing_ok=True)  # an earlier build's summary must not describe a half-written one
    atomic_write_text(out / "labels.txt", "".join(c + "\n" for c in scan.classes))
    atomic_write_text(out / "train.csv", _manifest(train, out.resolve()))
    atomic_write_text(out / "val.csv", _manifest(val, out.resolve()))
    shard_files: dict[str, list[str]] = {}
    if shards:
        shard_files = {"train": write_shards(train, out / "shards", "train", shard_size),
                       "val": write_shards(val, out / "shards", "val", shard_size)}  # fmt: skip
    _remove_stale_shards(out / "shards", {f for files in shard_files.values() for f in files})

    def per_class(rows):
        counts = {c: 0 for c in scan.classes}
        for _, y in rows:
            counts[scan.classes[y]] += 1
        return counts

    from dlbox import __version__

    summary = {
        "format": FORMAT_VERSION, "dlbox": __version__, "out": str(out), "classes": scan.classes,
        "train": {"images": len(train), "per_class": per_class(train)},
        "val": {"images": len(val), "per_class": per_class(val)},
        "skipped": [{"file": f, "reason": r} for f, r in skipped], "skipped_count": len(skipped),
        "duplicates": duplicates, "duplicates_count": len(duplicates),
        "shards": shard_files, "shard_size": shard_size if shards else None,
        "source": {"train_dir": str(Path(train_dir).resolve()),
                   "val_dir": str(Path(val_dir).resolve()) if val_dir is not None else None},
        "seed": seed, "val_split": val_split if val_dir is None else None,
    }  # fmt: skip
    # Written last: a directory with dataset.json is a complete dataset.
    atomic_write_text(out / "dataset.json", json.dumps(summary, indent=2) + "\n")
    return summary


def render(s: dict[str, Any], limit: int = 20) -> str:
    lines = [f"dataset {s['out']}: {len(s['classes'])} classes, {s['train']['images']} train / {s['val']['images']} val images"]
    width = max(len(c) for c in s["classes"])
    for c in s["classes"]:
        lines.append(f"  {c.ljust(width)}  {s['train']['per_class'][c]:>7} train {s['val']['per_class'][c]:>7} val")
    lines.append(f"skipped {s['skipped_count']} file(s)" + (" (not readable images):" if s["skipped"] else ""))
    lines += [f"  {x['file']}: {x['reason']}" for x in s["skipped"][:limit]]
    if s["skipped_count"] > limit:
        lines.append(f"  ... and {s['skipped_count'] - limit} more (all in {s['out']}/dataset.json)")
    if s["duplicates"]:
        lines.append(f"warning: {len(s['duplicates'])} val image(s) are byte-for-byte copies of train images "
                     "(they inflate validation accuracy):")  # fmt: skip
        lines += [f"  {d['val']} = {d['train']}" for d in s["duplicates"][:limit]]
        if len(s["duplicates"]) > limit:
            lines.append(f"  ... and {len(s['duplicates']) - limit} more (all in {s['out']}/dataset.json)")
    else:
        lines.append("no duplicates across train and val")
    for split, files in (s["shards"] or {}).items():
        lines.append(f"{split} shards: {len(files)} ({s['shard_size']} images a shard) in {s['out']}/shards")
    return "\n".join(lines)
