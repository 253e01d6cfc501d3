"""Damaged and foreign files given as checkpoints or weights: one line naming the file, never torch's traceback
(a checkpoint cut short gives OSError EINVAL inside torch, a text file KeyError, a WAV file IndexError)."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import torch

from dlbox.base.errors import CheckpointError
from dlbox.engine import checkpoint
from tests.conftest import assert_user_error, run_main


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "last.pt"
    g = torch.Generator().manual_seed(0)
    checkpoint.save({"model": {"w": torch.randn(160, 160, generator=g)}, "rng": torch.randn(4000, generator=g)}, path)
    return path.read_bytes()


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(1600, np.int16).tobytes())
    return buf.getvalue()


def _damaged(good: bytes) -> dict[str, bytes]:
    return {"cut-to-50kb": good[:50_000], "cut-in-half": good[: len(good) // 2], "cut-by-10": good[:-10],
            "first-100-bytes": good[:100], "empty": b"", "text": b"epochs: 3\nlr: 0.1\n", "wav": _wav(),
            "zeros": bytes(4096), "random": np.random.default_rng(0).bytes(70_000)}  # fmt: skip


DAMAGE = ["cut-to-50kb", "cut-in-half", "cut-by-10", "first-100-bytes", "empty", "text", "wav", "zeros", "random"]


@pytest.mark.parametrize("damage", DAMAGE)
def test_the_loader_names_the_file_for_every_damage(damage, good, tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(_damaged(good)[damage])
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert "not plain tensors" not in str(e.value)  # a damaged file is not reported as unsafe


def test_a_text_file_is_called_a_text_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(CheckpointError, match="is a text file"):
        checkpoint.load(tmp_path / "notes.txt")


# commands that read a run or checkpoint first: (argv before the file, argv after it)
READERS = [(["detect", "export"], []), (["detect", "predict"], ["img.png"]), (["asr", "transcribe"], ["a.wav"]),
           (["asr", "export"], []), (["face", "export"], []), (["classify", "predict"], ["img.png"]),
           (["classify", "train", "--data", "d", "--resume"], []), (["asr", "train", "--resume"], []),
           (["caffe", "train", "--resume"], []), (["classify", "evaluate"], ["--data", "."]),
           (["asr", "evaluate"], ["--data", "."])]  # fmt: skip


@pytest.mark.parametrize("argv, after", READERS, ids=lambda v: " ".join(v) if v and isinstance(v[0], str) else "")
@pytest.mark.parametrize("damage", ["cut-to-50kb", "wav"])
def test_commands_refuse_a_damaged_run_in_one_line(argv, after, damage, good, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "last.pt"
    path.write_bytes(_damaged(good)[damage])
    (tmp_path / "a.wav").write_bytes(_wav())  # real inputs: only the run can be at fault
    (tmp_path / "img.png").write_bytes(b"")
    (tmp_path / "wav.scp").write_text(f"u1 {tmp_path / 'a.wav'}\n")  # the folder is also a Kaldi data directory
    (tmp_path / "text").write_text("u1 hello\n")
    res = run_main(capsys, *argv, path, *after)
    assert_user_error(res, str(path))
