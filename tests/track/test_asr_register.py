"""`dlbox asr export --register NAME`: model.onnx and tokens.txt as one version in the registry of the session's
MLflow server (tests/track/conftest.py), and `asr transcribe models:/NAME/VERSION` like the run itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TINY_ASR_TOKENS, assert_user_error, run_main, write_tiny_asr_run


@pytest.fixture(scope="module")
def asr_run(tmp_path_factory) -> dict:
    """The tiny untrained recogniser as a run directory, and its WAV (tests/conftest.py)."""
    root = tmp_path_factory.mktemp("asr-register")
    run = root / "runs" / "asr" / "tiny"
    write_tiny_asr_run(run, root / "tones.wav")
    return {"run": run, "wav": root / "tones.wav", "tokens": TINY_ASR_TOKENS}


def hypotheses(res) -> list[tuple[str, list[str]]]:
    assert res.returncode == 0, res.stderr
    return [(r["text"], r["tokens"]) for r in res.json()["results"]]


def test_asr_export_register_is_one_version_with_tokens_and_transcribes_like_the_run(tracking, asr_run, capsys):
    run, wav = asr_run["run"], asr_run["wav"]
    out = run_main(capsys, "asr", "export", run, "--register", "speech", "--json")
    assert out.returncode == 0, out.stderr
    reg = out.json()["registered"]
    assert (reg["version"], reg["uri"]) == (1, "models:/speech/1")
    assert [Path(f).name for f in reg["files"]] == ["model.onnx", "tokens.txt"]
    mv = tracking.get_model_version("speech", "1")
    assert mv.tags["dlbox.task"] == "asr" and mv.tags["dlbox.files"] == "model.onnx,tokens.txt"
    assert json.loads(mv.tags["dlbox.classes"]) == asr_run["tokens"] and mv.tags["dlbox.tokens"] == str(len(asr_run["tokens"]))
    assert [i["name"] for i in json.loads(mv.tags["dlbox.inputs"])] == ["x", "x_lens"]

    from_registry = hypotheses(run_main(capsys, "asr", "transcribe", "models:/speech/1", wav, "--json"))
    from_run = hypotheses(run_main(capsys, "asr", "transcribe", run, wav, "--json"))
    from_export = hypotheses(run_main(capsys, "asr", "transcribe", run / "model.onnx", wav, "--json"))
    assert from_registry == from_run and from_registry == from_export
    assert from_run[0][1], "the fixed-seed model emits tokens: the comparison is not of two empty strings"
    # the downloaded version is one folder, the model with its tokens.txt beside it (sherpa-onnx's layout)
    from dlbox.models import mlflow_registry

    local = Path(mlflow_registry.local_path("models:/speech/1"))
    assert local.name == "model.onnx" and (local.parent / "tokens.txt").read_text() == (run / "tokens.txt").read_text()
    # `track register RUN` finds the same export on disk and takes its tokens.txt too
    again = run_main(capsys, "track", "register", run, "--name", "speech", "--json")
    assert again.returncode == 0 and again.json()["version"] == 2, again.stderr
    assert [Path(f).name for f in again.json()["files"]] == ["model.onnx", "tokens.txt"]
    assert_user_error(run_main(capsys, "asr", "export", run, "--register", "no/slash"), "model name")
