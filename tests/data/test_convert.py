"""Converters: VOC, YOLO, Labelbox, CSV -> COCO and COCO -> YOLO; round trips keep boxes; bad boxes are caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from dlbox.base.errors import UserError
from dlbox.data import coco
from dlbox.data.convert import convert, from_csv, from_labelbox, from_voc, from_yolo, to_yolo

# VOC boxes (1-based, inclusive) on images of odd sizes, one touching the right/bottom edges.
VOC = {
    "a": ((123, 77), [("cat", 1, 1, 40, 30), ("dog", 50, 20, 123, 77)]),
    "b": ((200, 150), [("dog", 13, 17, 29, 88), ("cat", 100, 5, 171, 149), ("cat", 7, 120, 9, 123)]),
    "c": ((64, 201), []),
}


def _write_voc(root: Path) -> Path:
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    for stem, ((w, h), boxes) in VOC.items():
        Image.new("RGB", (w, h), (40, 90, 160)).save(root / "JPEGImages" / f"{stem}.png")
        objs = "".join(
            f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
            f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
            for n, x1, y1, x2, y2 in boxes
        )
        xml = f"<annotation><filename>{stem}.png</filename><size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objs}</annotation>"
        (root / "Annotations" / f"{stem}.xml").write_text(xml)
    return root


def _boxes(data: dict) -> dict[str, list[tuple[str, list[float]]]]:
    """file stem -> sorted [(class, [x1, y1, x2, y2])]."""
    names = coco.categories_by_id(data)
    by_image = coco.anns_by_image(data)
    out = {}
    for im in data["images"]:
        rows = [(names[a["category_id"]], [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]])
                for a in by_image[im["id"]]]  # fmt: skip
        out[Path(im["file_name"]).stem] = sorted(rows)
    return out


def test_voc_to_coco_to_yolo_to_coco_keeps_every_box_within_half_a_pixel(tmp_path):
    voc = _write_voc(tmp_path / "voc")
    convert("voc", voc, tmp_path / "coco")
    first = coco.load(tmp_path / "coco" / "annotations" / "all.json")
    expected = {stem: sorted((n, [x1 - 1, y1 - 1, x2, y2]) for n, x1, y1, x2, y2 in boxes) for stem, (_, boxes) in VOC.items()}
    assert _boxes(first) == expected  # VOC's 1-based inclusive pixels -> COCO pixel edges, exactly
    to_yolo(tmp_path / "coco" / "annotations" / "all.json", tmp_path / "yolo")
    assert (tmp_path / "yolo" / "classes.txt").read_text().split() == ["cat", "dog"]
    assert (tmp_path / "yolo" / "labels" / "c.txt").read_text() == ""  # an image without boxes keeps an empty file
    convert("yolo", tmp_path / "yolo", tmp_path / "back")
    back = coco.load(tmp_path / "back" / "annotations" / "all.json")
    got = _boxes(back)
    assert set(got) == set(expected)
    n = 0
    for stem, rows in expected.items():
        assert [r[0] for r in got[stem]] == [r[0] for r in rows]
        for (_, a), (_, b) in zip(rows, got[stem], strict=True):
            assert max(abs(u - v) for u, v in zip(a, b, strict=True)) <= 0.5, (stem, a, b)
            n += 1
    assert n == 5
    sizes = {Path(im["file_name"]).stem: (im["width"], im["height"]) for im in back["images"]}
    assert sizes == {stem: wh for stem, (wh, _) in VOC.items()}


def test_converted_images_resolve_from_the_output_directory(tmp_path):
    voc = _write_voc(tmp_path / "voc")
    convert("voc", voc, tmp_path / "out")
    data = coco.load(tmp_path / "out" / "annotations" / "all.json")
    assert all(coco.image_path(tmp_path / "out", im["file_name"]).is_file() for im in data["images"])
    report, _ = coco.check(data, tmp_path / "out")
    assert report["issues"] == {}
    convert("voc", voc, tmp_path / "copied", copy_images=True)
    assert sorted(p.name for p in (tmp_path / "copied" / "images").iterdir()) == ["a.png", "b.png", "c.png"]


def _csv_dir(tmp_path: Path, rows: list[str]) -> Path:
    for name, size in (("p.png", (100, 60)), ("q.png", (80, 80))):
        Image.new("RGB", size).save(tmp_path / name)
    (tmp_path / "boxes.csv").write_text("file,x1,y1,x2,y2,label\n" + "\n".join(rows) + "\n")
    return tmp_path / "boxes.csv"


def test_csv_rows_become_boxes_and_empty_rows_negative_images(tmp_path):
    f = _csv_dir(tmp_path, ["p.png,10,5,30.5,25,car", "p.png,50,10,90,50,person", "q.png,,,,,"])
    data, _ = from_csv(f)
    assert [c["name"] for c in data["categories"]] == ["car", "person"]
    assert len(data["images"]) == 2 and data["images"][1]["width"] == 80
    assert data["annotations"][0]["bbox"] == [10.0, 5.0, 20.5, 20.0]


def test_csv_box_with_x2_left_of_x1_is_an_error_naming_the_line(tmp_path):
    f = _csv_dir(tmp_path, ["p.png,10,5,30,25,car", "p.png,50,10,40,50,car"])
    with pytest.raises(UserError, match=r"boxes.csv line 3: box \(50, 10, 40, 50\) has x2 < x1"):
        from_csv(f)


def test_skip_invalid_drops_bad_boxes_and_counts_them(tmp_path, cli):
    f = _csv_dir(tmp_path, ["p.png,10,5,30,25,car", "p.png,50,10,40,50,car", "q.png,5,5,5,9,car", "q.png,1,1,9,9,car"])
    res = cli("data", "coco", "convert", "--from", "csv", f, "--to", "coco", "--out", tmp_path / "out", "--skip-invalid", "--json")
    assert res.returncode == 0, res.stderr
    r = res.json()
    assert r["annotations"] == 2 and r["skipped"] == {"x2 < x1 or y2 < y1": 1, "zero area": 1}
    assert len(coco.load(r["file"])["annotations"]) == 2


def test_yolo_class_index_outside_the_names_is_an_error_or_counted(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.new("RGB", (50, 40)).save(tmp_path / "images" / "x.png")
    (tmp_path / "labels" / "x.txt").write_text("0 0.5 0.5 0.2 0.25\n3 0.5 0.5 0.1 0.1\n")
    (tmp_path / "classes.txt").write_text("a\nb\n")
    with pytest.raises(UserError, match="x.txt line 2: class index 3 is outside the 2 names"):
        from_yolo(tmp_path)
    data, _ = from_yolo(tmp_path, skip_invalid=True)
    assert data["skipped"] == {"unknown class": 1}
    assert data["annotations"][0]["bbox"] == pytest.approx([20.0, 15.0, 10.0, 10.0])


def test_labelbox_v1_json_and_v2_ndjson_give_the_same_coco(tmp_path):
    Image.new("RGB", (120, 90)).save(tmp_path / "img1.png")
    v1 = [{"External ID": "img1.png", "Label": {"objects": [
        {"title": "cat", "bbox": {"top": 10, "left": 20, "height": 30, "width": 40}},
        {"title": "dog", "bbox": {"top": 50, "left": 60, "height": 20, "width": 25}}]}}]  # fmt: skip
    v2 = {"data_row": {"external_id": "img1.png"}, "media_attributes": {"width": 120, "height": 90},
          "projects": {"p1": {"labels": [{"annotations": {"objects": [
              {"name": "cat", "bounding_box": {"top": 10, "left": 20, "height": 30, "width": 40}},
              {"name": "dog", "bounding_box": {"top": 50, "left": 60, "height": 20, "width": 25}}]}}]}}}  # fmt: skip
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    (tmp_path / "v2.ndjson").write_text(json.dumps(v2) + "\n")
    a, _ = from_labelbox(tmp_path / "v1.json")
    b, _ = from_labelbox(tmp_path / "v2.ndjson")
    assert _boxes(a) == _boxes(b) == {"img1": [("cat", [20.0, 10.0, 60.0, 40.0]), ("dog", [60.0, 50.0, 85.0, 70.0])]}
    assert a["images"][0]["width"] == b["images"][0]["width"] == 120


def test_voc_box_with_xmax_left_of_xmin_is_an_error_naming_the_file(tmp_path):
    voc = _write_voc(tmp_path / "voc")
    xml = (voc / "Annotations" / "b.xml").read_text().replace("<xmax>29</xmax>", "<xmax>3</xmax>")
    (voc / "Annotations" / "b.xml").write_text(xml)
    with pytest.raises(UserError, match=r"b.xml object 1 \(dog\): .* x2 < x1"):
        from_voc(voc)
