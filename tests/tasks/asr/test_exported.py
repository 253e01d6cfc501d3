"""The recogniser's export through the one loader: a padded batch equals single calls, an export with the
metadata written before the schema still loads, and `predictor()` answers as `asr transcribe --json` does."""

from __future__ import annotations

import json

import numpy as np

from dlbox.runtime.exported import load_exported
from dlbox.tasks.asr import audio, features
from dlbox.tasks.asr.data import read_data_dir
from dlbox.tasks.asr.inference import load_recognizer, predictor
from tests.conftest import run_main


def test_the_export_loads_through_the_one_loader_and_a_padded_batch_equals_single_calls(exported, trained, corpus):
    ex = load_exported(exported["file"])
    tokens = [ln.split()[0] for ln in open(exported["tokens"], encoding="utf-8").read().splitlines()]
    assert (ex.task, ex.meta["classes"], ex.meta["extra"]["subsampling_factor"]) == ("asr", tokens, 4)
    assert [(s.name, s.shape) for s in ex.inputs] == [("x", (-1, -1, 80)), ("x_lens", (-1,))]
    feats = [features.fbank(audio.load(u.wav)) for u in read_data_dir(corpus / "test").utts[:3]]
    lens = np.array([len(f) for f in feats], np.int64)
    x = np.zeros((3, lens.max(), 80), np.float32)
    for i, f in enumerate(feats):
        x[i, : len(f)] = f
    out = ex.run({"x": x, "x_lens": lens})
    run = load_recognizer(trained["run_dir"])
    for i, f in enumerate(feats):
        single = ex.run({"x": f[None].astype(np.float32), "x_lens": lens[i : i + 1]})
        n = int(out["log_probs_lens"][i])
        assert n == int(single["log_probs_lens"][0])
        assert np.abs(out["log_probs"][i, :n] - single["log_probs"][0, :n]).max() < 1e-4
        assert np.abs(single["log_probs"][0, :n] - run.log_probs(f)).max() < 1e-4  # and the run's own


def test_an_export_with_the_metadata_before_the_schema_still_transcribes(exported, trained, corpus, tmp_path):
    import shutil

    import onnx

    path = tmp_path / "old.onnx"
    m = onnx.load(exported["file"])
    for p in m.metadata_props:
        if p.key == "dlbox":
            p.value = json.dumps({"task": "asr", "hparams": json.loads(p.value)["extra"]["hparams"], "cmvn_mode": "global"})
    onnx.save(m, str(path))
    shutil.copy(exported["tokens"], tmp_path / "tokens.txt")
    old, new = load_recognizer(path), load_recognizer(exported["file"])
    assert old.exported.meta["task"] == "asr" and old.subsampling == new.subsampling == 4
    f = features.fbank(audio.load(read_data_dir(corpus / "test").utts[0].wav))
    assert np.abs(old.log_probs(f) - new.log_probs(f)).max() == 0


def test_predictor_answers_as_transcribe_json(exported, trained, corpus, capsys):
    wavs = [u.wav for u in read_data_dir(corpus / "test").utts[:2]]
    for source in (trained["run_dir"], exported["file"]):
        res = run_main(capsys, "asr", "transcribe", source, *wavs, "--json", "--threads", "1")
        assert res.returncode == 0, res.stderr
        cli = res.json()["results"]
        p = predictor(source, threads=1)
        assert p.task == "asr" and p.meta["task"] == "asr"
        samples = [p.decode(open(w, "rb").read()) for w in wavs]
        for s, w in zip(samples, wavs, strict=True):
            s.info["file"] = w
        got = p.predict(samples)
        assert any(g["text"] for g in got)  # not a vacuous match of empty strings
        drop = ("rtf", "utt")
        assert [{k: v for k, v in g.items() if k not in drop} for g in got] == [
            {k: v for k, v in c.items() if k not in drop} for c in cli]
