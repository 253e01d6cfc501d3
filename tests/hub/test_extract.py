"""Archives that try to write outside the target are refused, and nothing is written anywhere."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from dlbox.base.errors import UserError
from dlbox.hub.extract import extract
from tests.hub.conftest import listdir_all, tree


def _tar(path: Path, members: list[tuple[str, str, object]], mode: str = "w:gz") -> Path:
    """members: (name, kind, content-or-link target); kind: file, dir, symlink, hardlink, chardev, fifo."""
    with tarfile.open(path, mode) as tf:
        for name, kind, arg in members:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                data = arg if isinstance(arg, bytes) else str(arg).encode()
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                       "chardev": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]  # fmt: skip
            if kind in ("symlink", "hardlink"):
                ti.linkname = str(arg)
            tf.addfile(ti)
    return path


def _zip(path: Path, members: list[tuple[str, bytes]], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            zi = zipfile.ZipInfo(name)
            zi.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(zi, target)
    return path


@pytest.fixture
def place(tmp_path):
    """(work dir holding the target, target); a sibling 'outside' file shows nothing was written next to it."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("untouched")
    return work, work / "target"


def _refused(archive: Path, target: Path, work: Path, *fragments: str) -> None:
    before = listdir_all(work.parent)
    with pytest.raises(UserError) as e:
        extract(archive, target)
    for frag in fragments:
        assert frag in str(e.value)
    after = listdir_all(work.parent)
    assert after - before <= {os.path.relpath(target, work.parent)}  # at most the empty target itself
    assert not target.exists() or list(target.iterdir()) == []
    assert (work / "keep.txt").read_text() == "untouched"


def test_dotdot_member_is_refused(place, tmp_path):
    work, target = place
    arc = _tar(tmp_path / "evil.tar.gz", [("ok.txt", "file", "fine"), ("../escaped.txt", "file", "pwned")])
    _refused(arc, target, work, "'../escaped.txt'", "outside the target")


def test_nested_dotdot_member_is_refused(place, tmp_path):
    work, target = place
    arc = _tar(tmp_path / "evil.tgz", [("a/b/../../../escaped.txt", "file", "pwned")])
    _refused(arc, target, work, "outside the target")


def test_absolute_path_member_is_refused(place, tmp_path):
    work, target = place
    arc = _tar(tmp_path / "abs.tar", [(str(work / "abs.txt"), "file", "pwned")], mode="w")
    _refused(arc, target, work, "absolute path")


def test_symlink_pointing_outside_is_refused(place, tmp_path):
    work, target = place
    arc = _tar(tmp_path / "link.tar.gz", [("data/link", "symlink", "../../keep.txt")])
    _refused(arc, target, work, "symlink", "outside the target")


def test_absolute_symlink_is_refused(place, tmp_path):
    work, target = place
    arc = _tar(tmp_path / "abslink.tar.gz", [("link", "symlink", "/etc")])
    _refused(arc, target, work, "symlink to '/etc'")


def test_file_written_through_the_archives_own_symlink_is_refused(place, tmp_path):
    work, target = place
    arc = _tar(tmp_path / "chain.tar.gz", [("d", "symlink", "."), ("d/x.txt", "file", "via link")])
    _refused(arc, target, work, "which the archive makes a symlink")


def test_hardlink_pointing_outside_is_refused(place, tmp_path):
    work, target = place
    arc = _tar(tmp_path / "hard.tar.gz", [("h", "hardlink", "../keep.txt")])
    _refused(arc, target, work, "hard link", "outside the target")


@pytest.mark.parametrize("kind", ["chardev", "fifo"])
def test_device_and_fifo_members_are_refused(place, tmp_path, kind):
    work, target = place
    arc = _tar(tmp_path / f"{kind}.tar", [("dev", kind, None)], mode="w")
    _refused(arc, target, work, "device, FIFO or other special file")


