"""Remote ``--data``: ``s3://bucket/prefix`` becomes a local folder, so everything after reads it as usual.

The copy of ``s3://BUCKET/PREFIX`` lives in ``$DLBOX_HOME/data/s3/BUCKET/PREFIX/``. Every use runs the
hub's incremental sync (:func:`dlbox.hub.sync.sync`, the same as ``dlbox hub sync``) into it with
``delete=True``, so the copy mirrors the remote tree: only new or changed files move, and files removed
remotely go (a renamed class folder must not leave its old name behind as a class). Processes sharing the
copy (the ranks of a distributed run) take turns: the first syncs, the others find it up to date.

Offline (``DLBOX_OFFLINE=1``) the copy is used as it is; without one, the error says where to put the data.
A record in ``$DLBOX_HOME/data/s3/.state/`` tells a complete copy from an interrupted sync, which is refused
offline. ``hub:NAME`` names a catalog download, not a folder: it is refused with the command that makes one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import time
from pathlib import Path

from dlbox.base.errors import UserError

_STATE_DIR = ".state"  # bucket names start with [a-z0-9], so it cannot clash with one


def is_remote(spec: str | Path) -> bool:
    s = str(spec)
    return "://" in s or s.startswith("hub:")


def resolve_data(spec: str | Path) -> Path:
    """A ``--data`` value as a local path: ``s3://`` synced into the cache, a local path as it is; other
    URLs and ``hub:NAME`` are a UserError with a hint."""
    s = str(spec)
    if s.startswith("hub:"):
        name = s[4:] or "NAME"
        raise UserError(f"--data {s} names a hub download, not a data folder",
                        f"download it with `dlbox hub download {name} --extract --to DIR` and pass --data DIR")  # fmt: skip
    if s.startswith("s3://"):
        return sync_s3(s)
    if "://" in s:
        from dlbox.hub.settings import redact

        raise UserError(f"remote data {redact(s)!r} is not supported (only s3://BUCKET/PREFIX is read directly)",
                        "download it first and pass the local folder")  # fmt: skip
    return Path(spec)


def cache_dir(url: str) -> Path:
    """Where the copy of ``s3://BUCKET/PREFIX`` lives: ``$DLBOX_HOME/data/s3/BUCKET/PREFIX``."""
    from dlbox.hub.settings import home, redact
    from dlbox.hub.storage import parse_s3

    u = parse_s3(url)
    parts = [p for p in u.prefix.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise UserError(f"{redact(url)!r}: '.' and '..' are not allowed in the prefix", "use s3://BUCKET/PREFIX")
    return home().joinpath("data", "s3", u.bucket, *parts)


def _state_path(url: str) -> Path:
    from dlbox.hub.settings import home

    return home() / "data" / "s3" / _STATE_DIR / hashlib.sha1(url.encode()).hexdigest()[:20]


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_state(path: Path) -> dict | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _write_state(path: Path, **state) -> None:
    from dlbox.base.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(state, indent=1) + "\n")


def _has_files(d: Path) -> bool:
    return d.is_dir() and any(p.is_file() and not p.name.startswith(".") for p in d.rglob("*"))


def sync_s3(url: str) -> Path:
    """Bring the copy of ``s3://BUCKET/PREFIX`` up to date (or, offline, check there is one); its path."""
    from dlbox.base.progress import log
    from dlbox.hub import settings as hub_settings
    from dlbox.hub.download import _size
    from dlbox.hub.storage import parse_s3
    from dlbox.hub.sync import sync

    settings = hub_settings.load()
    url = str(parse_s3(url))  # normalised: no trailing "/"
    shown = hub_settings.redact(url, settings.s3.secrets())
    dest, state_path = cache_dir(url), _state_path(url)
    if settings.offline:
        return _offline(shown, dest, _read_state(state_path))
    with _locked(state_path.with_suffix(".lock")):
        try:
            # a plan first: nothing is touched until the remote tree is listed and known to be non-empty, so
            # an unreachable endpoint or a mistyped prefix leaves a good copy as it was
            r = sync(url, str(dest), dry_run=True, settings=settings, delete=True)
            files = r["copied_files"] + r["unchanged_files"]
            if not files:
                raise UserError(f"{shown} holds no files", f"check the bucket and prefix; `dlbox hub sync {shown} "
                                "DIR --dry-run` lists what is there")  # fmt: skip
            if r["copied_files"] or r["deleted_files"]:
                _write_state(state_path, url=shown, complete=False, started=time.time())
                r = sync(url, str(dest), settings=settings, delete=True)
                files = r["copied_files"] + r["unchanged_files"]
                _write_state(state_path, url=shown, complete=True, synced=time.time(), files=files)
            elif not (_read_state(state_path) or {}).get("complete"):  # an interrupted sync that had finished
                _write_state(state_path, url=shown, complete=True, synced=time.time(), files=files)
        except UserError as e:
            if _has_files(dest):
                hint = f"{e.hint}; or" if e.hint else "or"
                raise UserError(e.message, f"{hint} set DLBOX_OFFLINE=1 to use the local copy in {dest}") from None
            raise
    if r["copied_files"] or r["deleted_files"]:
        gone = f", {r['deleted_files']} removed (gone remotely)" if r["deleted_files"] else ""
        log(f"data {shown}: synced {r['copied_files']} file(s) ({_size(r['copied_bytes'])}) into {dest}, "
            f"{r['unchanged_files']} up to date{gone}, in {r['seconds']:.1f} s")  # fmt: skip
    else:
        log(f"data {shown}: {files} file(s) up to date in {dest}, nothing moved")
    return dest


def _offline(shown: str, dest: Path, state: dict | None) -> Path:
    from dlbox.base.progress import log

    if state is not None and not state.get("complete"):
        raise UserError(f"offline (DLBOX_OFFLINE=1) and the copy of {shown} in {dest} is incomplete (its last sync "
                        "was interrupted)", "sync it once with the network: unset DLBOX_OFFLINE")  # fmt: skip
    if state is not None and dest.is_dir():
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(state.get("synced", 0)))
        log(f"data {shown}: offline (DLBOX_OFFLINE=1), using the copy synced {when} in {dest}")
        return dest
    if _has_files(dest):
        log(f"data {shown}: offline (DLBOX_OFFLINE=1), using {dest}")
        return dest
    raise UserError(f"offline (DLBOX_OFFLINE=1) and no local copy of {shown}",
                    f"put the data in {dest} (e.g. `dlbox hub sync {shown} {dest}` where there is network), "
                    "or unset DLBOX_OFFLINE")  # fmt: skip
