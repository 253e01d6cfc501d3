"""`transcribe hub:NAME`: sherpa-onnx models through the hub's catalog, cache and offline rules."""

from __future__ import annotations

from dlbox.tasks.asr.data import read_data_dir
from dlbox.tasks.asr.transcribe import transcribe
from tests.conftest import assert_user_error, run_main

EXTRA = """
schema = 1
[[entry]]
name = "test-asr-export"
kind = "model"
task = "speech"
title = "our export, as a hub model"
description = "test"
license = "test"
homepage = "http://127.0.0.1:9/"
architecture = "wenet-ctc"
loader = "sherpa-onnx:wenet-ctc"
files = [
  { name = "model.onnx", url = "http://127.0.0.1:9/model.onnx", no_hash_published = true },
  { name = "tokens.txt", url = "http://127.0.0.1:9/tokens.txt", no_hash_published = true },
]
"""


def test_the_catalog_lists_sherpa_onnx_mandarin_models(capsys):
    res = run_main(capsys, "hub", "list", "--task", "speech", "--json")
    names = {e["name"] for e in res.json()}
    assert {"sherpa-onnx-paraformer-zh", "sherpa-onnx-zipformer-ctc-zh", "sherpa-onnx-sense-voice"} <= names


def test_a_hub_model_runs_through_sherpa_onnx_once_its_files_are_in_the_cache(exported, trained, corpus, tmp_path,
                                                                             monkeypatch, capsys):  # fmt: skip
    monkeypatch.setenv("DLBOX_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DLBOX_OFFLINE", "1")
    (tmp_path / "extra.toml").write_text(EXTRA)
    monkeypatch.setenv("DLBOX_CATALOG_EXTRA", str(tmp_path / "extra.toml"))
    wav = read_data_dir(corpus / "test").utts[0].wav
    assert_user_error(run_main(capsys, "asr", "transcribe", "hub:test-asr-export", wav), "model.onnx")  # not cached yet
    for f in (exported["file"], exported["tokens"]):
        assert run_main(capsys, "hub", "add", "test-asr-export", "--file", f).returncode == 0
    got = transcribe("hub:test-asr-export", [wav], threads=1)
    assert got["backend"] == "sherpa-onnx"
    assert got["results"][0]["text"] == transcribe(trained["run_dir"], [wav], threads=1)["results"][0]["text"]
