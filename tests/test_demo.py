"""`dlbox demo`, the main job of `make demo`: every step of the tour runs and reports a real result."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def test_demo_tour_trains_evaluates_predicts_and_exports(tmp_path):
    res = run_cli("demo", "--framework", "torch", "--runs-dir", tmp_path, "--json", timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    r = res.json()
    assert r["env"]["verdict"].startswith("ready")
    assert r["integrity"]["results"][0]["accuracy"] >= 0.95
    assert r["train"]["val_top1"] >= 0.95 and r["evaluate"]["top1"] == r["train"]["val_top1"]
    assert [p["predictions"][0]["label"] for p in r["predict"]] == ["3", "7", "9"]
    assert r["export"]["max_abs_diff"] <= 1e-4 and Path(r["export"]["file"]).is_file()
    assert [p["predictions"][0]["label"] for p in r["predict_onnx"]] == ["3", "7", "9"]
