"""Kaldi data directories and audio in: validation, refused pipes, repairs, any rate/channels -> 16 kHz mono."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dlbox.base.errors import UserError
from dlbox.tasks.asr import audio
from dlbox.tasks.asr.data import Utterance, Vocab, read_data_dir, write_data_dir
from dlbox.tasks.asr.prepare import prepare
from tests.conftest import assert_user_error, run_main


def tone(path, sr=16000, seconds=0.5, channels=1, freq=440.0):
    t = np.arange(int(sr * seconds)) / sr
    wave = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    sf.write(str(path), np.stack([wave] * channels, axis=1) if channels > 1 else wave, sr, subtype="PCM_16")
    return wave


def data_dir(tmp_path, entries: dict[str, str], texts: dict[str, str] | None = None):
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    (d / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in entries.items()))
    texts = texts if texts is not None else {k: "一二" for k in entries}
    (d / "text").write_text("".join(f"{k} {v}\n" for k, v in texts.items()))
    return d


def test_a_written_data_dir_reads_back_with_spk2utt(tmp_path):
    tone(tmp_path / "a.wav")
    utts = [Utterance("s1-a", str(tmp_path / "a.wav"), "一二", "s1"), Utterance("s1-b", str(tmp_path / "a.wav"), "三", "s1")]
    d = read_data_dir(write_data_dir(tmp_path / "d", utts))
    assert [u.utt for u in d.utts] == ["s1-a", "s1-b"]
    assert d.spk2utt == {"s1": ["s1-a", "s1-b"]}
    assert (tmp_path / "d" / "spk2utt").read_text() == "s1 s1-a s1-b\n"


def test_a_pipe_in_wav_scp_is_refused_unless_allowed(tmp_path, capsys):
    tone(tmp_path / "a.wav")
    d = data_dir(tmp_path, {"u1": f"cat {tmp_path / 'a.wav'} |"})
    with pytest.raises(UserError, match="shell command"):
        read_data_dir(d)
    assert len(read_data_dir(d, allow_pipes=True)) == 1
    wave = audio.load(f"cat {tmp_path / 'a.wav'} |", allow_pipes=True)  # the command's stdout is the audio
    assert len(wave) == 8000
    res = run_main(capsys, "asr", "transcribe", tmp_path / "nomodel", str(d / "wav.scp"))
    assert_user_error(res, "shell command", "--allow-pipes")


def test_utterance_ids_that_differ_between_wav_scp_and_text_are_one_clear_error_or_fixed(tmp_path, capsys):
    tone(tmp_path / "a.wav")
    d = data_dir(tmp_path, {"u1": str(tmp_path / "a.wav"), "u2": str(tmp_path / "a.wav")}, {"u1": "一", "u3": "二"})
    with pytest.raises(UserError, match=r"differ between wav.scp and text: 1 in wav.scp only \(e.g. u2\); 1 in text only \(e.g. u3\)"):
        read_data_dir(d)
    res = run_main(capsys, "asr", "fix", d, "--json")
    assert res.returncode == 0 and res.json() == {"kept": 1, "dropped": {"wav.scp": 1, "text": 1, "utt2spk": 0}}
    assert [u.utt for u in read_data_dir(d).utts] == ["u1"]


def test_an_empty_wav_and_a_file_that_is_not_audio_are_one_line_each(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.wav").write_text("this is not audio\n" * 10)
    with pytest.raises(UserError, match="empty.wav is an empty file"):
        audio.load(str(tmp_path / "empty.wav"))
    with pytest.raises(UserError, match="notes.wav is not audio soundfile can read"):
        audio.load(str(tmp_path / "notes.wav"))
    sf.write(str(tmp_path / "zero.wav"), np.zeros(0, np.float32), 16000)
    with pytest.raises(UserError, match="holds no samples"):
        audio.load(str(tmp_path / "zero.wav"))


def test_any_rate_and_channel_count_becomes_16k_mono(tmp_path):
    ref = tone(tmp_path / "ref.wav", sr=16000, seconds=1.0)
    tone(tmp_path / "st.wav", sr=44100, seconds=1.0, channels=2)
    got = audio.load(str(tmp_path / "st.wav"))
    assert got.dtype == np.float32 and got.shape == (16000,)
    # the same 440 Hz tone, resampled: equal away from the edges within 16-bit quantisation
    assert np.abs(got[1000:-1000] - ref[1000:-1000]).max() < 2e-3


def test_characters_outside_the_vocabulary_map_to_unk_and_are_counted():
    v = Vocab.build(["一二三", "三四"])
    assert v.tokens[:2] == ["<blank>", "<unk>"] and len(v) == 6
    ids, unk = v.encode("一 五 四 六")
    assert ids == [v.index["一"], 1, v.index["四"], 1] and unk == 2


def test_prepare_folder_writes_a_data_dir_with_duration_statistics(tmp_path):
    (tmp_path / "rec" / "alice").mkdir(parents=True)
    tone(tmp_path / "rec" / "alice" / "a1.wav", seconds=1.0)
    tone(tmp_path / "rec" / "alice" / "a2.wav", sr=8000, seconds=0.5)
    (tmp_path / "trans.txt").write_text("a1 你好\na2 再见\n")
    r = prepare("folder", str(tmp_path / "rec"), str(tmp_path / "out"), transcripts=str(tmp_path / "trans.txt"))
    assert r["splits"]["data"]["utterances"] == 2 and r["splits"]["data"]["max_s"] == 1.0
    d = read_data_dir(tmp_path / "out")
    assert [(u.utt, u.text, u.spk) for u in d.utts] == [("a1", "你好", "alice"), ("a2", "再见", "alice")]


def test_segments_cut_utterances_out_of_a_recording(tmp_path):
    tone(tmp_path / "rec.wav", seconds=2.0)
    d = data_dir(tmp_path, {"rec1": str(tmp_path / "rec.wav")})
    (d / "text").write_text("seg1 一\nseg2 二\n")
    (d / "segments").write_text("seg1 rec1 0.0 0.5\nseg2 rec1 0.5 1.75\n")
    utts = read_data_dir(d).utts
    assert [(u.utt, u.start, u.end) for u in utts] == [("seg1", 0.0, 0.5), ("seg2", 0.5, 1.75)]
    assert len(audio.load(utts[1].wav, utts[1].start, utts[1].end)) == 20000
    (d / "segments").write_text("seg1 rec9 0.0 0.5\nseg2 rec1 0.5 1.75\n")
    with pytest.raises(UserError, match="refers to recording 'rec9'"):
        read_data_dir(d)
