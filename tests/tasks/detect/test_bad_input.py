"""Bad detection data stops training with one clear line naming the problem and the fix."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from dlbox.base.errors import UserError
from dlbox.data import coco
from dlbox.tasks.detect.train import DetectConfig, DetectTask
from tests.conftest import assert_user_error


def _dataset(tiny_det: Path, out: Path, edit) -> Path:
    """A COCO directory whose train.json is tiny-det's, changed by ``edit``; images by absolute path."""
    for split in ("train", "val"):
        data = coco.load(tiny_det / "annotations" / f"{split}.json")
        for im in data["images"]:
            im["file_name"] = str(tiny_det / "images" / im["file_name"])
        if split == "train":
            data = copy.deepcopy(data)
            edit(data)
        coco.save(data, out / "annotations" / f"{split}.json")
    return out


def _task(data: Path) -> DetectTask:
    return DetectTask(DetectConfig(data=str(data), img_size=96, device="cpu"))


def test_category_ids_missing_from_the_categories_list_stop_training_with_one_line(tiny_det, tmp_path, cli):
    def edit(d):
        d["annotations"][0]["category_id"] = 42

    data = _dataset(tiny_det, tmp_path / "d", edit)
    res = cli("detect", "train", "--data", data, "--epochs", "1", "--runs-dir", tmp_path / "runs")
    assert_user_error(res, "category id missing from the categories list", "category id 42", "coco check --fix")


def test_a_box_with_x2_left_of_x1_is_an_error(tiny_det, tmp_path):
    def edit(d):
        d["annotations"][3]["bbox"][2] = -5.0  # COCO width < 0: x2 = x + w < x

    with pytest.raises(UserError, match=r"x2 < x1"):
        _task(_dataset(tiny_det, tmp_path / "d", edit))


def test_missing_image_files_are_an_error_naming_one(tiny_det, tmp_path):
    def edit(d):
        d["images"][1]["file_name"] = "/nonexistent/gone.png"

    with pytest.raises(UserError, match=r"1 image file\(s\) missing .*gone.png"):
        _task(_dataset(tiny_det, tmp_path / "d", edit))


def test_an_empty_annotation_list_is_an_error(tiny_det, tmp_path):
    def edit(d):
        d["annotations"] = []

    with pytest.raises(UserError, match="empty annotation list"):
        _task(_dataset(tiny_det, tmp_path / "d", edit))


def test_evaluating_on_data_with_classes_the_model_does_not_know_is_an_error(tinydet_run, tiny_det, tmp_path):
    from dlbox.tasks.detect.evaluate import evaluate

    def edit(d):
        d["categories"][0]["name"] = "hexagon"

    data = _dataset(tiny_det, tmp_path / "d", edit)
    with pytest.raises(UserError, match="'hexagon' is not one of the model's classes"):
        evaluate(str(tinydet_run["run_dir"]), str(data), split="train", threads=1)


def test_a_missing_data_directory_is_an_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        _task(tmp_path / "nope")
