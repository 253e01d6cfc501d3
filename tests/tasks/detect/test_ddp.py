"""DDP through torch's launcher: two CPU processes train, COCO evaluation gathers both ranks' detections."""

from __future__ import annotations

from dlbox.engine.metrics import read_jsonl


def test_two_processes_train_tinydet_and_evaluate_all_validation_images(tiny_det, tmp_path, cli):
    res = cli("detect", "train", "--data", tiny_det, "--nproc-per-node", "2", "--epochs", "1", "--img-size", "64",
              "--batch-size", "4", "--tb-images", "0", "--runs-dir", tmp_path, "--name", "ddp", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    r = res.json()
    assert r["processes"] == 2 and r["identical_weights"] is True
    record = read_jsonl(tmp_path / "detect" / "ddp" / "metrics.jsonl")[-1]
    assert "val/AP50" in record and "val/AP" in record  # one COCOeval over the detections of both ranks
