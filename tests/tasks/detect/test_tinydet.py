"""tinydet end to end on the shapes-det sample: train from scratch, COCO mAP, predict, ONNX export and parity."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from dlbox.data import coco
from dlbox.engine.metrics import read_jsonl
from dlbox.tasks.detect.data import letterbox, read_image, to_tensor
from dlbox.tasks.detect.export import compare
from dlbox.tasks.detect.inference import load_detector
from tests.conftest import run_cli


def test_tinydet_from_scratch_on_the_shapes_sample_reaches_coco_ap50_of_one_half(tinydet_run):
    r = tinydet_run["result"]
    assert r["model"] == "tinydet"  # the default when --model is not given
    assert r["AP50"] >= 0.5, r
    assert r["classes"] == ["circle", "triangle", "cross"]
    assert (tinydet_run["run_dir"] / "checkpoints" / "best.pt").is_file()


def test_run_logs_losses_and_map_per_epoch_and_detection_images_to_tensorboard(tinydet_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tinydet_run["run_dir"]
    records = read_jsonl(run / "metrics.jsonl")
    assert [r["epoch"] for r in records] == list(range(1, 9))
    assert {"train/loss", "train/loss_cls", "train/loss_box", "val/AP", "val/AP50", "val/AP75"} <= set(records[0])
    assert tinydet_run["result"]["AP50"] == max(r["val/AP50"] for r in records)
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    assert {"train/loss", "val/AP", "val/AP50"} <= set(acc.Tags()["scalars"])
    losses = [e.value for e in acc.Scalars("train/loss")]
    assert losses[-1] < losses[0]
    images = [t for t in acc.Tags()["images"] if t.startswith("val/detections/")]
    assert len(images) == tinydet_run["result"]["tensorboard_images"] == 4


def test_evaluate_on_val_reproduces_the_training_ap50_and_reports_every_coco_metric(tinydet_run, shapes_det):
    res = run_cli("detect", "evaluate", tinydet_run["run_dir"], "--data", shapes_det, "--split", "val", "--threads", "1", "--json")
    assert res.returncode == 0, res.stderr
    m = res.json()
    assert abs(m["AP50"] - tinydet_run["result"]["AP50"]) < 1e-9  # the same pycocotools evaluation as in training
    for key in ("AP", "AP75", "APs", "APm", "AR100"):
        assert 0 < m[key] <= 1, key
    assert m["APl"] is None  # no box of the sample reaches COCO's large range (96^2 px)
    assert set(m["per_class"]) == {"circle", "triangle", "cross"} and all(v > 0 for v in m["per_class"].values())


def test_evaluate_on_the_test_split(tinydet_run, shapes_det):
    from dlbox.tasks.detect.evaluate import evaluate

    m = evaluate(str(tinydet_run["run_dir"]), str(shapes_det), split="test", threads=1)
    assert m["split"] == "test" and m["images"] == 50 and m["AP50"] > 0.4


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_predict_finds_the_shapes_and_draws_labelled_boxes(tinydet_run, shapes_det, tmp_path):
    data = coco.load(shapes_det / "annotations" / "test.json")
    images = data["images"][:3]
    files = [shapes_det / "images" / im["file_name"] for im in images]
    res = run_cli("detect", "predict", tinydet_run["run_dir"], *files, "--conf", "0.5", "--threads", "1",
                  "--save-images", tmp_path / "drawn", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = res.json()
    names = coco.categories_by_id(data)
    by_image = coco.anns_by_image(data)
    found = 0
    for row, im, f in zip(rows, images, files, strict=True):
        assert row["width"] == im["width"] and row["height"] == im["height"]
        gts = [(names[a["category_id"]], [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]])
               for a in by_image[im["id"]]]  # fmt: skip
        for d in row["detections"]:
            assert d["score"] >= 0.5 and 0 <= d["box"][0] < d["box"][2] <= im["width"]
            found += any(lbl == d["label"] and _iou(d["box"], g) >= 0.5 for lbl, g in gts)
        drawn = np.asarray(Image.open(row["saved"]).convert("RGB"), dtype=np.int16)
        original = np.asarray(Image.open(f).convert("RGB"), dtype=np.int16)
        assert drawn.shape == original.shape
        assert (np.abs(drawn - original).sum(-1) > 0).sum() > 0 if row["detections"] else True
    assert found >= 3  # most confident detections are right: class and IoU >= 0.5 with a true box


def test_onnx_export_matches_pytorch_on_the_sample_images(tinydet_run, tinydet_onnx, shapes_det):
    assert tinydet_onnx["parity"]["ok"], tinydet_onnx
    torch_det = load_detector(tinydet_run["run_dir"])
    onnx_det = load_detector(tinydet_onnx["file"])
    assert onnx_det.classes == torch_det.classes and onnx_det.img_size == torch_det.img_size == 160
    files = sorted((shapes_det / "images").glob("*.png"))[:12]
    batch = torch.stack([to_tensor(letterbox(read_image(f), 160)[0]) for f in files])
    a, b = torch_det.detect(batch), onnx_det.detect(batch)
    report = compare(a, b, min_score=0.1)  # same class, IoU >= 0.99, |score diff| <= 1e-3, both ways
    assert report["ok"], report
    assert report["compared"] >= 2 * len(files)  # a real comparison, not two empty lists
    assert report["min_iou"] >= 0.99 and report["max_score_diff"] <= 1e-3


def test_predict_through_onnxruntime_gives_the_run_s_detections(tinydet_run, tinydet_onnx, shapes_det):
    from dlbox.tasks.detect.predict import predict

    files = [str(p) for p in sorted((shapes_det / "images").glob("*.png"))[:4]]
    via_torch = predict(str(tinydet_run["run_dir"]), files, conf=0.3, threads=1)
    via_onnx = predict(tinydet_onnx["file"], files, conf=0.3, threads=1)
    for t, o in zip(via_torch, via_onnx, strict=True):
        assert [d["label"] for d in t["detections"]] == [d["label"] for d in o["detections"]]
        for dt, do in zip(t["detections"], o["detections"], strict=True):
            assert _iou(dt["box"], do["box"]) >= 0.99 and abs(dt["score"] - do["score"]) <= 1e-3


def test_onnx_file_carries_class_names_and_input_size(tinydet_onnx):
    import onnx

    meta = {p.key: p.value for p in onnx.load(tinydet_onnx["file"]).metadata_props}
    info = json.loads(meta["dlbox"])  # the schema of every export (docs/export.md)
    assert info["classes"] == ["circle", "triangle", "cross"] and info["inputs"][0]["size"] == 160 and info["task"] == "detect"


def test_bench_times_the_exported_graph_at_another_input_size(tinydet_run, tmp_path, monkeypatch):
    import tempfile

    from dlbox.tasks.detect.bench import bench

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    r = bench(str(tinydet_run["run_dir"]), img_size=320, runs=3, warmup=1, threads=1)
    assert r["img_size"] == 320 and r["runtime"] == "onnx" and r["images_per_sec"] > 0
    assert r["latency_ms"]["p50"] <= r["latency_ms"]["p90"]
    assert not list((tmp_path / "tmp").iterdir())  # the temporary 320 px export is gone


def test_models_lists_the_detectors_with_published_coco_ap():
    from dlbox.tasks.detect.models import MODELS, model_info

    rows = {n: model_info(n).as_dict() for n in MODELS}
    assert rows["tinydet"]["default"] and rows["tinydet"]["coco_box_ap"] is None
    assert rows["fasterrcnn_resnet50_fpn"]["coco_box_ap"] == 37.0  # torchvision's published figure
    assert {"fasterrcnn_mobilenet_v3_large_320_fpn", "retinanet_resnet50_fpn_v2", "fcos_resnet50_fpn",
            "ssdlite320_mobilenet_v3_large", "fasterrcnn_resnet50_fpn_v2"} <= set(rows)  # fmt: skip
    assert rows["tinydet"]["params_m"] < 1.0
