"""The one exporter and the one loader of exports: every format round-trips the schema, a dynamic-batch file
takes any batch, older exports' metadata still loads, and a truncated or foreign file is one line.

The tasks' own exports (a trained model of each task through its `export` and back through `load_exported`,
its `predictor()` against the CLI) are tested beside each task's fixtures: tests/tasks/*/test_exported.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from dlbox.base.errors import UserError
from dlbox.runtime import export as exporter
from dlbox.runtime.exported import load_exported, upgrade
from tests.conftest import assert_user_error, run_main

FORMATS = [f for f, spec in exporter.FORMATS.items() if spec.available()]


def tiny_classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3)).eval()  # fmt: skip


def graph(model: nn.Module, dynamic: bool = True, size: int = 16) -> exporter.Graph:
    x = torch.randn(2 if dynamic else 1, 3, size, size, generator=torch.Generator().manual_seed(1))
    meta = exporter.ExportMeta("classify", "tiny", [exporter.image_input("images", size, [0.5] * 3, [0.25] * 3)],
                               classes=["a", "b", "c"], dynamic_batch=dynamic)  # fmt: skip
    if not dynamic:
        meta.inputs[0].shape[0] = 1
    return exporter.Graph(model, (x,), ["images"], ["logits"], meta)


def test_the_format_table_has_onnx_and_torchscript_and_openvino_where_installed():
    assert {"onnx", "torchscript"} <= set(FORMATS)
    assert exporter.FORMATS["openvino"].available() == (__import__("importlib").util.find_spec("openvino") is not None)
    with pytest.raises(UserError, match="unknown export format 'tflite'"):
        exporter.check_format("tflite")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_the_schema_and_takes_any_batch(fmt, tmp_path):
    model = tiny_classifier()
    path = tmp_path / f"m{exporter.FORMATS[fmt].suffix}"
    res = exporter.export(graph(model), path, fmt)
    assert res["parity"]["ok"] and res["parity"]["max_abs_diff"] <= exporter.TOLERANCE, res
    ex = load_exported(path)
    m = ex.meta
    assert (m["schema"], m["task"], m["model_name"], m["classes"], m["format"]) == (1, "classify", "tiny", ["a", "b", "c"], fmt)
    assert m["inputs"][0] == {"name": "images", "shape": [-1, 3, 16, 16], "dtype": "float32", "layout": "NCHW",
                              "size": 16, "mean": [0.5] * 3, "std": [0.25] * 3}  # fmt: skip
    assert m["weights_sha256"] == exporter.weights_sha256(model) and len(m["weights_sha256"]) == 64
    assert m["dynamic_batch"] and m["dlbox_version"]
    assert [(s.name, s.datatype, s.shape) for s in ex.inputs] == [("images", "FP32", (-1, 3, 16, 16))]
    assert [(s.name, s.datatype, s.shape[0]) for s in ex.outputs] == [("logits", "FP32", -1)]
    x = np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(np.float32)
    batch = ex.run({"images": x})["logits"]
    singles = np.concatenate([ex.run({"images": x[i : i + 1]})["logits"] for i in range(3)])
    with torch.no_grad():
        eager = model(torch.from_numpy(x)).numpy()
    assert batch.shape == (3, 3)
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    np.testing.assert_allclose(batch, eager, atol=1e-4)


def test_the_weights_hash_follows_the_weights_not_the_file(tmp_path):
    a, b = tiny_classifier(), tiny_classifier()
    assert exporter.weights_sha256(a) == exporter.weights_sha256(b)
    with torch.no_grad():
        b[-1].bias[0] += 1e-3
    assert exporter.weights_sha256(a) != exporter.weights_sha256(b)


def test_a_static_batch_export_is_fed_its_batch_size_at_a_time(tmp_path):
    path = tmp_path / "static.onnx"
    exporter.export(graph(tiny_classifier(), dynamic=False), path)
    ex = load_exported(path)
    assert ex.fixed_batch == 1 and not ex.meta["dynamic_batch"] and ex.inputs[0].shape[0] == 1
    x = np.random.default_rng(1).standard_normal((3, 3, 16, 16)).astype(np.float32)
    assert ex.run({"images": x})["logits"].shape == (3, 3)


def _rewrite_metadata(path, key: str, value: dict) -> None:
    """Replace the file's dlbox metadata with what an older dlbox wrote."""
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    e = m.metadata_props.add()
    e.key, e.value = key, json.dumps(value)
    onnx.save(m, str(path))


