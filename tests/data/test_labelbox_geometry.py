"""Labelbox exports with boxes, polygons, masks (RLE and PNG URL) and points, in v1 JSON and v2 NDJSON: a
polygon's bbox is its tight box, a mask's the extent of its pixels; `coco convert --from labelbox --fetch` goes
from an export whose images are URLs to a checked COCO dataset that split, check and `detect train` use."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlbox.base.errors import UserError
from dlbox.data import coco
from dlbox.data.convert import convert, from_labelbox
from dlbox.data.fetch_images import fetch_images
from dlbox.data.labelbox import rle_decode
from tests.conftest import run_main
from tests.data.serving import boxes_by_file, result_json

pytestmark = pytest.mark.usefixtures("hub_isolated")  # own DLBOX_HOME, no inherited mirrors

SHAPES = ("circle", "triangle", "cross")


def _rle_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with a run of zeros."""
    flat = mask.T.ravel().astype(np.uint8)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return np.diff(np.concatenate([[0], change])).tolist()


def _png(arr: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG")
    return buf.getvalue()


def _kind(a: dict) -> str:
    seg = a.get("segmentation")
    return "box" if seg is None else "polygon" if isinstance(seg, list) else "mask"


def _rect(h: int, w: int, box) -> np.ndarray:
    x, y, bw, bh = (int(v) for v in box)
    m = np.zeros((h, w), bool)
    m[y : y + bh, x : x + bw] = True
    return m


def _exports(server, scenes) -> tuple[list, list, dict]:
    """(v1 rows, v2 rows, expected boxes by file stem) for the scenes served over HTTP: objects cycle through box,
    polygon (a diamond touching the box's edges) and mask (v1: a PNG URL; v2: a PNG URL with a colour in a
    composite, or an RLE); every labelled row has a point, one a line; one row is skipped, one unlabelled."""
    data = scenes["data"]
    names = coco.categories_by_id(data)
    by_image = coco.anns_by_image(data)
    v1, v2, expected = [], [], {}
    for i, im in enumerate(data["images"]):
        url = server.url(f"/lb/{im['file_name']}")
        server.files[f"/lb/{im['file_name']}"] = scenes["files"][im["file_name"]]
        W, H = im["width"], im["height"]
        obj1, obj2 = [], []
        anns = by_image[im["id"]] if i < len(data["images"]) - 2 else []
        composite = np.zeros((H, W, 3), np.uint8)
        for k, a in enumerate(anns):
            x, y, w, h = a["bbox"]
            label = names[a["category_id"]]
            kind = ("box", "polygon", "mask")[(i + k) % 3]
            if kind == "box":
                bb = {"top": y, "left": x, "height": h, "width": w}
                obj1.append({"title": label, "value": label.lower(), "bbox": bb})
                obj2.append({"name": label, "annotation_kind": "ImageBoundingBox", "bounding_box": bb})
            elif kind == "polygon":
                poly = [{"x": x + w / 2, "y": y}, {"x": x + w, "y": y + h / 2}, {"x": x + w / 2, "y": y + h}, {"x": x, "y": y + h / 2}]
                obj1.append({"title": label, "polygon": poly})
                obj2.append({"name": label, "annotation_kind": "ImagePolygon", "polygon": poly})
            else:
                m = _rect(H, W, a["bbox"])
                path = f"/masks/{im['id']}-{k}.png"
                server.files[path] = _png(m.astype(np.uint8) * 255, "L")
                obj1.append({"title": label, "instanceURI": server.url(path)})
                if k % 2:
                    obj2.append({"name": label, "annotation_kind": "ImageSegmentationMask",
                                 "mask": {"counts": _rle_counts(m), "size": [H, W]}})  # fmt: skip
                else:
                    color = [40 + 20 * k, 200, 90]
                    composite[m] = color
                    obj2.append({"name": label, "annotation_kind": "ImageSegmentationMask",
                                 "composite_mask": {"url": server.url(f"/composite/{im['id']}.png"), "color_rgb": color}})  # fmt: skip
            if k == 0:
                obj1.append({"title": "corner", "point": {"x": x, "y": y}})
                obj2.append({"name": "corner", "annotation_kind": "ImagePoint", "point": {"x": x, "y": y}})
        composite[0, 0] = [1, 2, 3]  # another object's colour: not part of any mask above
        server.files[f"/composite/{im['id']}.png"] = _png(composite, "RGB")
        if i == 0:
            obj1.append({"title": "edge", "line": [{"x": 1, "y": 1}, {"x": 5, "y": 9}]})
            obj2.append({"name": "edge", "annotation_kind": "ImagePolyline", "line": [{"x": 1, "y": 1}, {"x": 5, "y": 9}]})
        skip = i == len(data["images"]) - 1
        v1.append({"ID": f"ck{i}", "Labeled Data": url, "External ID": im["file_name"],
                   **({"Label": "Skip"} if skip else {"Label": {"objects": obj1, "classifications": []}})})  # fmt: skip
        labels = [] if i == len(data["images"]) - 2 else [{
            "performance_details": {"seconds_to_create": 3, "skipped": skip},
            "annotations": {"objects": obj2, "classifications": [], "relationships": []}}]  # fmt: skip
        v2.append({"data_row": {"id": f"dr{i}", "row_data": url, "external_id": im["file_name"]},
                   "media_attributes": {"width": W, "height": H, "mime_type": "image/png"},
                   "projects": {"p1": {"name": "shapes", "labels": labels}}})  # fmt: skip
        if anns:
            expected[Path(im["file_name"]).stem] = sorted((names[a["category_id"]], [float(v) for v in a["bbox"]]) for a in anns)
    return v1, v2, expected


def test_v1_and_v2_exports_with_boxes_polygons_and_masks_fetch_and_convert_to_the_same_coco(server, scenes, tmp_path, capsys):
    v1, v2, expected = _exports(server, scenes)
    (tmp_path / "export.json").write_text(json.dumps(v1))
    (tmp_path / "export.ndjson").write_text("".join(json.dumps(r) + "\n" for r in v2))
    r1 = convert("labelbox", tmp_path / "export.json", tmp_path / "one", fetch=True, drop_unlabeled=True)
    r2 = convert("labelbox", tmp_path / "export.ndjson", tmp_path / "two", fetch=True, drop_unlabeled=True)
    for r, out in ((r1, "one"), (r2, "two")):
        data = coco.load(tmp_path / out / "annotations" / "all.json")
        assert boxes_by_file(data) == expected  # polygons' and masks' boxes are the shapes' boxes, exactly
        assert r["left_out"] == r["unlabeled"] == {"skipped in Labelbox": 1, "no labels": 1}
        assert r["check"] == {"ok": True, "issues": {}, "examples": {}}
        assert r["fetch"]["ok"] and r["fetch"]["fetched"] == len(expected)  # not the images left out
        kinds = Counter(_kind(a) for a in data["annotations"])
        assert kinds == {k: r["counts"][k] for k in ("box", "polygon", "mask")} and len(kinds) == 3
        assert r["counts"]["line"] == 1 and r["points"] == len(expected) == len(data["points"])
        assert {p["label"] for p in data["points"]} == {"corner"} and "corner" not in r["classes"]
        assert sorted(r["classes"]) == sorted(SHAPES)
        for a in data["annotations"]:
            if "counts" in a.get("segmentation", {}):
                m = rle_decode(a["segmentation"])
                assert a["area"] == m.sum() == a["bbox"][2] * a["bbox"][3]
    # fetch-images first, convert later: the images are found through the fetch's index (URL -> file)
    server.requests.clear()
    fetched = fetch_images(tmp_path / "export.json", tmp_path / "four")
    assert fetched["ok"] and fetched["fetched"] == len(expected) + 2 and fetched["format"] == "labelbox"
    r4 = convert("labelbox", tmp_path / "export.json", tmp_path / "four", images=tmp_path / "four" / "images")
    assert boxes_by_file(coco.load(tmp_path / "four" / "annotations" / "all.json")) == {**expected, **{
        Path(im["file_name"]).stem: [] for im in scenes["data"]["images"][-2:]}}  # fmt: skip
    assert r4["unlabeled"] == {"skipped in Labelbox": 1, "no labels": 1} and r4["left_out"] == {}
    # without --drop-unlabeled both are kept as images without boxes, and counted
    again = convert("labelbox", tmp_path / "export.ndjson", tmp_path / "three", fetch=True)
    assert again["left_out"] == {} and again["unlabeled"] == {"skipped in Labelbox": 1, "no labels": 1}
    assert again["images"] == len(expected) + 2


def test_a_polygon_gets_its_tight_box_and_a_mask_the_extent_of_its_pixels(tmp_path):
    poly = [(31.25, 40.5), (77.75, 12.0), (90.5, 66.25), (52.0, 88.125), (28.0, 70.0)]
    yy, xx = np.mgrid[:100, :120]
    blob = ((xx - 40) ** 2 + (yy - 30) ** 2 < 15**2) | ((xx - 70) ** 2 / 9 + (yy - 61) ** 2 < 12**2)  # two lobes
    blob[5, 100] = True  # one stray pixel widens the extent
    ys, xs = np.nonzero(blob)
    row = {"data_row": {"external_id": "a.png"}, "media_attributes": {"width": 120, "height": 100},
           "projects": {"p": {"labels": [{"annotations": {"objects": [
               {"name": "Leaf", "value": "leaf", "polygon": [{"x": x, "y": y} for x, y in poly]},
               {"name": "Stone", "value": "stone", "mask": {"counts": _rle_counts(blob), "size": [100, 120]}},
               {"name": "Stone", "mask": {"png": __import__("base64").b64encode(_png(blob.astype(np.uint8) * 255, "L")).decode()}},
           ]}}]}}}  # fmt: skip
    (tmp_path / "e.ndjson").write_text(json.dumps(row) + "\n")
    data, _ = from_labelbox(tmp_path / "e.ndjson")
    p, m_rle, m_png = data["annotations"]
    xs_p, ys_p = [x for x, _ in poly], [y for _, y in poly]
    assert p["bbox"] == [min(xs_p), min(ys_p), max(xs_p) - min(xs_p), max(ys_p) - min(ys_p)]
    assert p["segmentation"] == [[v for pt in poly for v in pt]]
    area = 0.5 * abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(poly, poly[1:] + poly[:1], strict=True)))
    assert p["area"] == pytest.approx(area)
    extent = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
    assert m_rle["bbox"] == m_png["bbox"] == extent == [26, 5, 80, 68]  # x 26..105 (disc, ellipse), y 5 (stray)..72
    assert m_rle["area"] == m_png["area"] == int(blob.sum())
    assert m_rle["segmentation"] == m_png["segmentation"]
    assert (rle_decode(m_rle["segmentation"]) == blob).all()  # the compressed RLE written holds the very pixels
    assert coco.class_names(data) == ["Leaf", "Stone"]  # ontology titles, not the value slugs


