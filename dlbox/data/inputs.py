"""Image inputs of the predict commands (classify, face): files, folders and globs as one list of files."""

from __future__ import annotations

import glob
from pathlib import Path

from dlbox.base.errors import UserError
from dlbox.data.folders import IMAGE_EXTENSIONS


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Image files from paths, folders (recursively) and glob patterns, in a stable order."""
    files: list[Path] = []
    for spec in inputs:
        p = Path(spec)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS)
        elif p.is_file():
            files.append(p)
        elif any(ch in spec for ch in "*?["):
            files += sorted(Path(f) for f in glob.glob(spec, recursive=True) if Path(f).is_file())
        else:
            raise UserError(f"{spec!r} does not exist", "pass image files, a folder or a quoted glob like 'imgs/*.jpg'")
    if not files:
        raise UserError(f"no images found in {' '.join(inputs)}", f"supported: {', '.join(sorted(IMAGE_EXTENSIONS))}")
    return files
