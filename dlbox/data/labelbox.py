"""Labelbox exports -> COCO: boxes, polygons, masks and points, from v1 JSON and v2 NDJSON exports.

Rows:
- v1 (a JSON list): ``"Labeled Data"`` (the image URL), ``"External ID"``, ``"Label": {"objects": [...]}`` (or
  ``"Label": "Skip"`` / ``"Skipped": true``); an object has ``title`` (the ontology's title) and one of ``bbox
  {top,left,height,width}``, ``polygon [{x,y}]``, ``point {x,y}``, ``line``, ``instanceURI`` (a mask PNG).
- v2 (NDJSON, one data row a line): ``data_row {row_data, external_id}``, ``media_attributes {width,height}``,
  ``projects -> labels -> annotations.objects``; an object has ``name`` (the ontology's title) and one of
  ``bounding_box``, ``polygon``, ``point``, ``line``, ``mask`` / ``composite_mask`` (``{url[, color_rgb]}``,
  ``{png: base64}`` or a COCO RLE ``{counts, size}``); a label with ``performance_details.skipped`` is a skip.

Geometry -> COCO: a box is ``bbox`` (pixels, x/y the top-left corner); a polygon becomes ``segmentation
[[x0, y0, x1, y1, ...]]`` with its tight ``bbox`` ``[min x, min y, max x - min x, max y - min y]`` and its
area (shoelace); a mask becomes an RLE ``segmentation`` with the extent of its pixels as ``bbox`` (pixel
edges: a single pixel at (3, 4) is ``[3, 4, 1, 1]``) and its pixel count as area. Points have no box: they
are kept in the json's ``points`` list (``{image_id, label, x, y}``; detection ignores it). Lines are counted
and left out. Class names are the ontology titles (``title``/``name``; ``value``, the slug, when missing).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlbox.base.errors import UserError, not_found
from dlbox.data.builder import Builder, _image_size
from dlbox.data.urlfetch import (
    STATE,
    Want,
    _read_index,
    _state,
    fetch_urls,
    name_from_url,
    render_failures,
    safe_name,
    url_key,
)

SKIPPED, NO_LABELS, NOT_FETCHED, DUPLICATE = "skipped in Labelbox", "no labels", "image not fetched", "duplicate image"


@dataclass
class Obj:
    kind: str  # box, polygon, mask, point, line
    label: str
    geom: Any


# --- rows -------------------------------------------------------------------------------------------------
def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The data rows of a v1 JSON export (a list) or a v2 NDJSON export (one row a line)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Labelbox export {str(path)!r} {not_found(path)}", "pass the .json or .ndjson file exported from Labelbox")
    text = path.read_text(encoding="utf-8-sig")
    try:
        data = json.loads(text)
        rows = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        rows = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise UserError(f"{path.name} line {n} is not valid JSON ({e})", "export again from Labelbox: the file is truncated or edited") from None
    bad = next((n for n, r in enumerate(rows, start=1) if not isinstance(r, dict)), None)
    if bad is not None:
        raise UserError(f"{path.name} row {bad} is not an object", "is this a Labelbox export (v1 JSON or v2 NDJSON)?")
    return rows


def row_url(row: dict[str, Any]) -> str | None:
    url = row.get("Labeled Data") or (row.get("data_row") or {}).get("row_data") or row.get("row_data")
    return str(url) if url else None


def row_name(row: dict[str, Any]) -> str | None:
    dr = row.get("data_row") or {}
    name = row.get("External ID") or dr.get("external_id") or row.get("external_id") or dr.get("global_key")
    return str(name) if name else None


def image_wants(rows: list[dict[str, Any]], drop_unlabeled: bool = False) -> tuple[list[Want], dict[str, Any]]:
    """What to fetch: each row's image URL, named by its external id (else the URL's file name); with
    ``drop_unlabeled`` not the images of rows that will be left out (skipped, or without objects)."""
    wants, without = [], 0
    for row in rows:
        url = row_url(row)
        if drop_unlabeled and unlabeled(row):
            continue
        if url:
            wants.append(Want(url, safe_name(row_name(row) or "") if row_name(row) else name_from_url(url)))
        else:
            without += 1
    return wants, {"rows_without_url": without}


def _labels_v2(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [lab for p in (row.get("projects") or {}).values() if isinstance(p, dict) for lab in p.get("labels") or []]


def status(row: dict[str, Any]) -> str | None:
    """``SKIPPED`` (a labeller pressed Skip), or None."""
    if row.get("Skipped") is True or row.get("Label") == "Skip":
        return SKIPPED
    if any((lab.get("performance_details") or {}).get("skipped") is True for lab in _labels_v2(row)):
        return SKIPPED
    return None


def unlabeled(row: dict[str, Any]) -> str | None:
    """``SKIPPED``, ``NO_LABELS`` (no box, polygon or mask), or None for a row with objects."""
    return status(row) or (None if any(o.kind in ("box", "polygon", "mask") for o in objects(row)) else NO_LABELS)


def _kind_of(o: dict[str, Any]) -> tuple[str, Any] | None:
    if "bbox" in o or "bounding_box" in o:
        return "box", o.get("bbox", o.get("bounding_box"))
    if "polygon" in o:
        return "polygon", o["polygon"]
    if "point" in o:
        return "point", o["point"]
    if "line" in o:
        return "line", o["line"]
    mask = o.get("mask") or o.get("composite_mask")
    if isinstance(mask, dict):
        spec = dict(mask)
        if "color_rgb" not in spec and isinstance(o.get("composite_mask"), dict):
            spec.setdefault("color_rgb", o["composite_mask"].get("color_rgb"))
        return "mask", spec
    if o.get("instanceURI"):
        return "mask", {"url": o["instanceURI"], "color_rgb": o.get("colorRGB")}
    return None


def objects(row: dict[str, Any]) -> list[Obj]:
    """Every object of a v1 or v2 row, in order."""
    raw: list[tuple[dict[str, Any], str]] = []
    label = row.get("Label")
    if isinstance(label, dict):
        raw += [(o, str(o.get("title") or o.get("value") or "")) for o in label.get("objects") or [] if isinstance(o, dict)]
    for lab in _labels_v2(row):
        objs = (lab.get("annotations") or {}).get("objects") or []
        raw += [(o, str(o.get("name") or o.get("title") or o.get("value") or "")) for o in objs if isinstance(o, dict)]
    out = []
    for o, name in raw:
        k = _kind_of(o)
        if k is not None:
            out.append(Obj(k[0], name, k[1]))
    return out


def mask_urls(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(o.geom["url"] for r in rows for o in objects(r)
                              if o.kind == "mask" and isinstance(o.geom.get("url"), str)))  # fmt: skip


# --- geometry ---------------------------------------------------------------------------------------------
def polygon_points(geom: Any) -> list[tuple[float, float]]:
    """[(x, y)] from ``[{x, y}, ...]`` (or ``[[x, y], ...]``); ValueError when malformed."""
    if not isinstance(geom, list):
        raise ValueError("polygon is not a list of points")
    pts = []
    for p in geom:
        x, y = (p["x"], p["y"]) if isinstance(p, dict) else p
        pts.append((float(x), float(y)))
    if pts and not np.isfinite(np.array(pts)).all():
        raise ValueError("polygon has a coordinate that is not finite")
    return pts


def polygon_box(pts: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """The tight box (x1, y1, x2, y2) of a polygon's vertices."""
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def polygon_area(pts: list[tuple[float, float]]) -> float:
    x = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x1, y1, x2, y2) pixel edges of the True pixels, or None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO's compressed RLE of a (H, W) bool mask, json-ready (``counts`` as text)."""
    from pycocotools import mask as mask_util

    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """A COCO RLE, compressed (``counts`` text) or not (``counts`` a list), -> (H, W) bool."""
    from pycocotools import mask as mask_util

    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):  # runs over the column-major pixels, starting with background
        runs = np.array([int(c) for c in counts], dtype=np.int64)
        if (runs < 0).any() or runs.sum() != h * w:
            raise ValueError(f"RLE counts sum to {int(runs.sum())}, not {h}x{w} = {h * w}")
        values = np.arange(len(runs)) % 2 == 1
        return np.repeat(values, runs).reshape(w, h).T.copy()
    enc = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    with warnings.catch_warnings():  # pycocotools and numpy 2: a DeprecationWarning about __array__(copy=)
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_util.decode(enc).astype(bool)