def test_bad_geometry_is_named_or_counted(tmp_path):
    row = {"External ID": "a.png", "Label": {"objects": [
        {"title": "x", "polygon": [{"x": 1, "y": 1}, {"x": 5, "y": 5}]},
        {"title": "x", "instanceURI": None, "mask": {"counts": [3, 4], "size": [10, 10]}},
        {"title": "x", "bbox": {"top": 1, "left": 2, "height": 3, "width": 4}}]}}  # fmt: skip
    Image.new("RGB", (10, 10)).save(tmp_path / "a.png")
    (tmp_path / "v1.json").write_text(json.dumps([row]))
    with pytest.raises(UserError, match=r"v1.json row 1 object 1 \(x, polygon\): a polygon needs at least 3 points"):
        from_labelbox(tmp_path / "v1.json")
    data, _ = from_labelbox(tmp_path / "v1.json", skip_invalid=True)
    assert data["skipped"] == {"bad polygon": 1, "bad mask": 1} and len(data["annotations"]) == 1


def test_one_command_from_an_export_of_urls_to_a_dataset_that_split_check_and_detect_train_use(server, scenes, tmp_path,
                                                                                               capsys):  # fmt: skip
    _, v2, expected = _exports(server, scenes)
    server.status["/lb/000002.png"] = 404  # one image cannot be fetched: listed, its row left out
    (tmp_path / "export.ndjson").write_text("".join(json.dumps(r) + "\n" for r in v2))
    out = tmp_path / "data"
    res = run_main(capsys, "data", "coco", "convert", "--from", "labelbox", tmp_path / "export.ndjson", "--fetch",
                   "--drop-unlabeled", "--out", out, "--json")  # fmt: skip
    r = result_json(res)
    assert res.returncode == 1  # one image failed
    assert [f["url"] for f in r["fetch"]["failed"]] == [server.url("/lb/000002.png")] and "HTTP 404" in r["fetch"]["failed"][0]["reason"]
    assert r["left_out"]["image not fetched"] == 1 and r["images"] == len(expected) - 1 and r["check"]["ok"]
    text = run_main(capsys, "data", "coco", "convert", "--from", "labelbox", tmp_path / "export.ndjson", "--fetch",
                    "--drop-unlabeled", "--out", out).stdout  # fmt: skip
    assert "1 failed" in text and "check: no problems found" in text
    assert server.count("/lb/000000.png") == 1  # fetched once over both runs

    res = run_main(capsys, "data", "coco", "split", out / "annotations" / "all.json", "--train", "0.75", "--val", "0.25",
                   "--test", "0", "--out", out, "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    parts = {k: coco.load(out / "annotations" / f"{k}.json") for k in ("train", "val")}
    assert sum(len(d["points"]) for d in parts.values()) == r["points"] == r["images"]  # one point per image
    for d in parts.values():  # each point went with its image
        assert {p["image_id"] for p in d["points"]} == {im["id"] for im in d["images"]}
    res = run_main(capsys, "data", "coco", "check", out, "--json")
    assert res.returncode == 0 and result_json(res)["ok"], res.stdout
    res = run_main(capsys, "detect", "train", "--data", out, "--epochs", "1", "--img-size", "64", "--batch-size", "4",
                   "--threads", "1", "--device", "cpu", "--runs-dir", tmp_path / "runs", "--name", "lb", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    run = Path(result_json(res)["run_dir"])
    assert (run / "checkpoints" / "last.pt").is_file()
