"""Export: the ONNX model sherpa-onnx loads gives our transcripts; onnxruntime matches PyTorch; the CLI verbs."""

from __future__ import annotations

from pathlib import Path

import onnx
import sherpa_onnx

from dlbox.tasks.asr import audio
from dlbox.tasks.asr.data import read_data_dir
from dlbox.tasks.asr.transcribe import transcribe
from tests.conftest import assert_user_error, run_main


def test_export_has_the_wenet_ctc_layout_sherpa_onnx_reads(exported, trained):
    m = onnx.load(exported["file"])
    assert [i.name for i in m.graph.input] == ["x", "x_lens"]
    assert [o.name for o in m.graph.output] == ["log_probs", "log_probs_lens"]
    meta = {p.key: p.value for p in m.metadata_props}
    tokens = Path(exported["tokens"]).read_text().splitlines()
    assert meta["vocab_size"] == str(len(tokens)) and meta["subsampling_factor"] == "4"
    assert exported["max_abs_diff"] < 1e-4  # onnxruntime vs PyTorch on a padded batch of two


def test_sherpa_onnx_offline_recognizer_prints_our_transcripts(exported, trained, corpus):
    rec = sherpa_onnx.OfflineRecognizer.from_wenet_ctc(model=exported["file"], tokens=exported["tokens"], num_threads=1)
    ours = transcribe(trained["run_dir"], [str(corpus / "test")], threads=1)["results"]
    utts = read_data_dir(corpus / "test").utts
    assert len(ours) == len(utts) == 40
    for u, mine in zip(utts, ours, strict=True):
        s = rec.create_stream()
        s.accept_waveform(16000, audio.load(u.wav))
        rec.decode_stream(s)
        assert s.result.text == mine["text"], u.utt
        assert [round(t, 2) for t in s.result.timestamps] == [round(t, 2) for t in mine["timestamps"]], u.utt
    assert sum(1 for x in ours if x["text"]) >= 35  # not a vacuous match of empty strings


def test_transcribe_cli_prints_timestamps_and_rtf_for_run_onnx_and_sherpa(exported, trained, corpus, capsys):
    wav = read_data_dir(corpus / "test").utts[0].wav
    texts = set()
    for model, extra in ((trained["run_dir"], []), (exported["file"], []), (exported["file"], ["--backend", "sherpa-onnx"])):
        res = run_main(capsys, "asr", "transcribe", model, wav, "--json", "--threads", "1", *extra)
        assert res.returncode == 0, res.stderr
        r = res.json()
        (x,) = r["results"]
        assert len(x["tokens"]) == len(x["timestamps"]) == len(x["text"])
        assert x["timestamps"] == sorted(x["timestamps"]) and 0 <= x["timestamps"][0] < x["duration"]
        assert r["rtf"] > 0 and r["audio_seconds"] == x["duration"]
        texts.add(x["text"])
    assert len(texts) == 1  # PyTorch, onnxruntime and sherpa-onnx agree
    res = run_main(capsys, "asr", "transcribe", trained["run_dir"], wav, "--beam", "4", "--threads", "1")
    assert res.returncode == 0 and "RTF" in res.stderr + res.stdout


def test_transcribe_refuses_bad_input_in_one_line(trained, tmp_path, capsys):
    (tmp_path / "notes.wav").write_text("not audio")
    assert_user_error(run_main(capsys, "asr", "transcribe", trained["run_dir"], tmp_path / "notes.wav"), "not audio")
    (tmp_path / "empty.wav").write_bytes(b"")
    assert_user_error(run_main(capsys, "asr", "transcribe", trained["run_dir"], tmp_path / "empty.wav"), "empty file")
    assert_user_error(run_main(capsys, "asr", "transcribe", trained["run_dir"], tmp_path / "missing.wav"), "does not exist")
    assert_user_error(run_main(capsys, "asr", "transcribe", tmp_path, tmp_path / "notes.wav"), "checkpoints")