def _png_mask(data: bytes, color: Any) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im.convert("RGBA"))
    rgb, alpha = arr[..., :3], arr[..., 3] > 0
    if isinstance(color, str) and color.startswith("#") and len(color) == 7:
        color = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    if isinstance(color, (list, tuple)) and len(color) == 3:
        return np.all(rgb == np.array(color, dtype=np.uint8), axis=-1) & alpha
    return (rgb.max(axis=-1) > 0) & alpha


def decode_mask(spec: dict[str, Any], mask_files: dict[str, Path]) -> np.ndarray:
    """A mask object's pixels; ValueError when it cannot be read, LookupError when its PNG was not fetched."""
    color = spec.get("color_rgb") or spec.get("colorRGB")
    if "counts" in spec and "size" in spec:
        return rle_decode(spec)
    if isinstance(spec.get("rle"), dict):
        return rle_decode(spec["rle"])
    if isinstance(spec.get("png"), str):
        try:
            return _png_mask(base64.b64decode(spec["png"]), color)
        except (ValueError, OSError) as e:
            raise ValueError(f"inline mask PNG cannot be read ({e})") from None
    url = spec.get("url") or spec.get("instanceURI")
    if isinstance(url, str):
        path = mask_files.get(url)
        if path is None:
            raise LookupError(url)
        return _png_mask(path.read_bytes(), color)
    raise ValueError("mask has no url, png or RLE counts")


