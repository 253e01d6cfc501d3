"""Class folders: ``root/<class>/<image>``. Scanning verifies every file and reports what it skips.

Verification is cheap but thorough enough that a file accepted here decodes at training time: PNG chunks are
CRC-checked to the end (``verify``), JPEGs are decoded at 1/8 scale (``draft``), which still reads every
byte of the entropy-coded data and so catches a truncated file, and the other formats are decoded.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dlbox.base.errors import UserError
from dlbox.base.progress import bar, log

IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "bmp", "webp"})


@dataclass
class Scan:
    classes: list[str]  # sorted folder names; label = index
    samples: list[tuple[str, int]]  # (absolute path, label index)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def is_image_name(path: str | Path) -> bool:
    return Path(path).suffix.lower().lstrip(".") in IMAGE_EXTENSIONS


def check_image(path: str | Path) -> str | None:
    """None when ``path`` is a readable image, else the reason it is not."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not is_image_name(path):
        return f"not an image extension ({path.suffix or 'none'})"
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with Image.open(path) as im:
            if im.format == "PNG":
                im.verify()  # CRC of every chunk up to IEND, without inflating the pixels
            else:
                if im.format == "JPEG":
                    im.draft("RGB", (1, 1))  # decode at 1/8 scale: reads the whole file, a fraction of the work
                im.load()
    except UnidentifiedImageError:
        return "not an image (content does not match its extension)"
    except Image.DecompressionBombError as e:
        return f"too many pixels ({str(e)[:80]})"
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        return f"unreadable image ({str(e)[:80]})"
    return None


def verify_files(paths: list[str], desc: str) -> list[str | None]:
    """``check_image`` for each path, in threads (PIL releases the GIL while decoding), with a progress bar."""
    reasons: list[str | None] = []
    with ThreadPoolExecutor(min(8, (os.cpu_count() or 1) * 2)) as pool, bar(len(paths), desc, unit="file") as pbar:
        for r in pool.map(check_image, paths):
            reasons.append(r)
            pbar.update(1)
    return reasons


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")  # .DS_Store, .ipynb_checkpoints, our own markers


def scan_class_folders(root: str | Path, min_classes: int = 2) -> Scan:
    """One sub-folder per class (sorted names become labels 0..n-1); images may sit in nested folders.

    Every file is verified; the ones that are not readable images (and files lying directly in ``root``,
    outside any class folder) are returned in ``skipped`` with the reason. Hidden files and folders are
    ignored. UserError for: a missing root, no class folders, a class without readable images, fewer than
    ``min_classes`` classes.
    """
    root = Path(root)
    if not root.exists():
        raise UserError(f"data folder {str(root)!r} does not exist", "check the path; it should hold one folder per class")
    if not root.is_dir():
        raise UserError(f"{str(root)!r} is not a folder", "pass a folder with one sub-folder of images per class")
    root = root.resolve()
    entries = sorted(p for p in root.iterdir() if _visible(p))
    classes = [p.name for p in entries if p.is_dir()]
    loose = [(str(p), "not in a class folder") for p in entries if p.is_file()]
    if not classes:
        raise UserError(f"{str(root)!r} has no class folders", "put the images of each class in a sub-folder named after it")
    files: list[tuple[str, int]] = []
    for i, c in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(root / c):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            files += [(os.path.join(dirpath, f), i) for f in sorted(filenames) if not f.startswith(".")]
    counts = [0] * len(classes)
    for _, lbl in files:
        counts[lbl] += 1
    if 0 in counts:
        empty = classes[counts.index(0)]
        raise UserError(f"class folder {empty!r} in {str(root)!r} is empty", "remove the folder or add images to it")
    if len(classes) < min_classes:
        raise UserError(f"{str(root)!r} has only {len(classes)} class folder ({classes[0]!r})",
                        f"a classifier needs at least {min_classes} classes: one sub-folder of images per class")  # fmt: skip
    reasons = verify_files([f for f, _ in files], f"scan {root.name}")
    samples = [(f, lbl) for (f, lbl), r in zip(files, reasons, strict=True) if r is None]
    skipped = loose + [(f, r) for (f, _), r in zip(files, reasons, strict=True) if r is not None]
    readable = [0] * len(classes)
    for _, lbl in samples:
        readable[lbl] += 1
    if 0 in readable:
        bad = classes[readable.index(0)]
        raise UserError(f"class folder {bad!r} has no readable images ({counts[readable.index(0)]} file(s) skipped)",
                        "remove the folder or add images to it")  # fmt: skip
    return Scan(classes, samples, skipped)


def report_skipped(skipped: list[tuple[str, str]], limit: int = 10) -> None:
    """Skipped files on stderr, with the reason and a count: never a silent drop."""
    if not skipped:
        return
    log(f"skipped {len(skipped)} file(s) that are not readable images:")
    for path, reason in skipped[:limit]:
        log(f"  {path}: {reason}")
    if len(skipped) > limit:
        log(f"  ... and {len(skipped) - limit} more")
