"""Extracting .tar, .tar.gz, .tgz and .zip archives without letting them write outside the target.

Every member is checked before anything is written: no absolute path, no ``..`` leaving the target, no
device, FIFO or other special file, no link whose target lies outside, no member stored under a path that
the archive itself makes a symlink. Then, while writing, each destination is resolved again on the real
file system (``realpath``), so a symlink already present in the target cannot redirect a write either, and
the archive's own symlinks are created last. A refused archive writes nothing.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from dlbox.base.errors import UserError

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass
class Member:
    name: str  # "/"-separated, as stored
    kind: str  # file, dir, symlink, hardlink
    link: str | None = None
    mode: int = 0o644
    source: object = None  # the TarInfo / ZipInfo


def _refuse(archive: Path, name: str, why: str) -> UserError:
    return UserError(f"refusing to extract {archive.name}: member {name!r} {why}",
                     "the archive is malformed or malicious; nothing was extracted")  # fmt: skip


def _inside(rel: str) -> bool:
    """A relative "/" path that stays inside the target once normalised."""
    norm = posixpath.normpath(rel)
    return not (norm == ".." or norm.startswith("../") or posixpath.isabs(norm))


def _check_name(archive: Path, name: str) -> str:
    if not name or "\x00" in name:
        raise _refuse(archive, name, "has an empty or invalid name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or name.startswith("\\"):
        raise _refuse(archive, name, "has an absolute path")
    if "\\" in name:
        name = name.replace("\\", "/")
    if not _inside(name):
        raise _refuse(archive, name, "would be written outside the target ('..')")
    return posixpath.normpath(name)


def _tar_members(archive: Path, tf: tarfile.TarFile) -> list[Member]:
    out = []
    for ti in tf.getmembers():
        name = _check_name(archive, ti.name)
        if ti.issym():
            target = ti.linkname
            if posixpath.isabs(target) or not _inside(posixpath.join(posixpath.dirname(name), target)):
                raise _refuse(archive, ti.name, f"is a symlink to {target!r}, outside the target")
            out.append(Member(name, "symlink", target, source=ti))
        elif ti.islnk():
            target = ti.linkname
            if posixpath.isabs(target) or not _inside(target):
                raise _refuse(archive, ti.name, f"is a hard link to {target!r}, outside the target")
            out.append(Member(name, "hardlink", posixpath.normpath(target), source=ti))
        elif ti.isdir():
            out.append(Member(name, "dir", mode=ti.mode, source=ti))
        elif ti.isreg():
            out.append(Member(name, "file", mode=ti.mode, source=ti))
        else:
            raise _refuse(archive, ti.name, "is a device, FIFO or other special file")
    return out


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> list[Member]:
    out = []
    for zi in zf.infolist():
        name = _check_name(archive, zi.filename)
        mode = zi.external_attr >> 16
        if stat.S_ISLNK(mode):
            target = zf.read(zi).decode("utf-8", "replace")
            if posixpath.isabs(target) or not _inside(posixpath.join(posixpath.dirname(name), target)):
                raise _refuse(archive, zi.filename, f"is a symlink to {target!r}, outside the target")
            out.append(Member(name, "symlink", target, source=zi))
        elif zi.is_dir():
            out.append(Member(name, "dir", source=zi))
        elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: the zip tool stored permissions only
            raise _refuse(archive, zi.filename, "is a device, FIFO or other special file")
        else:
            out.append(Member(name, "file", mode=(mode & 0o777) or 0o644, source=zi))
    return out


def _check_through_links(archive: Path, members: list[Member]) -> None:
    """A member stored below one of the archive's own symlinks could be written through it: refused."""
    links = {m.name for m in members if m.kind == "symlink"}
    if not links:
        return
    for m in members:
        parts = m.name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in links:
                raise _refuse(archive, m.name, f"lies under {'/'.join(parts[:i])!r}, which the archive makes a symlink")


def _safe_dest(archive: Path, root: Path, name: str) -> Path:
    """The real destination of ``name``: its parent directories are resolved on disk and must stay in root."""
    dest = root.joinpath(*name.split("/"))
    parent = Path(os.path.realpath(dest.parent))
    if parent != root and root not in parent.parents:
        raise _refuse(archive, name, "would be written outside the target (through an existing symlink)")
    return parent / dest.name


def _resolve(root: Path, rel: str, links: dict[str, str], depth: int = 0) -> Path:
    """Where ``rel`` (a "/" path below ``root``) will lead once the archive's own symlinks (``links``: name ->
    target) exist, following those and the links already on disk, before anything is written."""
    if depth > 40:
        raise OSError("too many levels of symbolic links")
    cur = root
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            cur = cur.parent
            continue
        nxt = cur / part
        name = nxt.relative_to(root).as_posix() if (nxt == root or root in nxt.parents) else None
        if name is not None and name in links:
            cur = _resolve(root, posixpath.join(posixpath.dirname(name), links[name]), links, depth + 1)
        elif nxt.is_symlink():
            cur = Path(os.path.realpath(nxt))
        else:
            cur = nxt
    return cur


