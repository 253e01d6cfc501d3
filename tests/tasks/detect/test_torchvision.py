"""torchvision detectors: fine-tuning from (COCO-shaped) weights end to end, weights that do not fit, backbones.

Nothing is downloaded: "COCO weights" here are a state dict with torchvision's COCO layout (91 classes) saved
by the test, and ImageNet backbones are freshly initialised classifiers saved the same way.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from dlbox.base.errors import UserError
from dlbox.engine.metrics import read_jsonl
from dlbox.tasks.detect import models

MODEL = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.fixture(scope="module")
def coco_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "frcnn_coco_layout.pth"
    torch.manual_seed(0)
    torch.save(models.create(MODEL, 90, 320).state_dict(), path)  # 90 categories + background = COCO's 91
    return path


@pytest.fixture(scope="module")
def fine_tuned(tiny_det, coco_weights, tmp_path_factory):
    from tests.conftest import run_cli

    runs = tmp_path_factory.mktemp("runs")
    res = run_cli("detect", "train", "--data", tiny_det, "--model", MODEL, "--weights", coco_weights, "--fine-tune",
                  "--img-size", "128", "--epochs", "3", "--batch-size", "4", "--max-images", "8", "--roi-batch", "32", "--threads", "1",
                  "--runs-dir", runs, "--name", "ft", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res.json()


def test_faster_rcnn_fine_tunes_from_coco_weights_and_its_loss_decreases(fine_tuned):
    assert fine_tuned["model"] == MODEL
    records = read_jsonl(f"{fine_tuned['run_dir']}/metrics.jsonl")
    losses = [r["train/loss"] for r in records]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert {"train/loss_classifier", "train/loss_box_reg", "train/loss_objectness", "val/AP50"} <= set(records[0])


def test_fine_tuned_faster_rcnn_evaluates_with_coco_metrics(fine_tuned, tiny_det):
    from dlbox.tasks.detect.evaluate import evaluate

    m = evaluate(fine_tuned["run_dir"], str(tiny_det), split="val", threads=1)
    assert m["model"] == MODEL and m["images"] == 2
    assert all(isinstance(m[k], float) and 0 <= m[k] <= 1 for k in ("AP", "AP50", "AP75"))
    assert set(m["per_class"]) == {"circle", "triangle", "cross"}


def test_fine_tuned_faster_rcnn_predicts_and_draws_boxes(fine_tuned, tiny_det, tmp_path, cli):
    images = sorted((tiny_det / "images").glob("*.png"))[:3]
    res = cli("detect", "predict", fine_tuned["run_dir"], *images, "--conf", "0.05", "--threads", "1",
              "--save-images", tmp_path, "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = res.json()
    with_boxes = [r for r in rows if r["detections"]]
    assert with_boxes, rows
    r = with_boxes[0]
    assert {d["label"] for d in r["detections"]} <= {"circle", "triangle", "cross"}
    drawn = np.asarray(Image.open(r["saved"]).convert("RGB"), dtype=np.int16)
    original = np.asarray(Image.open(r["file"]).convert("RGB"), dtype=np.int16)
    assert (np.abs(drawn - original).sum(-1) > 0).sum() > 20  # box outlines and label tags were drawn


def test_coco_weights_without_fine_tune_are_refused_for_other_classes(coco_weights):
    with pytest.raises(UserError, match="COCO's 90 .* the data has 3.*add --fine-tune"):
        models.build(MODEL, ["circle", "triangle", "cross"], 128, weights=str(coco_weights))


def test_weights_of_a_run_with_another_class_list_are_refused_unless_fine_tuning(tinydet_run, tiny_det, tmp_path):
    classes = ["circle", "cross"]  # the run was trained on circle, triangle, cross
    with pytest.raises(UserError, match="trained on classes .* add --fine-tune"):
        models.build("tinydet", classes, 160, weights=str(tinydet_run["run_dir"]))
    model, meta = models.build("tinydet", classes, 160, weights=str(tinydet_run["run_dir"]), fine_tune=True)
    assert meta["classes"] == ["circle", "triangle", "cross"]
    assert model.cls.weight.shape[0] == 2  # the class layer was replaced for the new class count
    trained = torch.load(tinydet_run["run_dir"] / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert torch.equal(model.stem[0].weight, trained["stem.0.weight"])  # the rest was loaded


def test_weights_of_another_architecture_are_a_clear_error(tinydet_run):
    with pytest.raises(UserError, match="tinydet but --model is " + MODEL):
        models.build(MODEL, ["circle", "triangle", "cross"], 128, weights=str(tinydet_run["run_dir"]), fine_tune=True)


def test_imagenet_backbone_weights_fill_the_backbone_only(tmp_path):
    torch.manual_seed(1)
    imagenet = torchvision.models.mobilenet_v3_large(weights=None).state_dict()
    torch.save(imagenet, tmp_path / "mnv3.pth")
    model, _ = models.build(MODEL, ["a", "b"], 128, weights_backbone=str(tmp_path / "mnv3.pth"))
    state = model.state_dict()
    assert torch.equal(state["backbone.body.0.0.weight"], imagenet["features.0.0.weight"])
    assert torch.equal(state["backbone.body.10.block.0.0.weight"], imagenet["features.10.block.0.0.weight"])


def test_backbone_weights_of_another_architecture_are_refused(tmp_path):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(UserError, match="fit this model's backbone"):
        models.build(MODEL, ["a", "b"], 128, weights_backbone=str(tmp_path / "r18.pth"))


def test_no_torchvision_detector_is_built_with_downloadable_weights(monkeypatch):
    """create() must never let torchvision fetch weights: any download attempt fails the test."""
    import torchvision.models._api as api

    def refuse(*a, **k):
        raise AssertionError("torchvision tried to download weights")

    monkeypatch.setattr(api, "load_state_dict_from_url", refuse)
    # ssdlite's builder would fetch ImageNet backbone weights by default
    assert isinstance(models.create("ssdlite320_mobilenet_v3_large", 3, 128), torch.nn.Module)
