"""Class folders: ``root/<class>/<image>``. Scanning verifies every file and reports what it skips."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dlbox.engine.progress import bar
from dlbox.errors import UserError

IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "bmp", "webp"})


@dataclass
class Scan:
    classes: list[str]
    samples: list[tuple[str, int]]  # (path, label index)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def check_image(path: Path) -> str | None:
    """None when ``path`` is a readable image, else the reason it is not."""
    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower().lstrip(".") not in IMAGE_EXTENSIONS:
        return f"not an image extension ({path.suffix or 'none'})"
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with Image.open(path) as im:
            im.verify()  # reads the headers and checks structure without decoding all pixels
    except UnidentifiedImageError:
        return "not an image (content does not match its extension)"
    except (OSError, SyntaxError, ValueError) as e:
        return f"unreadable image ({str(e)[:80]})"
    return None


def scan_class_folders(root: str | Path, min_classes: int = 2) -> Scan:
    root = Path(root)
    if not root.exists():
        raise UserError(f"data folder {str(root)!r} does not exist", "check the path; it should hold one folder per class")
    if not root.is_dir():
        raise UserError(f"{str(root)!r} is not a folder", "pass a folder with one sub-folder of images per class")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"{str(root)!r} has no class folders", "put the images of each class in a sub-folder named after it")
    files = [(f, i) for i, c in enumerate(classes) for f in sorted((root / c).rglob("*")) if f.is_file()
             and not f.name.startswith(".")]  # fmt: skip
    empty = [c for i, c in enumerate(classes) if not any(lbl == i for _, lbl in files)]
    if empty:
        raise UserError(f"class folder {empty[0]!r} in {str(root)!r} is empty", "remove the folder or add images to it")
    with ThreadPoolExecutor(8) as pool, bar(len(files), f"scan {root.name}", unit="file") as pbar:
        reasons = []
        for r in pool.map(check_image, (f for f, _ in files)):
            reasons.append(r)
            pbar.update(1)
    samples = [(str(f), lbl) for (f, lbl), r in zip(files, reasons, strict=True) if r is None]
    skipped = [(str(f), r) for (f, _), r in zip(files, reasons, strict=True) if r is not None]
    no_images = [c for i, c in enumerate(classes) if not any(lbl == i for _, lbl in samples)]
    if no_images:
        raise UserError(f"class folder {no_images[0]!r} has no readable images", "remove the folder or add images to it")
    if len(classes) < min_classes:
        raise UserError(f"{str(root)!r} has only {len(classes)} class ({classes[0]!r})", "a classifier needs at least 2 classes")
    return Scan(classes, samples, skipped)


def report_skipped(skipped: list[tuple[str, str]], limit: int = 10) -> None:
    """Skipped files on stderr: never a silent drop."""
    from dlbox.engine.progress import log

    if not skipped:
        return
    log(f"skipped {len(skipped)} file(s) that are not readable images:")
    for path, reason in skipped[:limit]:
        log(f"  {path}: {reason}")
    if len(skipped) > limit:
        log(f"  ... and {len(skipped) - limit} more")