def test_zip_dotdot_and_absolute_entries_are_refused(place, tmp_path):
    work, target = place
    _refused(_zip(tmp_path / "a.zip", [("ok.txt", b"x"), ("../z.txt", b"pwned")]), target, work, "outside the target")
    _refused(_zip(tmp_path / "b.zip", [("/tmp/z.txt", b"pwned")]), target, work, "absolute path")


def test_zip_symlink_pointing_outside_is_refused(place, tmp_path):
    work, target = place
    _refused(_zip(tmp_path / "l.zip", [("a.txt", b"x")], {"link": "../../keep.txt"}), target, work, "symlink")


def test_an_existing_symlink_in_the_target_does_not_redirect_writes(place, tmp_path):
    work, target = place
    outside = tmp_path / "outside"
    outside.mkdir()
    target.mkdir()
    os.symlink(outside, target / "data")  # left there before (or by someone else)
    arc = _tar(tmp_path / "t.tar.gz", [("data/x.txt", "file", "pwned")])
    with pytest.raises(UserError, match="through an existing symlink"):
        extract(arc, target)
    assert list(outside.iterdir()) == []


def test_a_normal_archive_with_inner_links_extracts_exactly(place, tmp_path):
    _, target = place
    arc = _tar(tmp_path / "good.tar.gz", [
        ("corpus/", "dir", None), ("corpus/data/a.txt", "file", "alpha"), ("corpus/data/b.txt", "file", "beta"),
        ("corpus/legacy/a.txt", "symlink", "../data/a.txt"), ("corpus/copy.txt", "hardlink", "corpus/data/b.txt"),
    ])  # fmt: skip
    r = extract(arc, target)
    assert tree(target) == {"corpus/data/a.txt": b"alpha", "corpus/data/b.txt": b"beta",
                            "corpus/legacy/a.txt": b"alpha", "corpus/copy.txt": b"beta"}  # fmt: skip
    assert (target / "corpus/legacy/a.txt").is_symlink() and r["members"] == 5


def test_a_normal_zip_extracts_exactly(place, tmp_path):
    _, target = place
    extract(_zip(tmp_path / "ok.zip", [("val2017/1.jpg", b"\xff\xd8"), ("annotations/x.json", b"{}")]), target)
    assert tree(target) == {"val2017/1.jpg": b"\xff\xd8", "annotations/x.json": b"{}"}


def test_a_truncated_archive_is_a_clear_error(tmp_path):
    arc = _tar(tmp_path / "full.tar.gz", [("a.txt", "file", os.urandom(100_000))])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(arc.read_bytes()[:5000])
    with pytest.raises(UserError, match="download it again"):
        extract(cut, tmp_path / "t")


def test_a_symlink_that_escapes_through_another_of_its_links_is_refused_before_any_write(place, tmp_path):
    """`x -> .` is inside, `y -> x/../keep.txt` looks inside once normalised but leads out through x: refused,
    and the members before it (a file, x itself) were not written either."""
    work, target = place
    arc = _tar(tmp_path / "chain2.tar.gz", [("a.txt", "file", "first"), ("x", "symlink", "."),
                                            ("y", "symlink", "x/../keep.txt")])  # fmt: skip
    _refused(arc, target, work, "'y'", "outside the target")


def test_a_hard_link_to_a_member_that_is_not_a_file_writes_nothing(place, tmp_path):
    work, target = place
    arc = _tar(tmp_path / "hard2.tar.gz", [("a.txt", "file", "first"), ("d/", "dir", None), ("h", "hardlink", "d")])
    _refused(arc, target, work, "hard link", "not a file in the archive")


def test_hub_add_link_refuses_a_symlink(tmp_path, monkeypatch):
    """--link hard-links the file given; a symbolic link would have it store whatever the link names."""
    from dlbox.hub.download import add

    monkeypatch.setenv("DLBOX_HOME", str(tmp_path / "home"))
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    (tmp_path / "lenet.pt").symlink_to(secret)
    with pytest.raises(UserError, match="symbolic link"):
        add("mnist", tmp_path / "lenet.pt", link=True)
    assert not any(p.is_file() and p.samefile(secret) for p in (tmp_path / "home").rglob("*") if p.is_file())
