"""ASR and face models through the running server answer as the CLI does on the same files: transcripts with
timestamps (task route and OpenAI-style route), face boxes/landmarks, embeddings (task route and /v1/embeddings)
and a verified pair."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import requests

from tests.conftest import run_main


@pytest.fixture
def keep_threads():
    """`asr transcribe --threads 1` in this process sets torch's threads: give the server back its own."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _drop(d: dict, *keys: str) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def test_asr_task_route_and_openai_transcriptions_equal_transcribe_json(server, speech_faces, capsys, keep_threads):
    wav = speech_faces["wav"]
    res = run_main(capsys, "asr", "transcribe", speech_faces["asr_run"], wav, "--json", "--threads", "1")
    assert res.returncode == 0, res.stderr
    (cli,) = res.json()["results"]
    assert cli["text"] and cli["timestamps"]  # not a vacuous match of empty transcripts
    want = _drop(cli, "utt", "file", "rtf")

    r = requests.post(f"{server.url}/v1/models/speech/predict", data=wav.read_bytes(),
                      headers={"content-type": "audio/wav"}, timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text
    (got,) = r.json()
    assert _drop(got, "file", "rtf") == want

    r = requests.post(f"{server.url}/v1/models/speech/predict", files={"file": (wav.name, wav.read_bytes(), "audio/wav")},
                      timeout=60)  # fmt: skip
    assert r.status_code == 200 and r.json()[0]["file"] == wav.name and _drop(r.json()[0], "file", "rtf") == want

    r = requests.post(f"{server.url}/v1/audio/transcriptions", files={"file": (wav.name, wav.read_bytes(), "audio/wav")},
                      timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text
    assert _drop(r.json(), "rtf") == want  # the one ASR model served is the default

    meta = requests.get(f"{server.url}/v2/models/speech", timeout=10).json()
    assert meta["platform"] == "dlbox_asr" and meta["parameters"]["backend"] == "pytorch"


def test_face_detect_embed_pair_and_embeddings_equal_the_cli(server, speech_faces, capsys, tmp_path, keep_threads):
    import torch

    torch.set_num_threads(2)  # the CLI here as the server's worker computes (threads=2): the same float sums
    photos, weights = speech_faces["photos"], speech_faces["face"]
    res = run_main(capsys, "face", "detect", *photos, "--json")
    assert res.returncode == 0, res.stderr
    detected = [im["faces"] for im in res.json()["images"]]
    assert [len(f) for f in detected] == [1, 1]  # one face in each photo: the largest is the only one
    res = run_main(capsys, "face", "embed", *photos, "--weights", weights, "--out", tmp_path / "e.npz", "--json")
    assert res.returncode == 0, res.stderr
    embedded = np.load(tmp_path / "e.npz")["embeddings"]
    res = run_main(capsys, "face", "compare", *photos, "--weights", weights, "--json")
    assert res.returncode == 0, res.stderr
    pair = res.json()["pairs"][0]

    for photo, faces, emb in zip(photos, detected, embedded, strict=True):
        r = requests.post(f"{server.url}/v1/models/faces/predict", data=photo.read_bytes(),
                          headers={"content-type": "image/png"}, timeout=60)  # fmt: skip
        assert r.status_code == 200, r.text
        (got,) = r.json()
        assert [_drop(f, "embedding") for f in got["faces"]] == faces
        assert np.abs(np.asarray(got["faces"][0]["embedding"]) - emb).max() < 1e-5

    files = [("file", (p.name, p.read_bytes(), "image/png")) for p in photos]
    r = requests.post(f"{server.url}/v1/models/faces/predict", files=files, params={"pair": "true"}, timeout=60)
    assert r.status_code == 200, r.text
    got = r.json()
    assert [g["file"] for g in got] == [p.name for p in photos]
    for g in got:
        assert g["pair"]["same"] == pair["same"] and abs(g["pair"]["distance"] - pair["distance"]) < 1e-5

    urls = ["data:image/png;base64," + base64.b64encode(p.read_bytes()).decode() for p in photos]
    r = requests.post(f"{server.url}/v1/embeddings", json={"model": "faces", "input": urls}, timeout=60)
    assert r.status_code == 200, r.text
    vecs = np.asarray([d["embedding"] for d in r.json()["data"]])
    assert vecs.shape == embedded.shape and np.abs(vecs - embedded).max() < 1e-5

    meta = requests.get(f"{server.url}/v2/models/faces", timeout=10).json()
    assert meta["platform"] == "dlbox_face" and meta["parameters"]["backend"] == "onnxruntime"
    assert meta["inputs"][0]["shape"] == [-1, 3, 64, 64]
