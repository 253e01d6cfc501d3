"""The one check of an output path, before any work starts.

Every command declares what it writes (``opt(..., output="file")`` / ``output="dir"``) and ``dlbox.cliutil``
calls ``check_output`` on each before the command's function runs: an existing folder where a file is wanted,
an existing file where a folder is wanted, a parent that is a file, a read-only or unwritable place are one line
naming the path and what to do, instead of a traceback after the work (or half of it) is done.
Missing parent folders are fine: the writers create them; the nearest existing one must be a writable folder.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Literal

from dlbox.base.errors import UserError

Kind = Literal["file", "dir"]
KINDS = ("file", "dir")
REMOTE = ("s3://", "http://", "https://", "gs://", "hub:")


class OutputError(UserError):
    """An output path that cannot be written as asked (exit 2: nothing was done)."""


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _unwritable(path: Path) -> str | None:
    """Why nothing can be created in (or written to) the existing ``path``, or None."""
    if _read_only(path):
        return os.strerror(errno.EROFS).lower()
    if not os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0)):
        return "permission denied"
    return None


def _example(kind: Kind, path: Path) -> str:
    if kind == "dir":
        return f"give a folder name, e.g. {path.stem or 'out'}-dir"
    return f"give a file name, e.g. {path / 'out'}"


def check_output(path: str | os.PathLike | None, kind: Kind = "file", what: str | None = None) -> Path | None:
    """Refuse an output ``path`` that cannot be written as a ``kind`` ("file" or "dir"); returns it as a Path.
    ``what`` names it in the message (the option, e.g. "--out"). None and remote URLs pass unchecked.

    An existing file stays acceptable for a file (it is replaced atomically) and an existing folder for a
    folder (commands that must not mix their files with others' refuse a non-empty one themselves)."""
    if path is None:
        return None
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    text = os.fspath(path)
    if text.startswith(REMOTE):
        return None
    if text == "":
        raise OutputError(f"{what or 'the output'} is empty", "give a file name")
    p = Path(text).expanduser()
    label = f"{what} {text!r}" if what else repr(text)
    if p.is_dir() and kind == "file":
        raise OutputError(f"{label} is a folder, not a file", _example("file", p))
    if p.exists() and not p.is_dir() and kind == "dir":
        raise OutputError(f"{label} is a file, not a folder", _example("dir", p))
    # the nearest existing ancestor must be a folder we can create things in
    parent = p if p.exists() else p.parent
    while not parent.exists() and parent != parent.parent:
        if parent.is_symlink():  # a dangling link: the writer would fail on it
            raise OutputError(f"{label}: {str(parent)!r} is a broken link", "choose another place")
        parent = parent.parent
    if p.exists() and kind == "file":  # replaced by a rename (dlbox.base.fileio): its folder must be writable
        why = _unwritable(p.parent)
        if why:
            raise OutputError(f"cannot write {label}: {why}", _writable_hint(why))
        return p
    if not parent.is_dir():
        raise OutputError(f"cannot write {label}: {str(parent)!r} is a file, not a folder",
                          "choose a place under a folder, or move that file away")  # fmt: skip
    why = _unwritable(parent)
    if why:
        where = "" if parent == p else f" ({str(parent)!r})"
        raise OutputError(f"cannot write {label}{where}: {why}", _writable_hint(why))
    return p


def _writable_hint(why: str) -> str:
    if "read-only" in why:
        return "the file system is read-only: choose a writable place"
    return "check the permissions of that folder, or choose a writable place"
