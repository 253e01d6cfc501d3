"""Atomic file writes: a failed or interrupted write leaves the old file intact.

A write that fails for a reason the user can fix (disk full, permission denied, read-only file system)
becomes one ``WriteError`` line naming the path and the free space, instead of a traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from dlbox.base.errors import UserError

# OSErrors a user fixes by freeing space or choosing another place; other OSErrors are bugs and stay loud.
FIXABLE = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}


class WriteError(UserError):
    """A file could not be written; the previous version of it (if any) is intact."""

    exit_code = 1


def free_space(path: str | Path) -> int | None:
    """Bytes free on the file system holding ``path`` (its nearest existing parent), or None."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def human_bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def write_error(path: str | Path, e: OSError, kept: str | None = None) -> WriteError:
    """The one-line error for a failed write of ``path`` (``kept``: what is still there, e.g. the old file)."""
    reason = e.strerror or type(e).__name__
    what = f"cannot write {str(path)!r}: {reason} ({human_bytes(free_space(path))} free there)"
    if kept:
        what += f"; {kept}"
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = "free some space or write somewhere else, then run the same command again"
    elif e.errno == errno.EROFS:
        hint = "the file system is read-only: choose a writable place"
    else:
        hint = "check the permissions of that folder, or choose a writable place"
    err = WriteError(what, hint)
    err.path = Path(path)  # the CLI turns it into `--resume RUN` when it lies in a training run
    return err


def is_fixable(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in FIXABLE


def write_all(fh, data: bytes, path: str | Path, kept: str) -> None:
    """All of ``data`` to an unbuffered file (``open(..., buffering=0)``: nothing is left to flush when it
    fails). A full disk or a read-only place is one WriteError line saying ``kept`` (what survives)."""
    view = memoryview(data)
    try:
        while view:
            view = view[fh.write(view) :]
    except OSError as e:
        if is_fixable(e):
            raise write_error(path, e, kept) from None
        raise


def atomic_write(path: str | Path, write: Callable[[str], None], durable: bool = True) -> None:
    """Call ``write(tmp_path)``, fsync, then rename over ``path`` (same directory, so rename is atomic).

    ``durable=False`` skips the fsync, for caches whose entries are checked when read and recomputed when bad:
    the rename still means no reader sees a half-written file, and a cache of many small files is not held
    to one disk flush each."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if is_fixable(e) or is_fixable(e.__cause__ or e.__context__):
            cause = e if isinstance(e, OSError) else (e.__cause__ or e.__context__)
            kept = "the previous file is intact" if path.exists() else None
            raise write_error(path, cause, kept) from None
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
