"""COCO tools never write what is not data, and refuse what they cannot read, in one line naming the file:
export-yolo shares `coco check`'s validation (unknown category, string coordinate, negative width), convert
never writes NaN/Infinity, subset dedups and refuses an empty class list, split refuses fractions past 1,
check decodes every pixel (a truncated JPEG), detect evaluate refuses ground truth with a negative width."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from PIL import Image

from dlbox.data import coco
from tests.conftest import assert_user_error, run_main


def _coco_dir(root: Path, boxes: list | None = None, category_id: int = 1) -> Path:
    (root / "images").mkdir(parents=True)
    for i in (1, 2):
        Image.new("RGB", (40, 30), (i * 60, 90, 30)).save(root / "images" / f"{i}.png")
    data = {"images": [{"id": i, "file_name": f"images/{i}.png", "width": 40, "height": 30} for i in (1, 2)],
            "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
            "annotations": [{"id": k + 1, "image_id": 1 + k % 2, "category_id": category_id if k == 0 else 1 + k % 2,
                             "bbox": b, "area": 1.0, "iscrowd": 0}
                            for k, b in enumerate(boxes or [[2, 3, 10, 8], [5, 5, 20, 10]])]}  # fmt: skip
    (root / "annotations").mkdir()
    (root / "annotations" / "all.json").write_text(json.dumps(data))
    return root


def _json_floats(path: Path) -> list[float]:
    out = []

    def walk(x):
        if isinstance(x, float):
            out.append(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(json.loads(path.read_text(), parse_constant=lambda c: float(c)))
    return out


@pytest.mark.parametrize("case, boxes, category, fragment", [
    ("unknown category", None, 7, "category id 7"),
    ("string coordinate", [[2, "three", 10, 8], [5, 5, 20, 10]], 1, "bbox"),
    ("negative width", [[2, 3, -10, 8], [5, 5, 20, 10]], 1, "x2 < x1"),
])  # fmt: skip
def test_export_yolo_refuses_what_coco_check_finds(case, boxes, category, fragment, tmp_path, capsys):
    src = _coco_dir(tmp_path / "src", boxes, category)
    res = run_main(capsys, "data", "coco", "export-yolo", src, "--out", tmp_path / "yolo")
    line = assert_user_error(res, "all.json", fragment)
    assert "coco check --fix" in line
    assert not (tmp_path / "yolo").exists()
    assert run_main(capsys, "data", "coco", "check", src).returncode == 1  # the same file, the same verdict


def test_export_yolo_clips_to_the_image_and_never_writes_a_negative_size(tmp_path, capsys):
    src = _coco_dir(tmp_path / "src", [[-5, -4, 20, 10], [30, 20, 20, 20]])  # both stick out of the 40x30 image
    res = run_main(capsys, "data", "coco", "export-yolo", src, "--out", tmp_path / "yolo", "--json")
    assert res.returncode == 0, res.stderr
    rows = [ln.split() for f in (tmp_path / "yolo" / "labels").glob("*.txt") for ln in f.read_text().splitlines()]
    assert len(rows) == 2
    for _, *vals in rows:
        cx, cy, w, h = map(float, vals)
        assert w > 0 and h > 0 and 0 <= cx - w / 2 and cx + w / 2 <= 1 + 1e-6 and 0 <= cy - h / 2 and cy + h / 2 <= 1 + 1e-6


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_convert_from_csv_never_writes_nan_or_infinity(value, tmp_path, capsys):
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (40, 30)).save(tmp_path / "imgs" / "a.png")
    csv = tmp_path / "boxes.csv"
    csv.write_text(f"a.png,1,2,10,12,circle\na.png,{value},2,10,12,square\n")
    res = run_main(capsys, "data", "coco", "convert", csv, "--from", "csv", "--images", tmp_path / "imgs", "--out", tmp_path / "c")
    assert_user_error(res, "not finite", "boxes.csv line 2")
    assert not (tmp_path / "c").exists()
    res = run_main(capsys, "data", "coco", "convert", csv, "--from", "csv", "--images", tmp_path / "imgs",
                   "--out", tmp_path / "c", "--skip-invalid", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = tmp_path / "c" / "annotations" / "all.json"
    assert "NaN" not in out.read_text() and "Infinity" not in out.read_text()
    assert all(math.isfinite(v) for v in _json_floats(out)) and len(json.loads(out.read_text())["annotations"]) == 1


def test_convert_from_yolo_never_writes_nan(tmp_path, capsys):
    (tmp_path / "y" / "images").mkdir(parents=True)
    (tmp_path / "y" / "labels").mkdir()
    Image.new("RGB", (40, 30)).save(tmp_path / "y" / "images" / "a.png")
    (tmp_path / "y" / "labels" / "a.txt").write_text("0 0.5 0.5 nan 0.2\n")
    (tmp_path / "y" / "classes.txt").write_text("circle\n")
    res = run_main(capsys, "data", "coco", "convert", tmp_path / "y", "--from", "yolo", "--out", tmp_path / "c")
    assert_user_error(res, "not finite", "a.txt line 1")


def test_save_refuses_nan_instead_of_writing_it(tmp_path):
    from dlbox.base.errors import UserError

    with pytest.raises(UserError, match="NaN or infinite"):
        coco.save({"images": [], "annotations": [{"bbox": [float("nan"), 0, 1, 1]}]}, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_subset_dedups_classes_and_refuses_an_empty_list(tmp_path, capsys):
    src = _coco_dir(tmp_path / "src")
    res = run_main(capsys, "data", "coco", "subset", src, "--classes", "circle,circle", "--out", tmp_path / "s", "--json")
    assert res.returncode == 0, res.stderr
    cats = json.loads((tmp_path / "s" / "annotations" / "all.json").read_text())["categories"]
    assert [(c["id"], c["name"]) for c in cats] == [(1, "circle")]
    for empty in ("", ",", " , "):
        assert_user_error(run_main(capsys, "data", "coco", "subset", src, "--classes", empty, "--out", tmp_path / "e"),
                          "--classes", "names no class")  # fmt: skip
    assert not (tmp_path / "e").exists()


def test_split_refuses_fractions_that_sum_past_one(tmp_path, capsys):
    src = _coco_dir(tmp_path / "src")
    res = run_main(capsys, "data", "coco", "split", src / "annotations" / "all.json", "--out", tmp_path / "sp",
                   "--train", "0.8", "--val", "0.3", "--test", "0.1")  # fmt: skip
    assert_user_error(res, "more than 1", "--val 0.3")
    assert not (tmp_path / "sp").exists()


def test_check_decodes_every_pixel_so_a_truncated_jpeg_is_caught(tmp_path, capsys):
    src = _coco_dir(tmp_path / "src")
    buf = io.BytesIO()
    Image.effect_noise((40, 30), 60).convert("RGB").save(buf, format="JPEG", quality=95)
    (src / "images" / "1.png").unlink()
    (src / "images" / "1.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    data = json.loads((src / "annotations" / "all.json").read_text())
    data["images"][0]["file_name"] = "images/1.jpg"
    (src / "annotations" / "all.json").write_text(json.dumps(data))
    res = run_main(capsys, "data", "coco", "check", src, "--json")
    assert res.returncode == 1, res.stderr
    report = res.json()
    reports = report["files"] if "files" in report else [report]
    assert any("unreadable_image_file" in r["issues"] for r in reports), report


def test_a_json_with_a_string_id_is_one_line_naming_the_entry(tmp_path, capsys):
    src = _coco_dir(tmp_path / "src")
    data = json.loads((src / "annotations" / "all.json").read_text())
    data["images"][1]["id"] = "2"
    (src / "annotations" / "all.json").write_text(json.dumps(data))
    assert_user_error(run_main(capsys, "data", "coco", "stats", src), "images[1]", "all.json")


def test_detect_evaluate_refuses_ground_truth_with_a_negative_width(tmp_path, capsys):
    """Checked before the model is loaded: the run given need not even exist."""
    src = _coco_dir(tmp_path / "src", [[2, 3, -10, 8], [5, 5, 20, 10]])
    res = run_main(capsys, "detect", "evaluate", tmp_path / "no-run", "--data", src / "annotations" / "all.json")
    assert_user_error(res, "all.json", "x2 < x1")
