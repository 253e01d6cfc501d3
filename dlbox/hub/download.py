"""`dlbox hub download` and `dlbox hub add`: catalog files into the cache, and from there where you want them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError
from dlbox.base.fileio import atomic_write_text
from dlbox.base.progress import log
from dlbox.hub import cache, catalog, fetch
from dlbox.hub import settings as hub_settings
from dlbox.hub.catalog import Entry, HubFile
from dlbox.hub.extract import extract, is_archive
from dlbox.hub.settings import HubSettings, home


def _select(entry: Entry, only: list[str] | None) -> list[HubFile]:
    return [entry.file(n) for n in only] if only else list(entry.files)


def _link_or_copy(src: Path, dest: Path) -> str:
    """Hard-link when on the same file system (no second copy of a 20 GB archive), else copy atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and dest.stat().st_size == src.stat().st_size and os.path.samefile(src, dest):
        return "linked"
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
        how = "linked"
    except OSError:
        shutil.copyfile(src, tmp)
        how = "copied"
    os.replace(tmp, dest)
    return how


def _extract_once(archive: Path, sha256: str, target: Path) -> dict[str, Any]:
    """Extract unless this very archive (same sha256) was completely extracted into target before."""
    marker = target / ".dlbox-extracted" / f"{archive.name}.sha256"
    if marker.is_file() and marker.read_text().strip() == sha256:
        return {"archive": str(archive), "target": str(target), "skipped": "already extracted"}
    out = extract(archive, target, on_start=lambda: log(f"extracting {archive.name} into {target}"))
    atomic_write_text(marker, sha256 + "\n")  # written last: an interrupted extraction is redone
    return out


def download(name: str, to: str | Path | None = None, extract_archives: bool = False, only: list[str] | None = None,
             settings: HubSettings | None = None, extra: list[str | Path] | None = None) -> dict[str, Any]:
    """Fetch an entry's files into the cache; with ``to`` also place them there (hard link or copy), and with
    ``extract_archives`` extract .tar/.tar.gz/.tgz/.zip files into ``to`` (default
    ``$DLBOX_HOME/extracted/<name>``). Returns a summary for --json."""
    settings = settings or hub_settings.load()
    entry = catalog.get(name, extra)
    files = _select(entry, only)
    got = fetch.fetch(entry, files, settings)
    index = cache.read_index()
    rows = []
    target = Path(to).expanduser() if to else None
    if extract_archives and target is None:
        target = home() / "extracted" / entry.name
    for f in files:
        path, source = got[f.name]
        rec = index.get(cache.key_of(entry, f), {})
        row: dict[str, Any] = {"name": f.name, "path": str(path), "size": path.stat().st_size,
                               "sha256": rec.get("sha256"), "source": source}  # fmt: skip
        if target is not None and extract_archives and is_archive(f.name):
            row["extracted"] = _extract_once(path, rec.get("sha256") or "", target)
        elif to is not None:
            dest = target / f.name
            row["placed"] = {"path": str(dest), "how": _link_or_copy(path, dest)}
        rows.append(row)
    return {"name": entry.name, "kind": entry.kind, "files": rows, "to": str(target) if target else None,
            "settings": settings.describe()}  # fmt: skip


def render_download(r: dict[str, Any]) -> str:
    lines = [f"hub:{r['name']}: {len(r['files'])} file(s)"]
    for row in r["files"]:
        where = row["path"]
        if "placed" in row:
            where = f"{row['placed']['path']} ({row['placed']['how']} from the cache)"
        if "extracted" in row:
            ex = row["extracted"]
            where = f"extracted into {ex['target']}" + (" (already)" if "skipped" in ex else f" ({ex['files']} files)")
        lines.append(f"  {row['name']}  {_size(row['size'])}  {where}  [from {row['source']}]")
    return "\n".join(lines)


def add(name: str, file: str | Path, as_name: str | None = None, link: bool = False,
        extra: list[str | Path] | None = None) -> dict[str, Any]:
    """Register a file the user already has as ``name``'s file (checked against the catalog hash first)."""
    entry = catalog.get(name, extra)
    src = Path(file).expanduser()
    if not src.is_file():
        raise UserError(f"{str(src)!r} is not a file", "give the path of the downloaded file with --file")
    if link and src.is_symlink():  # a hard link would follow it to whatever it names (/etc/passwd...)
        raise UserError(f"--file {str(src)!r} is a symbolic link (to {os.path.realpath(src)!r}); --link links "
                        "only the file itself", "pass the file it points to, or leave out --link to copy it")  # fmt: skip
    f = _which_file(entry, src, as_name)
    cache.ensure_dir(entry, f)
    final = cache.path_of(entry, f)
    part = cache.part_of(final)
    with cache.file_lock(final):
        part.unlink(missing_ok=True)
        if link:
            try:
                os.link(src, part)
            except OSError as e:
                raise UserError(f"cannot hard-link {str(src)!r} into {final.parent}: {e.strerror}",
                                "leave out --link to copy it (or put DLBOX_HOME on the same disk)") from None  # fmt: skip
        else:
            _copy_with_bar(src, part, f"hub add {f.name}")
        try:
            path = cache.place(entry, f, part, source=f"added from {src}")
        except cache.Mismatch as e:
            raise UserError(f"{str(src)!r} is not {f.name} of hub:{entry.name}: {e.what}",
                            "check that it is the right file and version (nothing was added)") from None  # fmt: skip
    rec = cache.recorded(entry, f) or {}
    return {"name": entry.name, "file": f.name, "path": str(path), "sha256": rec.get("sha256"),
            "verified_against": _hash_kind(f), "linked": link}  # fmt: skip


def _copy_with_bar(src: Path, dest: Path, desc: str) -> None:
    from dlbox.base.progress import bar

    with open(src, "rb") as fi, open(dest, "wb") as fo, bar(src.stat().st_size, desc, unit="B", unit_scale=True) as pbar:
        while chunk := fi.read(1 << 20):
            fo.write(chunk)
            pbar.update(len(chunk))


def _hash_kind(f: HubFile) -> str:
    if f.sha256:
        return "sha256 from the catalog"
    if f.sha256_prefix:
        return "the sha256 prefix in the file name"
    if f.md5:
        return "md5 from the catalog"
    return "nothing (no hash is published): its sha256 is now recorded"


def _which_file(entry: Entry, src: Path, as_name: str | None) -> HubFile:
    if as_name:
        return entry.file(as_name)
    if len(entry.files) == 1:
        return entry.files[0]
    for f in entry.files:
        if f.name == src.name:
            return f
    raise UserError(f"{src.name!r} is not one of the files of hub:{entry.name}",
                    f"say which with --as: {', '.join(f.name for f in entry.files)}")  # fmt: skip


def render_add(r: dict[str, Any]) -> str:
    return f"added {r['file']} to hub:{r['name']} at {r['path']} (verified against {r['verified_against']})"


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
