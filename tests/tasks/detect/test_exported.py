"""The detector's export through the one loader: any batch size, the run's detections, `predictor()` answers
as `detect predict --json` does, and an export written the old way (batch 1, old metadata) still predicts."""

from __future__ import annotations

import json

import numpy as np
import torch

from dlbox.runtime.exported import load_exported
from dlbox.tasks.detect.data import letterbox, read_image, to_tensor
from dlbox.tasks.detect.export import compare
from dlbox.tasks.detect.inference import load_detector, predictor
from tests.conftest import run_main


def _batch(shapes_det, n: int) -> torch.Tensor:
    files = sorted((shapes_det / "images").glob("*.png"))[:n]
    return torch.stack([to_tensor(letterbox(read_image(f), 160)[0]) for f in files])


def _same_rows(a: list[dict], b: list[dict]) -> None:
    """The same rows up to float rounding between a batch and single images (labels equal, 1e-4 apart)."""
    assert len(a) == len(b)
    for ra, rb in zip(a, b, strict=True):
        assert {k: v for k, v in ra.items() if k != "detections"} == {k: v for k, v in rb.items() if k != "detections"}
        assert [d["label"] for d in ra["detections"]] == [d["label"] for d in rb["detections"]]
        for da, db in zip(ra["detections"], rb["detections"], strict=True):
            assert abs(da["score"] - db["score"]) <= 1e-4 and np.allclose(da["box"], db["box"], atol=1e-2)


def test_the_export_loads_through_the_one_loader_and_takes_any_batch(tinydet_run, tinydet_onnx, shapes_det):
    ex = load_exported(tinydet_onnx["file"])
    assert (ex.task, ex.meta["schema"], ex.meta["classes"], ex.meta["dynamic_batch"]) == ("detect", 1, ["circle", "triangle", "cross"], True)
    assert [(s.name, s.shape) for s in ex.inputs] == [("images", (-1, 3, 160, 160))]
    assert [s.name for s in ex.outputs] == ["boxes", "scores", "labels", "batch_index"]
    det = load_detector(tinydet_onnx["file"])
    x = _batch(shapes_det, 3)
    batch = det.detect(x)
    singles = [det.detect(x[i : i + 1])[0] for i in range(3)]
    report = compare(batch, singles, min_score=0.05)
    assert report["ok"] and report["compared"] >= 6, report
    eager = load_detector(tinydet_run["run_dir"]).detect(x)
    report = compare(eager, batch, min_score=0.05)
    assert report["ok"] and report["compared"] >= 6, report


def test_predictor_answers_as_detect_predict_json(tinydet_run, tinydet_onnx, shapes_det, capsys):
    files = sorted((shapes_det / "images").glob("*.png"))[:2]
    for source in (tinydet_run["run_dir"], tinydet_onnx["file"]):
        res = run_main(capsys, "detect", "predict", source, *files, "--conf", "0.3", "--json")
        assert res.returncode == 0, res.stderr
        cli = json.loads(res.stdout)
        p = predictor(source)
        assert p.task == "detect" and p.name == tinydet_run["run_dir"].name and p.meta["classes"] == ["circle", "triangle", "cross"]
        samples = [p.decode(f.read_bytes()) for f in files]
        for s, f in zip(samples, files, strict=True):
            s.info["file"] = str(f)
        got = p.predict(samples, conf="0.3")
        assert sum(len(r["detections"]) for r in got) >= 2  # a real comparison
        _same_rows(got, cli)
        tensors = p.infer({"images": np.stack([s.data.numpy() for s in samples])})
        assert tensors["boxes"].shape == (2, 100, 4) and tensors["num_detections"].shape == (2,)


def test_an_export_written_before_the_change_still_predicts_the_same(tinydet_run, shapes_det, tmp_path):
    """The old graph (one image, no batch_index) and the old metadata, as `detect export` wrote them."""
    import onnx

    from dlbox.tasks.detect import tinydet
    from dlbox.tasks.detect.inference import MAX_DET, NMS_IOU, SCORE_THRESH

    det = load_detector(tinydet_run["run_dir"])
    path = tmp_path / "old.onnx"
    module = tinydet.ExportWrapper(det.model, SCORE_THRESH, NMS_IOU, MAX_DET).eval()
    with torch.no_grad():
        torch.onnx.export(module, (torch.rand(1, 3, 160, 160),), str(path), dynamo=False, opset_version=17,
                          input_names=["images"], output_names=["boxes", "scores", "labels"],
                          dynamic_axes={n: {0: "detections"} for n in ("boxes", "scores", "labels")})  # fmt: skip
    m = onnx.load(str(path))
    e = m.metadata_props.add()
    e.key, e.value = "dlbox", json.dumps({"task": "detect", "classes": det.classes, "img_size": 160, "model_name": "tinydet",
                                          "score_thresh": SCORE_THRESH, "nms_iou": NMS_IOU, "max_det": MAX_DET})  # fmt: skip
    onnx.save(m, str(path))
    old = load_detector(path)
    assert old.exported.fixed_batch == 1 and old.classes == det.classes
    x = _batch(shapes_det, 3)
    report = compare(det.detect(x), old.detect(x), min_score=0.05)
    assert report["ok"] and report["compared"] >= 6, report
