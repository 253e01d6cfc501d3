"""ASR readers check what they read: `asr fix` on a missing or non-Kaldi folder, a WAV whose header promises
more audio than the file holds (refused by train/prepare/transcribe's one reader), a truncated .onnx."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dlbox.base.errors import UserError
from dlbox.tasks.asr import audio
from tests.conftest import assert_user_error, run_main


def test_fix_on_a_missing_folder_is_one_line(tmp_path, capsys):
    assert_user_error(run_main(capsys, "asr", "fix", tmp_path / "nope"), "nope", "is not a folder")


def test_fix_on_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "f.txt").write_text("x\n")
    assert_user_error(run_main(capsys, "asr", "fix", tmp_path / "f.txt"), "f.txt", "is a file")


def test_fix_on_a_folder_that_is_not_kaldi_is_one_line_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("hello\n")
    assert_user_error(run_main(capsys, "asr", "fix", tmp_path / "d"), "not a Kaldi data directory", "wav.scp")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["notes.txt"]


@pytest.fixture
def cut_wav(tmp_path):
    """A 1.9 s WAV cut to its first 0.07 s: the header still promises 1.9 s."""
    full = tmp_path / "full.wav"
    sf.write(full, np.zeros(30400, np.float32), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: 44 + 2240])
    return cut


def test_a_wav_cut_short_is_refused_by_the_reader(cut_wav):
    for read in (audio.load, audio.info):
        with pytest.raises(UserError, match=r"promises 1\.90 s, the file holds 0\.07 s") as e:
            read(str(cut_wav))
        assert "cut.wav" in str(e.value)


def test_a_whole_wav_and_a_streamed_header_pass(tmp_path):
    sf.write(tmp_path / "ok.wav", np.zeros(1600, np.float32), 16000, subtype="PCM_16")
    assert audio.info(str(tmp_path / "ok.wav"))[0] == pytest.approx(0.1)
    data = bytearray((tmp_path / "ok.wav").read_bytes())
    data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")  # a streamed WAV: size left open
    (tmp_path / "stream.wav").write_bytes(bytes(data))
    audio.check_wav_header(tmp_path / "stream.wav")


def test_prepare_refuses_a_wav_cut_short(cut_wav, tmp_path, capsys):
    rec = tmp_path / "rec"
    rec.mkdir()
    cut_wav.rename(rec / "u1.wav")
    (tmp_path / "t.txt").write_text("u1 hello world\n")
    res = run_main(capsys, "asr", "prepare", "folder", rec, "--transcripts", tmp_path / "t.txt", "--out", tmp_path / "data")
    assert_user_error(res, "u1.wav", "cut short")


def test_a_truncated_onnx_model_is_one_line(tmp_path, capsys):
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07\x12\x04dlbox" + bytes(40))
    (tmp_path / "tokens.txt").write_text("<blank> 0\na 1\n")
    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000, subtype="PCM_16")
    res = run_main(capsys, "asr", "transcribe", tmp_path / "model.onnx", tmp_path / "a.wav")
    assert_user_error(res, "model.onnx", "truncated", "hint:")
