"""COCO metrics through pycocotools, and tinydet's assignment and post-processing on hand-made cases."""

from __future__ import annotations

import copy

import pytest
import torch

from dlbox.tasks.detect import tinydet
from dlbox.tasks.detect.data import letterbox
from dlbox.tasks.detect.metrics import coco_eval

GT = {
    "images": [{"id": 1, "file_name": "a.png", "width": 200, "height": 100}],
    "categories": [{"id": 1, "name": "cat"}, {"id": 5, "name": "dog"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 30], "area": 1200, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 5, "bbox": [100, 20, 50, 50], "area": 2500, "iscrowd": 0},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [150, 60, 45, 35], "area": 1575, "iscrowd": 1},
    ],
}


def _det(ann, score):
    return {"image_id": ann["image_id"], "category_id": ann["category_id"], "bbox": list(ann["bbox"]), "score": score}


def test_perfect_detections_score_ap_one_and_size_ranges_without_boxes_are_none():
    m = coco_eval(GT, [_det(GT["annotations"][0], 0.9), _det(GT["annotations"][1], 0.8)])
    one = pytest.approx(1.0, abs=1e-12)  # pycocotools' float64 averages, not rounded
    assert m["AP"] == one and m["AP50"] == one and m["AP75"] == one
    assert m["APs"] is None and m["APl"] is None and m["APm"] == one  # both boxes are COCO "medium"
    assert m["per_class"] == {"cat": one, "dog": one}


def test_a_detection_on_a_crowd_region_is_not_a_false_positive():
    dets = [_det(GT["annotations"][0], 0.9), _det(GT["annotations"][1], 0.8), _det(GT["annotations"][2], 0.95)]
    assert coco_eval(GT, dets)["AP"] == pytest.approx(1.0, abs=1e-12)  # the crowd box is kept in the ground truth and ignored when matched
    no_crowd = copy.deepcopy(GT)
    no_crowd["annotations"] = no_crowd["annotations"][:2]
    assert coco_eval(no_crowd, dets)["per_class"]["cat"] < 0.9  # without it, the same detection costs precision


def test_per_class_ap_comes_from_the_precision_array():
    m = coco_eval(GT, [_det(GT["annotations"][0], 0.9)])  # the dog is missed
    assert m["per_class"] == {"cat": pytest.approx(1.0), "dog": 0.0} and m["AP"] == pytest.approx(0.5)


def test_a_box_smaller_than_a_cell_still_gets_a_positive_cell_on_the_fine_level():
    pts, strides = tinydet.points(64, 64)
    gt = torch.tensor([[21.0, 30.0, 26.0, 34.0], [0.0, 0.0, 60.0, 60.0]])  # a 5x4 px box and a large one
    m = tinydet.assign(gt, pts, strides, 64)
    tiny = m == 0
    assert tiny.sum() >= 1 and (strides[tiny] == 8).all()
    assert (strides[m == 1] == 16).any()  # the large box is learnt on the coarse level too


def test_postprocess_suppresses_duplicates_of_a_class_but_keeps_other_classes():
    boxes = torch.tensor([[10.0, 10, 50, 50], [11, 10, 51, 50], [10, 10, 50, 50], [80, 80, 90, 90]])
    scores = torch.tensor([[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.01, 0.02]])  # (A=4, C=2)
    b, s, labels = tinydet.postprocess(boxes, scores, score_thresh=0.05, iou_thresh=0.6)
    assert labels.tolist() == [0, 1] and torch.allclose(s, torch.tensor([0.9, 0.7]))
    assert torch.equal(b[0], boxes[0])


def test_letterbox_keeps_the_aspect_ratio_and_pads_right_and_bottom():
    from PIL import Image

    canvas, scale = letterbox(Image.new("RGB", (200, 100), (255, 0, 0)), 160)
    assert canvas.size == (160, 160) and scale == 0.8
    assert canvas.getpixel((159, 79)) == (255, 0, 0) and canvas.getpixel((10, 81)) == (114, 114, 114)
