"""`dlbox asr export --register NAME`: model.onnx and tokens.txt as one version in the registry of the session's
MLflow server (tests/track/conftest.py), and `asr transcribe models:/NAME/VERSION` like the run itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import assert_user_error, run_main


@pytest.fixture(scope="module")
def asr_run(tmp_path_factory) -> dict:
    """An untrained fixed-seed tiny CTC recogniser as a run directory (as tests/serve/conftest.py's
    ``speech_faces``; equality with the run needs no learning) and a 1 s WAV of two tones."""
    import numpy as np
    import soundfile
    import torch

    from dlbox.engine import checkpoint
    from dlbox.tasks.asr.data import Vocab
    from dlbox.tasks.asr.model import build

    root = tmp_path_factory.mktemp("asr-register")
    tokens = ["<blank>", "<unk>", " ", "a", "b", "c", "d", "e"]
    hparams = {"vocab_size": len(tokens), "feat_dim": 80, "d_model": 32, "layers": 1, "heads": 2, "kernel": 7,
               "dropout": 0.0, "channels": 8}  # fmt: skip
    torch.manual_seed(0)
    model = build(hparams).eval()
    with torch.no_grad():
        model.head.bias[0] = -2.0  # less blank: an untrained model then emits a few tokens
    run = root / "runs" / "asr" / "tiny"
    checkpoint.save({"task": "asr", "model": model.state_dict(),
                     "task_state": {"tokens": tokens, "hparams": hparams, "cmvn_mode": "global"}},
                    run / "checkpoints" / "best.pt")  # fmt: skip
    Vocab(tokens).save(run / "tokens.txt")
    t = np.arange(16000) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) * (t < 0.5) + 0.3 * np.sin(2 * np.pi * 880 * t) * (t >= 0.5)
    wave += 0.02 * np.random.default_rng(0).standard_normal(len(t))
    soundfile.write(root / "tones.wav", wave.astype(np.float32), 16000, subtype="PCM_16")
    return {"run": run, "wav": root / "tones.wav", "tokens": tokens}


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