# --- to COCO ------------------------------------------------------------------------------------------------
def fetch_masks(rows: list[dict[str, Any]], folder: Path, workers: int = 8) -> tuple[dict[str, Path], list[dict]]:
    """Download the mask PNGs the rows refer to into ``folder`` (the hub's downloader, resumable)."""
    urls = mask_urls(rows)
    if not urls:
        return {}, []
    got = fetch_urls([Want(u, hashlib.sha1(u.encode()).hexdigest()[:16]) for u in urls], folder, workers=workers,
                     desc="fetch masks")  # fmt: skip
    return {u: folder / f for u, f in got.files.items()}, got.failed + got.missing


def to_coco(path: str | Path, images: str | Path | None = None, skip_invalid: bool = False,
            drop_unlabeled: bool = False, files: dict[str, str] | None = None,
            masks_dir: str | Path | None = None, workers: int = 8) -> tuple[dict[str, Any], Path]:  # fmt: skip
    """A Labelbox export -> (COCO dict, image folder). ``files`` maps image URLs to fetched file names in
    ``images`` (rows whose image was not fetched are left out and counted); without it images are matched by
    external id (or by the index an earlier `dlbox data fetch-images` left in that folder). The dict carries
    ``skipped`` (bad objects), ``left_out`` (images not in the result, by reason), ``unlabeled`` (images
    skipped in Labelbox or without objects, left out only with ``drop_unlabeled``), ``counts`` (objects by
    kind), ``points`` and ``mask_failures``."""
    path = Path(path)
    rows = read_rows(path)
    img_dir = Path(images) if images else path.parent
    if files is None:  # images fetched earlier into this folder: their index maps URL -> file
        idx = _read_index(_state(img_dir) / "index.jsonl") if (_state(img_dir)).name == STATE else {}
        files_by_url = {u: r["file"] for u, r in idx.items() if (img_dir / r["file"]).is_file()}
        fetched = False
    else:
        files_by_url, fetched = files, True
    from dlbox.hub.settings import home

    mask_files, mask_failures = fetch_masks(rows, Path(masks_dir) if masks_dir else home() / "labelbox-masks", workers)
    b = Builder(None, skip_invalid)
    left_out: Counter[str] = Counter()
    unlabelled_counts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    points: list[dict[str, Any]] = []
    seen_files: set[str] = set()
    for n, row in enumerate(rows, start=1):
        st = unlabeled(row)
        if st is not None:
            unlabelled_counts[st] += 1
            if drop_unlabeled:  # (not fetched either)
                left_out[st] += 1
                continue
        url = row_url(row)
        name = (files_by_url.get(url) or files_by_url.get(url_key(url))) if url else None  # index: by URL key
        if fetched and name is None:
            left_out[NOT_FETCHED] += 1
            continue
        if name is None:
            name = row_name(row)
            if not name and url:
                name = name_from_url(url)
        if not name:
            raise UserError(f"{path.name} row {n} has no external id (the image file name) and no image URL")
        if fetched and name in seen_files:
            left_out[DUPLICATE] += 1  # the same picture twice (same content): its first row is kept
            continue
        seen_files.add(name)
        media = row.get("media_attributes") or {}
        if not fetched and media.get("width") and media.get("height"):
            w, h = int(media["width"]), int(media["height"])
        else:
            w, h = _image_size(img_dir / name)
        iid = b.image(str(name), w, h)
        for k, o in enumerate(objects(row)):
            where = f"{path.name} row {n} object {k + 1} ({o.label}, {o.kind})"
            kinds[o.kind] += 1
            _add(b, iid, o, where, w, h, mask_files, points)
    data = b.result()
    if points:
        data["points"] = points
    data["skipped"] = dict(b.skipped)
    data["left_out"] = dict(left_out)
    data["unlabeled"] = dict(unlabelled_counts)
    data["counts"] = dict(kinds)
    data["mask_failures"] = mask_failures
    return data, img_dir