def _precheck(archive: Path, root: Path, members: list[Member]) -> None:
    """Every member's destination and every link target, checked before the first write: a refused archive
    leaves nothing in the target (not even the members before the bad one)."""

    def inside(p: Path) -> bool:
        return p == root or root in p.parents

    links = {m.name: m.link for m in members if m.kind == "symlink"}
    files = {m.name for m in members if m.kind == "file"}
    for m in members:
        if m.kind in ("dir", "file"):
            _safe_dest(archive, root, m.name)
        elif m.kind == "hardlink":
            if m.link not in files:
                raise _refuse(archive, m.name, f"is a hard link to {m.link!r}, which is not a file in the archive")
            _safe_dest(archive, root, m.name)
        else:
            try:
                parent = _resolve(root, posixpath.dirname(m.name), {})
                where = _resolve(root, posixpath.join(posixpath.dirname(m.name), m.link), links)
            except OSError:
                raise _refuse(archive, m.name, f"is a symlink to {m.link!r} that loops") from None
            if not inside(parent) or not inside(where):
                raise _refuse(archive, m.name, f"is a symlink to {m.link!r}, outside the target")


def _write(src, dest: Path, mode: int) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        dest.unlink()  # never write through a link left in the target
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as fo:
        shutil.copyfileobj(src, fo, 1 << 20)
    os.chmod(dest, (mode & 0o777 & ~0o022) | 0o600)  # no setuid/setgid/world-writable from an archive


def extract(archive: str | Path, target: str | Path, on_start=None) -> dict:
    """Extract ``archive`` into ``target`` (created); returns {archive, target, members, files}. ``on_start()``
    is called once the archive is read and every member checked (a refused file prints nothing before its
    one error line)."""
    archive, target = Path(archive), Path(target)
    lower = archive.name.lower()
    if not is_archive(lower):
        raise UserError(f"{archive.name} is not an archive dlbox extracts", f"supported: {', '.join(ARCHIVE_SUFFIXES)}")
    try:
        if lower.endswith(".zip"):
            handle: zipfile.ZipFile | tarfile.TarFile = zipfile.ZipFile(archive)
            members = _zip_members(archive, handle)
        else:
            handle = tarfile.open(archive, "r:*")
            members = _tar_members(archive, handle)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        # tarfile's "r:*" lists every compression it tried, one per line: one line here
        why = "not a tar archive, or a damaged one" if isinstance(e, tarfile.ReadError) else str(e).splitlines()[0]
        raise UserError(f"cannot read archive {str(archive)!r}: {why}", "download it again (it may be truncated)") from None
    with handle:
        _check_through_links(archive, members)
        _precheck(archive, Path(os.path.realpath(target)), members)
        if on_start is not None:
            on_start()
        target.mkdir(parents=True, exist_ok=True)
        root = Path(os.path.realpath(target))
        files = 0
        try:
            for m in members:  # directories and files first; links at the end
                if m.kind == "dir":
                    d = _safe_dest(archive, root, m.name)
                    if d.is_symlink():
                        d.unlink()
                    d.mkdir(parents=True, exist_ok=True)
                elif m.kind == "file":
                    _safe_dest(archive, root, m.name).parent.mkdir(parents=True, exist_ok=True)
                    dest = _safe_dest(archive, root, m.name)
                    src = handle.open(m.source) if isinstance(handle, zipfile.ZipFile) else handle.extractfile(m.source)
                    with src:
                        _write(src, dest, m.mode)
                    files += 1
            for m in members:
                if m.kind == "hardlink":
                    src_path = _safe_dest(archive, root, m.link)
                    if not src_path.is_file() or src_path.is_symlink():
                        raise _refuse(archive, m.name, f"is a hard link to {m.link!r}, which is not a file in the archive")
                    dest = _safe_dest(archive, root, m.name)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    if dest.exists() or dest.is_symlink():
                        dest.unlink()
                    shutil.copyfile(src_path, dest)
                    files += 1
            for m in members:
                if m.kind == "symlink":
                    dest = _safe_dest(archive, root, m.name)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    resolved = Path(os.path.realpath(dest.parent / m.link))
                    if resolved != root and root not in resolved.parents:
                        raise _refuse(archive, m.name, f"is a symlink to {m.link!r}, outside the target")
                    if dest.is_symlink() or dest.is_file():
                        dest.unlink()
                    os.symlink(m.link, dest)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
            raise UserError(f"archive {str(archive)!r} is damaged: {e}", "download it again") from None
    return {"archive": str(archive), "target": str(target), "members": len(members), "files": files}
