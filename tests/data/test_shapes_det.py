"""The shapes-det sample: seeded, COCO with a split, several classes and objects, 8-64 px boxes, occlusion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlbox.base.errors import UserError
from dlbox.data import coco
from dlbox.data.shapes_det import write_shapes_det


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sd") / "shapes-det"
    return out, write_shapes_det(out, seed=0, n_images=60)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_sample_is_seeded_byte_for_byte(sample, tmp_path):
    out, _ = sample
    write_shapes_det(tmp_path / "again", seed=0, n_images=60)
    assert _files(out) == _files(tmp_path / "again")
    write_shapes_det(tmp_path / "other", seed=1, n_images=60)
    assert _files(out) != _files(tmp_path / "other")


def test_the_sample_is_coco_with_a_disjoint_train_val_test_split(sample):
    out, summary = sample
    files = coco.split_files(out)
    assert set(files) == {"train", "val", "test"}
    ids = {s: {im["id"] for im in coco.load(f)["images"]} for s, f in files.items()}
    assert len(ids["train"]) == 48 and len(ids["val"]) == len(ids["test"]) == 6
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert summary["splits"] == {"train": 48, "val": 6, "test": 6}
    for f in files.values():
        report, _ = coco.check(coco.load(f), coco.root_of(f))
        assert report["issues"] == {}, report


def test_images_hold_several_objects_of_three_classes_sized_8_to_64_px_some_occluded(sample):
    out, summary = sample
    data = {"images": [], "annotations": []}
    for f in coco.split_files(out).values():
        d = coco.load(f)
        data["images"] += d["images"]
        data["annotations"] += d["annotations"]
        cats = d["categories"]
    assert len(cats) >= 3 and summary["classes"] == [c["name"] for c in cats]
    per_image = np.bincount([a["image_id"] for a in data["annotations"]])[1:]
    assert per_image.min() >= 1 and per_image.mean() >= 3
    assert all(128 <= im["width"] <= 256 and 128 <= im["height"] <= 256 for im in data["images"])
    sides = np.array([max(a["bbox"][2], a["bbox"][3]) for a in data["annotations"]])
    assert sides.max() <= 64 and np.percentile(sides, 5) >= 8  # occlusion may shrink a visible box a little
    assert sum(a["occluded"] > 0 for a in data["annotations"]) >= 10
    assert all(a["occluded"] <= 0.5 for a in data["annotations"])
    assert {a["category_id"] for a in data["annotations"]} == {c["id"] for c in cats}


def test_boxes_are_tight_around_the_visible_pixels():
    from dlbox.data.shapes_det import CLASSES, _tight_box, shape_mask

    for kind in CLASSES:
        mask = shape_mask(kind, 100, 80, 40.3, 35.7, 12.0, 0.7)  # (80, 100)
        x, y, w, h = _tight_box(mask)
        assert mask[y : y + h, x : x + w].sum() == mask.sum()  # every pixel inside the box
        assert mask[y, x : x + w].any() and mask[y + h - 1, x : x + w].any()  # and no empty border row/column
        assert mask[y : y + h, x].any() and mask[y : y + h, x + w - 1].any()
    circle = shape_mask("circle", 100, 80, 40, 40, 15, 0)  # x from 25 to 55
    occluder = shape_mask("square", 100, 80, 83, 40, 40, 0)  # x from 51, y from 8 to 72: covers the right part
    full, visible = _tight_box(circle), _tight_box(circle & ~occluder)
    assert full[0] + full[2] >= 55 and visible[0] + visible[2] <= 51 and visible[0] == full[0]


def test_n_per_class_asks_for_about_that_many_boxes_of_each_class(tmp_path):
    r = write_shapes_det(tmp_path / "s", n_per_class=20)
    assert all(10 <= n <= 40 for n in r["per_class"].values()), r["per_class"]


def test_bad_options_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="classes must be 3 to 5"):
        write_shapes_det(tmp_path / "x", classes=2)
    with pytest.raises(UserError, match="at least 3 images"):
        write_shapes_det(tmp_path / "x", n_images=2)