def _add(b, iid: int, o: Obj, where: str, w: int, h: int, mask_files: dict[str, Path], points: list) -> None:
    if o.kind == "box":
        try:
            x1, y1 = float(o.geom["left"]), float(o.geom["top"])
            x2, y2 = x1 + float(o.geom["width"]), y1 + float(o.geom["height"])
        except (KeyError, TypeError, ValueError):
            b.invalid(f"{where}: bbox needs numeric top, left, height, width", "bad bbox")
            return
        b.box(iid, o.label, x1, y1, x2, y2, where)
    elif o.kind == "polygon":
        try:
            pts = polygon_points(o.geom)
        except (KeyError, TypeError, ValueError) as e:
            b.invalid(f"{where}: {e}", "bad polygon")
            return
        if len(pts) < 3:
            b.invalid(f"{where}: a polygon needs at least 3 points, got {len(pts)}", "bad polygon")
            return
        x1, y1, x2, y2 = polygon_box(pts)
        b.box(iid, o.label, x1, y1, x2, y2, where, segmentation=[[v for p in pts for v in p]], area=polygon_area(pts))
    elif o.kind == "mask":
        try:
            m = decode_mask(o.geom, mask_files)
        except LookupError:
            b.skipped["mask not fetched"] += 1  # listed in mask_failures; not the export's fault
            return
        except (ValueError, KeyError, TypeError, OSError) as e:
            b.invalid(f"{where}: {e}", "bad mask")
            return
        if m.shape != (h, w):
            b.invalid(f"{where}: mask is {m.shape[1]}x{m.shape[0]}, the image {w}x{h}", "mask size differs")
            return
        box = mask_box(m)
        if box is None:
            b.invalid(f"{where}: the mask is empty", "empty mask")
            return
        b.box(iid, o.label, *box, where, segmentation=rle_encode(m), area=float(m.sum()))
    elif o.kind == "point":
        try:
            x, y = float(o.geom["x"]), float(o.geom["y"])
        except (KeyError, TypeError, ValueError):
            b.invalid(f"{where}: point needs numeric x, y", "bad point")
            return
        points.append({"image_id": iid, "label": o.label, "x": x, "y": y})
    # lines have no COCO detection form: counted in ``counts`` and left out


def render_extra(r: dict[str, Any]) -> str:
    """The Labelbox part of `dlbox data coco convert`'s report (after its first line)."""
    lines = []
    counts = {k: v for k, v in r.get("counts", {}).items() if v}
    if counts:
        plural = {"box": "boxes"}
        note = {"line": " (not converted)", "point": " (kept in the json's 'points' list)"}
        lines.append("objects: " + ", ".join(f"{n} {plural.get(k, k + 's') if n != 1 else k}{note.get(k, '')}"
                                             for k, n in counts.items()))  # fmt: skip
    unl = r.get("unlabeled") or {}
    if unl:
        what = ", ".join(f"{n} {k}" for k, n in unl.items())
        lines.append(f"images {what}: " + ("left out" if r.get("left_out", {}).keys() & unl.keys()
                                            else "kept without boxes (--drop-unlabeled leaves them out)"))  # fmt: skip
    other = {k: v for k, v in (r.get("left_out") or {}).items() if k not in unl}
    if other:
        lines.append("left out: " + ", ".join(f"{n} x {k}" for k, n in other.items()))
    if r.get("mask_failures"):
        lines.append(f"{len(r['mask_failures'])} mask PNG(s) could not be fetched, their objects left out:")
        lines += [f"  {f['url']}: {f.get('reason', 'offline')}" for f in r["mask_failures"][:10]]
    if r.get("fetch"):
        f = r["fetch"]
        lines.append(f"images: {f['fetched']} fetched, {f['present']} already there"
                     + (f", {len(f['duplicates'])} duplicate(s)" if f["duplicates"] else ""))  # fmt: skip
        lines += render_failures(f)
    if r.get("check"):
        c = r["check"]
        lines.append("check: no problems found" if not c["issues"] else
                     "check: " + ", ".join(f"{n} x {k}" for k, n in c["issues"].items())
                     + f" (run `dlbox data coco check {r['file']} --fix`)")  # fmt: skip
    return "".join("\n" + ln for ln in lines)
