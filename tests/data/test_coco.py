"""COCO tools: check (and --fix with counts), split, subset, stats, and the `dlbox data coco` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from dlbox.base.errors import UserError
from dlbox.data import coco


def _dataset(root: Path, n: int = 10) -> dict:
    """n 100x80 images with two boxes each (classes cat and dog), files under root/images."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(1, n + 1):
        Image.new("RGB", (100, 80), (i * 20 % 255, 90, 30)).save(root / "images" / f"{i}.png")
        images.append({"id": i, "file_name": f"{i}.png", "width": 100, "height": 80})
        anns.append({"id": 2 * i - 1, "image_id": i, "category_id": 1, "bbox": [10.0, 10.0, 20.0, 15.0], "area": 300.0, "iscrowd": 0})
        anns.append({"id": 2 * i, "image_id": i, "category_id": 7 if i % 2 else 3, "bbox": [50.0, 30.0, 40.0, 40.0],
                     "area": 1600.0, "iscrowd": 0})  # fmt: skip
    cats = [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}, {"id": 7, "name": "bird"}]
    return {"images": images, "annotations": anns, "categories": cats}


@pytest.fixture
def broken(tmp_path) -> Path:
    """A json with one of each problem --fix knows, next to its images."""
    d = _dataset(tmp_path)
    a = d["annotations"]
    a[0]["bbox"] = [30.0, 10.0, -12.0, 15.0]  # x2 < x1
    a[1]["category_id"] = 99  # not in the categories list
    a[2]["bbox"] = [90.0, 70.0, 30.0, 30.0]  # sticks out of the 100x80 image: clipped to 10x10
    a[3]["bbox"] = [20.0, 20.0, 0.0, 5.0]  # zero area
    a[4]["bbox"] = [200.0, 10.0, 5.0, 5.0]  # entirely outside
    (tmp_path / "images" / "5.png").unlink()  # image 5 and its 2 boxes go
    (tmp_path / "images" / "6.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # unreadable
    (tmp_path / "annotations").mkdir()
    coco.save(d, tmp_path / "annotations" / "all.json")
    return tmp_path / "annotations" / "all.json"


def test_check_finds_every_problem_with_counts_and_examples(broken):
    report, _ = coco.check(coco.load(broken), coco.root_of(broken))
    assert report["issues"] == {"negative_size": 1, "unknown_category": 1, "outside_image": 1, "zero_area": 1,
                                "fully_outside": 1, "missing_image_file": 1, "unreadable_image_file": 1}  # fmt: skip
    assert "x2 < x1" in coco.ISSUES["negative_size"] and "category id 99" in report["examples"]["unknown_category"][0]
    assert not report["ok"]


def test_fix_clips_or_drops_and_reports_what_it_did(broken):
    result = coco.check_file(broken, fix=True)
    r = result["files"][0]
    assert r["fixed"]["outside_image"] == {"count": 1, "action": "clipped"}
    assert r["fixed"]["negative_size"]["count"] == 1 and r["fixed"]["missing_image_file"]["count"] == 1
    assert r["after"] == {"images": 8, "annotations": 20 - 2 * 2 - 4}  # 2 images with their boxes, 4 bad boxes
    fixed = coco.load(broken)
    assert Path(r["backup"]).is_file() and json.loads(Path(r["backup"]).read_text())["annotations"][0]["bbox"][2] == -12.0
    clipped = next(a for a in fixed["annotations"] if a["id"] == 3)
    assert clipped["bbox"] == [90.0, 70.0, 10.0, 10.0]
    again, _ = coco.check(fixed, coco.root_of(broken))
    assert again["issues"] == {} and again["ok"]


def test_check_command_exits_1_with_a_report_and_0_once_fixed(broken, cli):
    res = cli("data", "coco", "check", broken, "--json")
    assert res.returncode == 1 and res.json()["files"][0]["issues"]["unknown_category"] == 1
    res = cli("data", "coco", "check", broken, "--fix")
    assert res.returncode == 0, res.stderr
    assert "-> clipped" in res.stdout and "-> dropped" in res.stdout and "original kept as" in res.stdout


def test_an_empty_annotation_list_is_reported_and_cannot_be_fixed(tmp_path):
    d = _dataset(tmp_path, 2)
    d["annotations"] = []
    report, _ = coco.check(d, tmp_path, fix=True)
    assert report["issues"] == {"no_annotations": 1} and report["remaining"] == ["no_annotations"] and not report["ok"]


def test_split_is_seeded_by_image_and_keeps_boxes_with_their_image(tmp_path):
    d = _dataset(tmp_path, 40)
    parts = coco.split(d, 0.8, 0.1, 0.1, seed=3)
    assert [len(parts[s]["images"]) for s in ("train", "val", "test")] == [32, 4, 4]
    for p in parts.values():
        ids = {im["id"] for im in p["images"]}
        assert all(a["image_id"] in ids for a in p["annotations"]) and len(p["annotations"]) == 2 * len(ids)
    assert parts == coco.split(d, 0.8, 0.1, 0.1, seed=3)
    assert parts["val"]["images"] != coco.split(d, 0.8, 0.1, 0.1, seed=4)["val"]["images"]


def test_split_command_writes_a_coco_directory_whose_images_resolve(tmp_path, cli):
    d = _dataset(tmp_path / "src", 20)
    coco.save(d, tmp_path / "src" / "annotations" / "all.json")
    res = cli("data", "coco", "split", tmp_path / "src" / "annotations" / "all.json", "--out", tmp_path / "out",
              "--train", "0.5", "--val", "0.25", "--test", "0.25", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert {k: v["images"] for k, v in res.json()["splits"].items()} == {"train": 10, "val": 5, "test": 5}
    test = coco.load(tmp_path / "out" / "annotations" / "test.json")
    for im in test["images"]:
        assert coco.image_path(tmp_path / "out", im["file_name"]).is_file()


def test_subset_keeps_images_with_the_classes_and_remaps_ids(tmp_path):
    d = _dataset(tmp_path, 10)
    s = coco.subset(d, ["bird", "cat"])
    assert s["categories"] == [{"id": 1, "name": "bird"}, {"id": 2, "name": "cat"}]
    assert len(s["images"]) == 10  # every image has a cat
    assert sorted({a["category_id"] for a in s["annotations"]}) == [1, 2]
    assert sum(a["category_id"] == 1 for a in s["annotations"]) == 5  # the birds, now id 1
    only_dogs = coco.subset(d, ["dog"])
    assert len(only_dogs["images"]) == 5 and all(a["category_id"] == 1 for a in only_dogs["annotations"])
    with pytest.raises(UserError, match="'dgo' is not a category.*did you mean 'dog'"):
        coco.subset(d, ["dgo"])


def test_stats_counts_boxes_per_class_and_sizes(tmp_path):
    s = coco.stats(_dataset(tmp_path, 4))
    assert s["boxes_per_class"] == {"cat": 4, "dog": 2, "bird": 2}
    assert s["images_per_class"] == {"cat": 4, "dog": 2, "bird": 2}
    assert s["box_size_histogram"]["16-32"] == 4 and s["box_size_histogram"]["32-64"] == 4  # sqrt(300), sqrt(1600)
    assert s["coco_size_ranges"] == {"small": 4, "medium": 4, "large": 0}
    assert s["boxes_per_image"] == {"min": 2, "mean": 2.0, "max": 2}


def test_subset_command_writes_every_split(tmp_path, cli):
    d = _dataset(tmp_path / "src", 6)
    coco.save(d, tmp_path / "src" / "annotations" / "train.json")
    coco.save(coco.split(d, 0.5, 0.5, 0)["val"], tmp_path / "src" / "annotations" / "val.json")
    res = cli("data", "coco", "subset", tmp_path / "src", "--classes", "dog", "--out", tmp_path / "dogs", "--json")
    assert res.returncode == 0, res.stderr
    assert res.json()["splits"]["train"] == {"images": 3, "annotations": 3}
    assert set(coco.split_files(tmp_path / "dogs")) == {"train", "val"}
    assert coco.stats_of(tmp_path / "dogs")["splits"]["train"]["boxes_per_class"] == {"dog": 3}


def test_a_file_that_is_not_coco_is_a_clear_error(tmp_path):
    (tmp_path / "x.json").write_text('{"images": 3}')
    with pytest.raises(UserError, match="no 'images' list"):
        coco.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"images": [')
    with pytest.raises(UserError, match="not valid JSON"):
        coco.load(tmp_path / "y.json")


def test_coco_group_registers_under_data_with_examples():
    import argparse

    from dlbox.cliutil import Parser
    from dlbox.data.coco_commands import register

    root = Parser(prog="dlbox data")
    register(root.add_subparsers(dest="data_command", parser_class=Parser))
    group = root._subparsers._group_actions[0].choices["coco"]
    commands = group._subparsers._group_actions[0].choices
    assert set(commands) == {"split", "subset", "stats", "check", "convert", "export-yolo"}
    for name, p in commands.items():
        assert p.epilog.strip().startswith("example:\n  dlbox data coco " + name), name
        assert any(isinstance(a, argparse._StoreTrueAction) and a.dest == "json" for a in p._actions), name
