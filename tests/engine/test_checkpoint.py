"""Checkpoints: atomic writes keep the old file on failure; bad files give clear errors."""

from __future__ import annotations

import pytest
import torch

from dlbox.base.errors import CheckpointError
from dlbox.engine import checkpoint


def _state(v: float) -> dict:
    return {"model": {"w": torch.full((3,), v)}, "epoch": 1}


def test_round_trip(tmp_path):
    checkpoint.save(_state(1.0), tmp_path / "last.pt")
    loaded = checkpoint.load(tmp_path / "last.pt")
    assert torch.equal(loaded["model"]["w"], torch.ones(3)) and loaded["format"] == checkpoint.FORMAT


def test_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    import errno

    from dlbox.base.fileio import WriteError

    path = tmp_path / "last.pt"
    checkpoint.save(_state(1.0), path)

    def disk_full(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(WriteError) as e:
        checkpoint.save(_state(2.0), path)
    monkeypatch.undo()
    msg = str(e.value)
    assert str(path) in msg and "No space left on device" in msg and "free there" in msg and "\n" not in msg
    assert torch.equal(checkpoint.load(path)["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_a_real_full_disk_is_one_line_too(tmp_path, monkeypatch):
    """/dev/full fails every write with ENOSPC: the path through torch's zip writer, not a mock of it."""
    import builtins

    from dlbox.base.fileio import WriteError

    real_open = builtins.open

    def open_full(file, mode="r", *a, **k):
        return real_open("/dev/full", mode, *a, **k) if "w" in mode and str(file).endswith(".tmp") else real_open(file, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", open_full)
    with pytest.raises(WriteError, match="No space left on device"):
        checkpoint.save(_state(2.0), tmp_path / "last.pt")


def test_keep_previous_moves_the_replaced_file_aside(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save(_state(1.0), path, keep_previous=True)
    checkpoint.save(_state(2.0), path, keep_previous=True)
    assert torch.equal(checkpoint.load(checkpoint.previous_of(path))["model"]["w"], torch.ones(3))
    assert torch.equal(checkpoint.load(path)["model"]["w"], torch.full((3,), 2.0))


def test_best_is_a_link_to_last_that_keeps_its_contents_when_last_is_replaced(tmp_path):
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    checkpoint.save(_state(1.0), last, keep_previous=True)
    checkpoint.copy(last, best)
    assert best.stat().st_ino == last.stat().st_ino  # no second copy on disk
    checkpoint.save(_state(2.0), last, keep_previous=True)
    assert torch.equal(checkpoint.load(best)["model"]["w"], torch.ones(3))
    assert torch.equal(checkpoint.load(last)["model"]["w"], torch.full((3,), 2.0))


def test_best_is_copied_where_the_file_system_has_no_hard_links(tmp_path, monkeypatch):
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    checkpoint.save(_state(1.0), last)
    monkeypatch.setattr(checkpoint.os, "link", lambda *a: (_ for _ in ()).throw(PermissionError(1, "no links")))
    checkpoint.copy(last, best)
    assert best.stat().st_ino != last.stat().st_ino
    assert torch.equal(checkpoint.load(best)["model"]["w"], torch.ones(3))


def test_truncated_checkpoint_is_named_with_the_previous_good_one(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save(_state(1.0), path, keep_previous=True)
    checkpoint.save(_state(2.0), path, keep_previous=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(path)
    msg = str(e.value)
    assert "truncated or corrupt" in msg and "last.prev.pt" in msg
    assert torch.equal(checkpoint.load(checkpoint.previous_of(path))["model"]["w"], torch.ones(3))


def test_plain_state_dict_is_not_taken_for_a_checkpoint(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match="not a dlbox checkpoint"):
        checkpoint.load(tmp_path / "weights.pt")


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_code_is_refused(tmp_path, capsys):
    torch.save({"format": checkpoint.FORMAT, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused for safety"):
        checkpoint.load(tmp_path / "evil.pt")
    assert "code ran" not in capsys.readouterr().out


def test_random_bytes_are_reported_not_crashed_on(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError):
        checkpoint.load(tmp_path / "x.pt")