def test_exports_written_before_the_schema_still_load(tmp_path):
    """Each task's metadata as dlbox wrote it before schema 1 (classify had no task, face its own key)."""
    path = tmp_path / "old.onnx"
    exporter.export(graph(tiny_classifier()), path)
    want = load_exported(path).run({"images": np.ones((2, 3, 16, 16), np.float32)})["logits"]
    old_classify = {"classes": ["a", "b", "c"], "img_size": 16, "mean": [0.5] * 3, "std": [0.25] * 3, "model_name": "tiny"}
    _rewrite_metadata(path, "dlbox", old_classify)
    ex = load_exported(path, task="classify")
    assert (ex.meta["task"], ex.meta["classes"], ex.meta["inputs"][0]["size"], ex.meta["inputs"][0]["std"]) == (
        "classify", ["a", "b", "c"], 16, [0.25] * 3)
    np.testing.assert_array_equal(ex.run({"images": np.ones((2, 3, 16, 16), np.float32)})["logits"], want)
    _rewrite_metadata(path, "dlbox_face", {"arch": "tinyface", "img_size": 16, "threshold": 0.9, "source": "r",
                                           "input": "RGB face crops, (pixel - 127.5) / 128"})  # fmt: skip
    face = load_exported(path).meta
    assert (face["task"], face["model_name"], face["extra"]["threshold"], face["inputs"][0]["size"]) == ("face", "tinyface", 0.9, 16)
    det = upgrade({"task": "detect", "classes": ["x"], "img_size": 64, "model_name": "tinydet", "score_thresh": 0.05,
                   "nms_iou": 0.6, "max_det": 100}, input_shape=[1, 3, 64, 64])  # fmt: skip
    assert (det["task"], det["dynamic_batch"], det["inputs"][0]["shape"], det["extra"]["max_det"]) == ("detect", False, [1, 3, 64, 64], 100)
    asr = upgrade({"task": "asr", "hparams": {"d_model": 8}, "cmvn_mode": "global"}, props={"subsampling_factor": "4"},
                  input_shape=["N", "T", 80])  # fmt: skip
    assert (asr["task"], asr["extra"]["subsampling_factor"], asr["dynamic_batch"]) == ("asr", 4, True)


def test_a_task_refuses_another_tasks_export(tmp_path):
    path = tmp_path / "m.onnx"
    exporter.export(graph(tiny_classifier()), path)
    with pytest.raises(UserError, match="is a classify export, not a detect one"):
        load_exported(path, task="detect")


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_truncated_export_is_one_line_naming_the_file(fmt, tmp_path, capsys):
    path = tmp_path / f"m{exporter.FORMATS[fmt].suffix}"
    exporter.export(graph(tiny_classifier()), path, fmt)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError) as e:
        load_exported(path)
    assert str(path) in e.value.message and "truncated" in e.value.message and "\n" not in e.value.message
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (16, 16)).save(image)
    assert_user_error(run_main(capsys, "classify", "predict", path, image), str(path), "truncated")


def test_a_foreign_onnx_file_is_one_line(tmp_path):
    path = tmp_path / "foreign.onnx"
    torch.onnx.export(tiny_classifier(), (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False, input_names=["x"])
    with pytest.raises(UserError, match="was not exported by dlbox"):
        load_exported(path)
    (tmp_path / "text.onnx").write_text("not a model")
    with pytest.raises(UserError, match="truncated or not ONNX"):
        load_exported(tmp_path / "text.onnx")
