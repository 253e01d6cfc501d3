"""`dlbox caffe train` and `dlbox env test --framework caffe`: Caffe solvers learn on the engine."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from dlbox.convert.caffe import load_net
from tests.conftest import run_main

NETS = Path(__file__).parent / "nets"


def train(capsys, runs, *extra):
    res = run_main(capsys, "caffe", "train", "--solver", NETS / "tiny_solver.prototxt", "--runs-dir", runs,
                   "--deterministic", "--threads", "1", "--json", *extra)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res.json()


def test_solver_trains_with_runs_tensorboard_and_a_caffemodel_opencv_reads(capsys, tmp_path):
    r = train(capsys, tmp_path)
    assert (r["max_iter"], r["iterations_per_epoch"], r["epochs"], r["iterations"]) == (46, 23, 2, 46)
    assert r["test"]["accuracy"] >= 0.85  # two epochs of a tiny net on the digits
    run = Path(r["run_dir"])
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [rec["lr"] for rec in records if "epoch" in rec] == [0.025, 0.0125]  # step policy: 0.05 x 0.5^floor(iter / 20)
    assert any((run / "tensorboard").iterdir()) and (run / "checkpoints" / "last.pt").is_file()
    assert Path(r["caffemodel"]).name == "tiny_iter_46.caffemodel"
    # The trained weights, read by OpenCV with a deploy prototxt, give dlbox's outputs.
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    cv = cv2.dnn.readNetFromCaffe(str(NETS / "tiny_deploy.prototxt"), r["caffemodel"])
    cv.setInput(x)
    net, report = load_net(NETS / "tiny_deploy.prototxt", r["caffemodel"])
    assert len(report["loaded"]) == 4
    with torch.no_grad():
        ours = net(torch.from_numpy(x))["ip1"].numpy()
    assert np.abs(cv.forward() - ours).max() <= 1e-4


def test_resumed_solver_ends_with_the_weights_of_an_uninterrupted_one(capsys, tmp_path):
    whole = train(capsys, tmp_path / "a")
    first = train(capsys, tmp_path / "b", "--epochs", "1")
    resumed = run_main(capsys, "caffe", "train", "--resume", first["run_dir"], "--epochs", "2", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert Path(resumed.json()["caffemodel"]).read_bytes() == Path(whole["caffemodel"]).read_bytes()


def test_env_test_runs_the_lenet_solver_through_dlbox_to_the_pytorch_bar(capsys, tmp_path):
    res = run_main(capsys, "env", "test", "--framework", "caffe", "--runs-dir", tmp_path, "--threads", "1", "--json")
    assert res.returncode == 0, res.stderr
    (row,) = res.json()["results"]
    assert row["framework"] == "caffe" and row["status"] == "ok"
    assert row["accuracy"] >= 0.95  # the PyTorch row's bar
    assert "not BVLC Caffe" in row["note"] and row["solver"].endswith("lenet_solver.prototxt")
    from dlbox.env.integrity import render

    assert "not BVLC Caffe" in render(res.json()).splitlines()[1]  # the table's caffe row says it too


def test_solver_stopped_at_max_iter_mid_epoch_continues_to_a_larger_one_as_if_uninterrupted(capsys, tmp_path):
    whole = train(capsys, tmp_path / "a", "--max-iter", "50")
    first = train(capsys, tmp_path / "b", "--max-iter", "30")  # 23 iterations a epoch: 30 is mid-epoch
    assert first["iterations"] == 30 and Path(first["caffemodel"]).name == "tiny_iter_30.caffemodel"
    resumed = run_main(capsys, "caffe", "train", "--resume", first["run_dir"], "--max-iter", "50", "--json")
    assert resumed.returncode == 0, resumed.stderr
    r = resumed.json()
    assert r["iterations"] == 50 and Path(r["caffemodel"]).name == "tiny_iter_50.caffemodel"
    assert Path(r["caffemodel"]).read_bytes() == Path(whole["caffemodel"]).read_bytes()
