"""`dlbox serve --backend`: auto takes the fast path `dlbox bench --auto` saved for the model on this machine (else
onnxruntime for exports, PyTorch for runs); onnxruntime exports a classification run at load; the choice is in
the model's v2 metadata; a backend a model cannot take is a one-line error before anything binds."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from dlbox.runtime import fastpath
from dlbox.runtime.paths import PathSpec
from tests.conftest import dlbox_home, run_main


def _params(url: str, model: str) -> dict:
    return requests.get(f"{url}/v2/models/{model}", timeout=10).json()["parameters"]


def _answers(url: str, model: str, files) -> list:
    out = []
    for f in files:
        r = requests.post(f"{url}/v1/models/{model}/predict", data=f.read_bytes(), params={"topk": 3}, timeout=60)
        assert r.status_code == 200, r.text
        out.append(r.json()[0]["predictions"])
    return out


def _same(a: list, b: list) -> None:
    """The same top-3 labels, probabilities within 1e-4 (fp32 in another runtime)."""
    assert [[p["label"] for p in x] for x in a] == [[p["label"] for p in x] for x in b]
    assert np.abs(np.array([[p["prob"] for p in x] for x in a]) - np.array([[p["prob"] for p in x] for x in b])).max() < 1e-4


def _files(trained) -> list:
    return [fs[0] for fs in trained["digit_files"].values()]


def test_auto_without_a_saved_fast_path_runs_runs_in_pytorch_and_exports_in_onnxruntime(server):
    assert {m: _params(server.url, m)["backend"] for m in ("digits", "digitsx", "det", "speech", "faces")} == {
        "digits": "pytorch", "digitsx": "onnxruntime", "det": "pytorch", "speech": "pytorch", "faces": "onnxruntime"}
    assert "fast_path" not in _params(server.url, "digits")


def test_onnxruntime_exports_a_classification_run_at_load_and_answers_as_pytorch(server, trained):
    from dlbox.serve.server import start

    files = _files(trained)
    with start([f"digits={trained['digits_run']}"], port=0, backend="onnxruntime", threads=1) as s:
        p = _params(s.url, "digits")
        assert (p["backend"], p["path"]) == ("onnxruntime", "onnxruntime fp32")
        assert p["parity"]["max_rel_diff"] <= p["parity"]["tolerance"] == 1e-3  # checked against PyTorch at load
        _same(_answers(s.url, "digits", files), _answers(server.url, "digits", files))


def test_auto_takes_the_saved_fast_path_and_answers_as_classify_predict_fast(server, trained, tmp_path, capsys):
    from dlbox.serve.server import start

    model = _params(server.url, "digits")["model_name"]
    files = _files(trained)
    with dlbox_home(tmp_path / "home"):
        path = {**PathSpec("onnxruntime", "fp32").to_dict(), "path": "onnxruntime fp32", "images_per_sec": 123.0}
        fastpath.save({"model": model, "device": "cpu", "device_key": fastpath.device_key("cpu"),
                       "device_name": "test CPU", "batch_size": 16, "image_size": 32, "infer": path, "train": None,
                       "threads": 1, "date": "2026-01-01T00:00:00+00:00", "versions": {}})  # fmt: skip
        res = run_main(capsys, "classify", "predict", trained["digits_run"], *files, "--topk", "3", "--fast", "--json")
        assert res.returncode == 0 and "fast path: onnxruntime fp32" in res.stderr, res.stderr
        cli = [r["predictions"] for r in res.json()]
        with start([f"digits={trained['digits_run']}"], port=0, threads=1) as s:  # --backend auto (the default)
            p = _params(s.url, "digits")
            assert p["backend"] == "onnxruntime" and p["fast_path"].startswith("onnxruntime fp32 (saved by `dlbox bench --auto`")
            _same(_answers(s.url, "digits", files), cli)


@pytest.mark.parametrize("which, backend, fragment, hint", [
    ("export", "pytorch", "is a classify export, which runs in onnxruntime", "pass the run directory"),
    ("det", "onnxruntime", "is a detect model, which runs in pytorch", "export it first"),
    ("det", "fast", "the saved fast paths are those of classification runs", "--backend auto"),
    ("digits", "fast", "--backend fast: no fast path is saved for", "dlbox bench --auto --model"),
])  # fmt: skip
def test_a_backend_the_model_cannot_take_is_one_line_before_binding(which, backend, fragment, hint, trained, capsys,
                                                                    tmp_path):  # fmt: skip
    source = {"export": trained["root"] / "digits.onnx", "det": trained["det_run"], "digits": trained["digits_run"]}[which]
    with dlbox_home(tmp_path / "empty"):
        res = run_main(capsys, "serve", source, "--backend", backend, "--port", "0")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert fragment in res.stderr and hint in res.stderr and "Traceback" not in res.stderr
