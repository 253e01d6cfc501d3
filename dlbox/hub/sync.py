"""`dlbox hub sync SRC DST` (a tree between local disk and object storage) and `dlbox hub mirror` (catalog
entries into a mirror that `DLBOX_MIRROR` can then point at).

Sync is incremental. A file is copied when the destination lacks it or its size differs. Otherwise:
local -> s3 skips it when the local file is not newer than the object, or when its ETag (recomputed
locally: the md5, or the multipart md5 of our part size) equals the object's; s3 -> local sets each
downloaded file's mtime to the object's LastModified, and skips a file whose mtime still equals it (or
whose content has the same ETag); s3 -> s3 compares ETags; local -> local compares mtimes, then content.
Nothing is deleted in the destination, except with ``delete=True`` (a local destination only; the data
layer's cache of ``--data s3://...`` uses it so the copy mirrors the remote tree). Writes into a local tree go
through a temporary file and a rename.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError
from dlbox.hub import cache, catalog, fetch
from dlbox.hub import settings as hub_settings
from dlbox.hub.download import _size
from dlbox.hub.settings import HubSettings, redact
from dlbox.hub.storage import LocalStore, Obj, S3Store, etag_of, is_s3, open_store


def _check_online(settings: HubSettings, *locations: str) -> None:
    for loc in locations:
        if settings.offline and is_s3(loc):
            raise UserError(f"offline (DLBOX_OFFLINE=1): {redact(loc)} is object storage, on the network",
                            "unset DLBOX_OFFLINE (or set it to 0) to use S3")  # fmt: skip


def _needs_copy(src, dst, s: Obj, d: Obj | None) -> tuple[bool, str]:
    if d is None:
        return True, "new"
    if d.size != s.size:
        return True, "size differs"
    if isinstance(src, LocalStore) and isinstance(dst, S3Store):
        if s.mtime <= d.mtime:
            return False, "unchanged (not newer than the object)"
        return (etag_of(src.path(s.key)) != d.etag), "content differs (ETag)"
    if isinstance(src, S3Store) and isinstance(dst, LocalStore):
        if abs(d.mtime - s.mtime) < 1e-3:
            return False, "unchanged (mtime = LastModified)"
        return (etag_of(dst.path(d.key)) != s.etag), "content differs (ETag)"
    if isinstance(src, S3Store) and isinstance(dst, S3Store):
        return (s.etag != d.etag), "content differs (ETag)"
    if abs(d.mtime - s.mtime) < 1e-3:
        return False, "unchanged (same size and mtime)"
    return (etag_of(src.path(s.key)) != etag_of(dst.path(d.key))), "content differs"


def _transfer(src, dst, o: Obj, progress) -> None:
    if isinstance(src, LocalStore):
        dst.upload(src.path(o.key), o.key, progress)
    elif isinstance(dst, LocalStore):
        dest = dst.path(o.key)
        src.download(o.key, dest, progress)
        os.utime(dest, (o.mtime, o.mtime))  # the next sync recognises it without reading it
    else:
        dst.copy_from(src, o.key, progress)


def _delete_local(store: LocalStore, key: str) -> None:
    """Remove a destination file, then the folders it leaves empty (an empty class folder is an error later)."""
    path = store.path(key)
    path.unlink(missing_ok=True)
    parent = path.parent
    while parent != store.root and parent.is_relative_to(store.root):
        try:
            parent.rmdir()
        except OSError:  # not empty
            break
        parent = parent.parent


def sync(src: str, dst: str, dry_run: bool = False, settings: HubSettings | None = None,
         delete: bool = False) -> dict[str, Any]:  # fmt: skip
    """Copy the tree ``src`` to ``dst`` (local dir or s3://bucket/prefix, either way); returns a summary.

    ``delete=True`` (a local ``dst`` only) also removes the destination files that ``src`` lacks, first, so
    ``dst`` ends up a mirror of ``src``."""
    settings = settings or hub_settings.load()
    _check_online(settings, src, dst)
    t0 = time.perf_counter()
    s, d = open_store(src, settings), open_store(dst, settings)
    if delete and not isinstance(d, LocalStore):
        raise ValueError("sync(delete=True) needs a local destination")
    if isinstance(s, LocalStore) and not s.root.is_dir():
        raise UserError(f"{str(s.root)!r} is not a directory", "sync copies a directory tree: check SRC")
    src_objs = s.list()
    dst_objs = d.list()
    extra = sorted(set(dst_objs) - set(src_objs)) if delete else []
    if extra and not dry_run:
        for key in extra:  # before copying: a stale file may sit where a new folder goes, or the other way
            _delete_local(d, key)
    plan, skipped = [], 0
    for key in sorted(src_objs):
        copy, _why = _needs_copy(s, d, src_objs[key], dst_objs.get(key))
        if copy:
            plan.append(src_objs[key])
        else:
            skipped += 1
    total = sum(o.size for o in plan)
    if plan and not dry_run:
        progress = fetch.Progress(total, "sync")
        try:
            with ThreadPoolExecutor(max_workers=settings.workers) as pool:
                for fut in [pool.submit(_transfer, s, d, o, progress) for o in plan]:
                    fut.result()
        finally:
            progress.close()
    return {
        "src": redact(str(s)), "dst": redact(str(d)), "dry_run": dry_run,
        "copied": [o.key for o in plan], "copied_files": len(plan), "copied_bytes": total,
        "unchanged_files": skipped, "deleted": extra, "deleted_files": len(extra),
        "skipped_links": getattr(s, "skipped_links", []),
        "seconds": round(time.perf_counter() - t0, 3),
    }  # fmt: skip


def render_sync(r: dict[str, Any]) -> str:
    verb = "would copy" if r["dry_run"] else "copied"
    lines = [f"{r['src']} -> {r['dst']}: {verb} {r['copied_files']} file(s) ({_size(r['copied_bytes'])}), "
             f"{r['unchanged_files']} unchanged, in {r['seconds']:.1f} s"]  # fmt: skip
    if r.get("deleted_files"):
        lines.append(f"  {'would delete' if r['dry_run'] else 'deleted'} {r['deleted_files']} file(s) the source lacks")
    lines += [f"  {k}" for k in r["copied"][:20]]
    if len(r["copied"]) > 20:
        lines.append(f"  ... and {len(r['copied']) - 20} more")
    if r["skipped_links"]:
        lines.append(f"  not copied (symlinks or special files): {', '.join(r['skipped_links'][:10])}")
    return "\n".join(lines)


def mirror(names: list[str], to: str, settings: HubSettings | None = None, extra=None) -> dict[str, Any]:
    """Put entries' files into a mirror (s3://bucket/prefix or a directory) as ``<entry>/<file>``: fetched
    into the cache first (through the usual sources), verified, then uploaded unless already there."""
    settings = settings or hub_settings.load()
    _check_online(settings, to)
    entries = [catalog.get(n, extra) for n in names]
    dest = open_store(to, settings)
    rows = []
    for entry in entries:
        got = fetch.fetch(entry, list(entry.files), settings)
        index = cache.read_index()
        for f in entry.files:
            path = Path(got[f.name][0])
            sha = index.get(cache.key_of(entry, f), {}).get("sha256")
            key = f"{entry.name}/{f.name}"
            size = path.stat().st_size
            if _mirror_has(dest, key, path, size, sha):
                rows.append({"entry": entry.name, "file": f.name, "key": key, "size": size, "action": "present"})
                continue
            progress = fetch.Progress(size, f"mirror {f.name}")
            try:
                if isinstance(dest, S3Store):
                    dest.upload(path, key, progress, metadata={"sha256": sha} if sha else None)
                else:
                    dest.upload(path, key, progress)
            finally:
                progress.close()
            rows.append({"entry": entry.name, "file": f.name, "key": key, "size": size, "action": "uploaded"})
    up = [r for r in rows if r["action"] == "uploaded"]
    return {"to": redact(str(dest)), "files": rows, "uploaded_files": len(up),
            "uploaded_bytes": sum(r["size"] for r in up), "present_files": len(rows) - len(up),
            "use_with": f"DLBOX_MIRROR={redact(to)}"}  # fmt: skip


def _mirror_has(dest, key: str, path: Path, size: int, sha: str | None) -> bool:
    if isinstance(dest, S3Store):
        head = dest.head(key)
        if head is None or head.size != size:
            return False
        return bool(sha and head.sha256 == sha) or head.etag == etag_of(path)
    target = dest.path(key)
    if not target.is_file() or target.stat().st_size != size:
        return False
    return abs(target.stat().st_mtime - path.stat().st_mtime) < 1e-3 or cache.digests(target)["sha256"] == sha


def render_mirror(r: dict[str, Any]) -> str:
    lines = [f"mirror {r['to']}: uploaded {r['uploaded_files']} file(s) ({_size(r['uploaded_bytes'])}), "
             f"{r['present_files']} already there"]  # fmt: skip
    lines += [f"  {row['action']:8s} {row['key']}" for row in r["files"]]
    lines.append(f"use it with: {r['use_with']}")
    return "\n".join(lines)
