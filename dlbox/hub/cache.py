"""The hub cache: ``$DLBOX_HOME/hub/<entry>/<tag>/<file>``, an index of verified files, hashing.

``<tag>`` is the start of the file's known hash (``unhashed`` when upstream publishes none), so two
different files never share a path. Files arrive as ``<file>.part`` next to their final place, are verified
(size, sha256/md5/sha256 prefix) and only then renamed into place. The index (``hub/index.json``) records
what was verified: the sha256 (the only record of a file whose upstream publishes no hash), size and
mtime. A later use trusts a file whose size and mtime still match the record and re-hashes it otherwise.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError
from dlbox.base.fileio import atomic_write_text
from dlbox.hub.catalog import Entry, HubFile
from dlbox.hub.settings import home

CHUNK = 1 << 20
_thread_lock = threading.Lock()


def root() -> Path:
    return home() / "hub"


def path_of(entry: Entry, f: HubFile) -> Path:
    return root() / entry.name / f.tag / f.name


def part_of(final: Path) -> Path:
    return final.with_name(final.name + ".part")


def key_of(entry: Entry, f: HubFile) -> str:
    return f"{entry.name}/{f.tag}/{f.name}"


# --- hashing --------------------------------------------------------------------------------------------
def digests(path: Path, md5: bool = False, progress=None) -> dict[str, str]:
    """sha256 (and md5) of a file in one pass; ``progress(n)`` is called with each chunk's size."""
    h256 = hashlib.sha256()
    h5 = hashlib.md5(usedforsecurity=False) if md5 else None
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h256.update(chunk)
            if h5 is not None:
                h5.update(chunk)
            if progress:
                progress(len(chunk))
    out = {"sha256": h256.hexdigest()}
    if h5 is not None:
        out["md5"] = h5.hexdigest()
    return out


class Mismatch(Exception):
    """A file that is not the one the catalog describes (wrong size or hash)."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def check(path: Path, f: HubFile, recorded_sha256: str | None = None, progress=None) -> dict[str, str]:
    """Verify ``path`` against the catalog record (and, for unhashed files, the sha256 recorded on first
    download). Returns the digests; raises Mismatch naming what differs."""
    size = path.stat().st_size
    if f.size is not None and size != f.size:
        raise Mismatch(f"size {size} bytes, expected {f.size}")
    got = digests(path, md5=bool(f.md5), progress=progress)
    if f.sha256 and got["sha256"] != f.sha256:
        raise Mismatch(f"sha256 {got['sha256']}, expected {f.sha256}")
    if f.sha256_prefix and not got["sha256"].startswith(f.sha256_prefix):
        raise Mismatch(f"sha256 {got['sha256']} does not start with {f.sha256_prefix} (from the file name)")
    if f.md5 and got.get("md5") != f.md5:
        raise Mismatch(f"md5 {got.get('md5')}, expected {f.md5}")
    if not f.hashed and recorded_sha256 and got["sha256"] != recorded_sha256:
        raise Mismatch(f"sha256 {got['sha256']}, but {recorded_sha256} was recorded when it was first downloaded")
    return got


# --- the index ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked():
    """Threads and processes take turns with the index (read-modify-write)."""
    root().mkdir(parents=True, exist_ok=True)
    with _thread_lock, open(root() / ".index.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _index_path() -> Path:
    return root() / "index.json"


def read_index() -> dict[str, Any]:
    p = _index_path()
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text())
        return data.get("files", {}) if isinstance(data, dict) else {}
    except (json.JSONDecodeError, OSError):
        return {}  # a damaged index only costs re-verification: every file is re-hashed before use


def record(entry: Entry, f: HubFile, path: Path, sha256: str, source: str) -> None:
    st = path.stat()
    with _locked():
        files = read_index()
        files[key_of(entry, f)] = {
            "sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "source": source,
            "verified_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }  # fmt: skip
        atomic_write_text(_index_path(), json.dumps({"format": "dlbox.hub.index", "version": 1, "files": files},
                                                    indent=1, sort_keys=True))  # fmt: skip


def forget(entry: Entry, f: HubFile) -> None:
    with _locked():
        files = read_index()
        if files.pop(key_of(entry, f), None) is not None:
            atomic_write_text(_index_path(), json.dumps({"format": "dlbox.hub.index", "version": 1, "files": files},
                                                        indent=1, sort_keys=True))  # fmt: skip


def recorded(entry: Entry, f: HubFile) -> dict[str, Any] | None:
    return read_index().get(key_of(entry, f))


def is_cached(entry: Entry, f: HubFile, index: dict[str, Any] | None = None) -> bool:
    """Cheap check (no hashing): the file is there and matches its index record."""
    p = path_of(entry, f)
    rec = (index if index is not None else read_index()).get(key_of(entry, f))
    if rec is None or not p.is_file():
        return False
    st = p.stat()
    return st.st_size == rec.get("size") and st.st_mtime_ns == rec.get("mtime_ns")


def quarantine(path: Path) -> Path:
    """Move a file that failed verification out of the way (kept for inspection, never used)."""
    bad = path.with_name(path.name + ".bad")
    os.replace(path, bad)
    return bad


def verified(entry: Entry, f: HubFile, progress=None) -> Path | None:
    """The cached file, verified; None when it is not in the cache. A cached file that no longer matches
    is quarantined (renamed ``.bad``) and None is returned, so it is fetched again."""
    p = path_of(entry, f)
    if not p.is_file():
        return None
    rec = recorded(entry, f)
    if rec is not None and is_cached(entry, f):
        return p
    try:  # put there by hand, or changed since it was recorded: verify before use
        got = check(p, f, recorded_sha256=(rec or {}).get("sha256"), progress=progress)
    except Mismatch as e:
        bad = quarantine(p)
        forget(entry, f)
        from dlbox.base.progress import log

        log(f"hub:{entry.name}: cached {f.name} failed verification ({e.what}); moved to {bad}")
        return None
    record(entry, f, p, got["sha256"], source=(rec or {}).get("source", "found in the cache"))
    return p


def place(entry: Entry, f: HubFile, part: Path, source: str, progress=None) -> Path:
    """Verify ``part`` and rename it into the cache. On a mismatch the part is deleted (a retry starts
    clean) and Mismatch is raised."""
    final = path_of(entry, f)
    try:  # a fresh copy of an unhashed file (a newer 'latest' dump) sets a new record rather than failing
        got = check(part, f, progress=progress)
    except Mismatch:
        part.unlink(missing_ok=True)
        raise
    with open(part, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(part, final)
    record(entry, f, final, got["sha256"], source=source)
    return final


def ensure_dir(entry: Entry, f: HubFile) -> Path:
    d = path_of(entry, f).parent
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the cache directory {str(d)!r}: {e.strerror}",
                        "set DLBOX_HOME to a writable directory") from None  # fmt: skip
    return d


@contextlib.contextmanager
def file_lock(final: Path):
    """One process at a time downloads a given file (two appending to one .part would corrupt it)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.with_name("." + final.name + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
