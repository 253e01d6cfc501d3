"""COCO json, the native detection format: load, save, check (and fix), split, subset, stats.

A dataset is a json file plus an image root. The root of ``X/annotations/name.json`` is ``X``, of any other
json its own folder; an image's ``file_name`` is looked up under ``ROOT/images/`` first, then ``ROOT/``
(so both ``DIR/images/a.png`` + ``"file_name": "a.png"`` and paths relative to ``DIR`` work). A COCO
directory (``--data DIR`` everywhere) holds ``annotations/{train,val,test}.json``.

Boxes are COCO's ``[x, y, width, height]`` in pixels, ``x``/``y`` the top-left corner (floats, no rounding).
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dlbox.base.errors import UserError, close_matches, not_found
from dlbox.base.fileio import atomic_write_text

SPLITS = ("train", "val", "test")
# COCO's area ranges (pixels^2): small < 32^2 <= medium < 96^2 <= large.
AREA_SMALL, AREA_LARGE = 32**2, 96**2
SIZE_BINS = (0, 8, 16, 32, 64, 128, 256, math.inf)  # box-size histogram over sqrt(area), in pixels


# --- files ------------------------------------------------------------------------------------------------
def load(path: str | Path) -> dict[str, Any]:
    """Read a COCO json; structural problems (not a mapping, no images/categories lists) are user errors."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"COCO file {str(p)!r} {not_found(p)}", "pass an annotations json or a COCO directory")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{str(p)!r} is not valid JSON ({e})", "check the file was written completely") from None
    if not isinstance(data, dict):
        raise UserError(f"{str(p)!r} is not a COCO json (expected an object with images/annotations/categories)", "pass an annotations json (e.g. annotations/instances_val2017.json)")
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise UserError(f"{str(p)!r} has no {key!r} list", "a COCO json needs images, annotations and categories")
    if not isinstance(data.get("annotations", []), list):
        raise UserError(f"{str(p)!r}: 'annotations' must be a list", "a COCO json holds images, annotations and categories lists")
    data.setdefault("annotations", [])
    _check_structure(p, data)
    return data


def _check_structure(p: Path, data: dict[str, Any]) -> None:
    """Every entry an object with integer ids (a string id, a missing name: one line naming the entry)."""
    need = {"images": ("id", "file_name"), "categories": ("id", "name"), "annotations": ("image_id", "category_id")}
    for key, fields in need.items():
        for n, entry in enumerate(data[key]):
            if not isinstance(entry, dict):
                raise UserError(f"{str(p)!r}: {key}[{n}] is not an object", "fix the json")
            for f in fields:
                v = entry.get(f)
                ok = isinstance(v, str) if f in ("file_name", "name") else isinstance(v, int) and not isinstance(v, bool)
                if not ok:
                    raise UserError(f"{str(p)!r}: {key}[{n}] has {f} {v!r}",
                                    f"each of {key} needs {' and '.join(fields)} ({'text' if f in ('file_name', 'name') else 'an integer'})")  # fmt: skip


def save(data: dict[str, Any], path: str | Path) -> None:
    """Write the json atomically; NaN or infinity (not JSON, and not a box) is refused, never written."""
    try:
        text = json.dumps(data, indent=1, allow_nan=False)
    except ValueError:
        raise UserError(f"refusing to write {str(path)!r}: a value is NaN or infinite",
                        "check the source's coordinates; `dlbox data coco check` finds such boxes") from None  # fmt: skip
    atomic_write_text(path, text + "\n")


def root_of(json_path: str | Path) -> Path:
    p = Path(json_path).resolve()
    return p.parent.parent if p.parent.name == "annotations" else p.parent


def image_path(root: str | Path, file_name: str) -> Path:
    """Where an image's file lives: ROOT/images/<file_name>, else ROOT/<file_name> (absolute names as given)."""
    fn = Path(file_name)
    if fn.is_absolute():
        return fn
    first = Path(root) / "images" / fn
    if first.is_file():
        return first
    second = Path(root) / fn
    return second if second.is_file() else first


def split_files(coco_dir: str | Path) -> dict[str, Path]:
    """The annotation files of a COCO directory by split name (train/val/test, also instances_train2017 style)."""
    d = Path(coco_dir)
    if d.is_file():
        return {d.stem: d}
    if not d.is_dir():
        raise UserError(f"{str(d)!r} does not exist", "pass a COCO directory (annotations/train.json ...) or a json")
    ann = d / "annotations" if (d / "annotations").is_dir() else d
    files = sorted(ann.glob("*.json"))
    out: dict[str, Path] = {}
    for f in files:
        key = next((s for s in SPLITS if f.stem == s or f.stem.startswith(f"instances_{s}")), f.stem)
        out.setdefault(key, f)
    if not out:
        raise UserError(f"{str(d)!r} holds no annotation json", "expected annotations/train.json (and val.json, test.json)")
    return out


def resolve_split(coco_dir: str | Path, split: str) -> Path:
    files = split_files(coco_dir)
    if split not in files:
        hint = close_matches(split, files) or f"this dataset has: {', '.join(files)}"
        raise UserError(f"{str(coco_dir)!r} has no {split!r} split", hint)
    return files[split]


def resolve_json(src: str | Path) -> Path:
    """One annotation file: the path itself, or the only (or the 'all') json of a COCO directory."""
    p = Path(src)
    if p.is_file():
        return p
    files = split_files(p)
    if len(files) == 1:
        return next(iter(files.values()))
    if "all" in files:
        return files["all"]
    raise UserError(f"{str(p)!r} holds several annotation files ({', '.join(files)})", "pass one json file")


# --- small helpers -----------------------------------------------------------------------------------------
def categories_by_id(data: dict[str, Any]) -> dict[int, str]:
    return {int(c["id"]): str(c["name"]) for c in data["categories"]}


def class_names(data: dict[str, Any]) -> list[str]:
    """Category names in id order: class index i of a model is the i-th category."""
    return [str(c["name"]) for c in sorted(data["categories"], key=lambda c: c["id"])]


def anns_by_image(data: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {int(im["id"]): [] for im in data["images"]}
    for a in data["annotations"]:
        out.setdefault(int(a["image_id"]), []).append(a)
    return out


def with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """A copy with ``iscrowd`` and ``area`` present on every annotation (pycocotools' COCOeval needs both)."""
    data = copy.deepcopy(data)
    for a in data["annotations"]:
        a.setdefault("iscrowd", 0)
        if "area" not in a:
            a["area"] = float(a["bbox"][2]) * float(a["bbox"][3])
    data.setdefault("info", {})
    return data


def rebase(data: dict[str, Any], src_root: Path, out_root: Path, copy_images: bool = False) -> dict[str, Any]:
    """Point every ``file_name`` at the same file from ``out_root``: copied into OUT/images/ with
    ``copy_images`` (hard links where possible), else written as a path relative to ``out_root``."""
    data = copy.deepcopy(data)
    src_root, out_root = Path(src_root).resolve(), Path(out_root).resolve()
    if src_root == out_root:
        return data
    for im in data["images"]:
        src = image_path(src_root, im["file_name"])
        if copy_images:
            dst = out_root / "images" / Path(im["file_name"]).name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_file() and not dst.exists():
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copy2(src, dst)
            im["file_name"] = dst.name
        else:
            im["file_name"] = os.path.relpath(src.resolve() if src.exists() else src, out_root)
    return data


# --- check and fix ---------------------------------------------------------------------------------------
ISSUES = {
    "no_annotations": "the annotation list is empty",
    "bad_bbox": "bbox is not 4 finite numbers",
    "negative_size": "x2 < x1 or y2 < y1 (negative width or height)",
    "zero_area": "zero width or height",
    "outside_image": "box extends outside the image",
    "fully_outside": "box lies entirely outside the image",
    "unknown_category": "category id missing from the categories list",
    "unknown_image": "image id missing from the images list",
    "duplicate_annotation_id": "annotation id used twice",
    "duplicate_image_id": "image id used twice",
    "duplicate_category_id": "category id used twice",
    "missing_image_file": "image file missing on disk",
    "unreadable_image_file": "image file cannot be read",
    "size_mismatch": "width/height differ from the image file",
}
# What --fix does about each issue (those not listed cannot be fixed automatically).
FIXES = {
    "bad_bbox": "dropped", "negative_size": "dropped", "zero_area": "dropped", "outside_image": "clipped",
    "fully_outside": "dropped", "unknown_category": "dropped", "unknown_image": "dropped",
    "duplicate_annotation_id": "renumbered", "missing_image_file": "image and its boxes dropped",
    "unreadable_image_file": "image and its boxes dropped", "size_mismatch": "size taken from the file",
}  # fmt: skip


def _bbox(a: dict[str, Any]) -> list[float] | None:
    b = a.get("bbox")
    if not isinstance(b, (list, tuple)) or len(b) != 4:
        return None
    try:
        vals = [float(v) for v in b]
    except (TypeError, ValueError):
        return None
    return vals if all(math.isfinite(v) for v in vals) else None


def _read_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()  # the file structure (PNG chunks and CRCs)
        with Image.open(path) as im:
            im.load()  # decode every pixel: verify() passes a JPEG cut short, training would then fail on it
            return im.size
    except Exception:
        return None


def check(data: dict[str, Any], root: str | Path | None = None, fix: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Find problems; returns (report, data) where data is the fixed copy with ``fix`` (else the input).

    ``root`` enables the file checks (missing, unreadable, size mismatch). The report counts every issue
    kind, gives up to 5 examples of each, and with ``fix`` counts what was done.
    """
    issues: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}

    def note(kind: str, msg: str) -> None:
        issues[kind] += 1
        examples.setdefault(kind, [])
        if len(examples[kind]) < 5:
            examples[kind].append(msg)

    out = copy.deepcopy(data) if fix else data
    cats = Counter(int(c["id"]) for c in out["categories"])
    for cid, n in cats.items():
        if n > 1:
            note("duplicate_category_id", f"category id {cid} appears {n} times")
    img_count = Counter(int(im["id"]) for im in out["images"])
    for iid, n in img_count.items():
        if n > 1:
            note("duplicate_image_id", f"image id {iid} appears {n} times")

    dropped_images: set[int] = set()
    if root is not None:
        for im in out["images"]:
            path = image_path(root, im["file_name"])
            if not path.is_file():
                note("missing_image_file", f"image {im['id']}: {path} not found")
                dropped_images.add(int(im["id"]))
                continue
            size = _read_size(path)
            if size is None:
                note("unreadable_image_file", f"image {im['id']}: {path} cannot be decoded")
                dropped_images.add(int(im["id"]))
            elif (im.get("width"), im.get("height")) != size:
                note("size_mismatch", f"image {im['id']}: json says {im.get('width')}x{im.get('height')}, file is {size[0]}x{size[1]}")
                if fix:
                    im["width"], im["height"] = size
    images = {int(im["id"]): im for im in out["images"]}

    if not out["annotations"]:
        note("no_annotations", "the annotation list is empty: nothing to train or evaluate on")
    kept: list[dict[str, Any]] = []
    seen_ann: set[int] = set()
    next_id = max([int(a.get("id", 0)) for a in out["annotations"] if isinstance(a.get("id"), int)] + [0]) + 1
    for a in out["annotations"]:
        aid = a.get("id")
        where = f"annotation {aid} (image {a.get('image_id')})"
        if int(a.get("image_id", -1)) in dropped_images:
            continue
        b = _bbox(a)
        if b is None:
            note("bad_bbox", f"{where}: bbox {a.get('bbox')!r}")
            continue
        im = images.get(int(a.get("image_id", -1)))
        if im is None:
            note("unknown_image", f"{where}: image id {a.get('image_id')} is not in the images list")
            continue
        if int(a.get("category_id", -1)) not in cats:
            note("unknown_category", f"{where}: category id {a.get('category_id')} is not in the categories list")
            continue
        x, y, w, h = b
        if w < 0 or h < 0:
            note("negative_size", f"{where}: bbox {b} has x2 < x1 or y2 < y1")
            continue
        if w == 0 or h == 0:
            note("zero_area", f"{where}: bbox {b} has zero area")
            continue
        W, H = float(im.get("width", 0) or 0), float(im.get("height", 0) or 0)
        if W > 0 and H > 0:
            x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, W), min(y + h, H)
            if x2 <= x1 or y2 <= y1:
                note("fully_outside", f"{where}: bbox {b} lies outside the {W:g}x{H:g} image")
                continue
            if (x1, y1, x2, y2) != (x, y, x + w, y + h):
                note("outside_image", f"{where}: bbox {b} extends outside the {W:g}x{H:g} image")
                if fix:
                    a["bbox"] = [x1, y1, x2 - x1, y2 - y1]
                    a["area"] = (x2 - x1) * (y2 - y1)
        if not isinstance(aid, int) or aid in seen_ann:
            note("duplicate_annotation_id", f"{where}: id {aid!r} is missing or used twice")
            if fix:
                a["id"] = next_id
                next_id += 1
        seen_ann.add(a.get("id"))
        kept.append(a)
    if fix:
        out["annotations"] = kept
        out["images"] = [im for im in out["images"] if int(im["id"]) not in dropped_images]
    fixed = {kind: n for kind, n in issues.items() if kind in FIXES} if fix else {}
    unfixable = [k for k in issues if k not in FIXES] if fix else list(issues)
    report = {
        "images": len(data["images"]),
        "annotations": len(data["annotations"]),
        "categories": len(data["categories"]),
        "issues": dict(sorted(issues.items())),
        "examples": examples,
        "fixed": {k: {"count": n, "action": FIXES[k]} for k, n in sorted(fixed.items())},
        "remaining": sorted(unfixable),
        "ok": not unfixable,
    }
    if fix:
        report["after"] = {"images": len(out["images"]), "annotations": len(out["annotations"])}
    return report, out


def check_file(src: str | Path, fix: bool = False, out: str | Path | None = None, images: str | Path | None = None,
               check_files: bool = True) -> dict[str, Any]:
    """`dlbox data coco check`: every json of a COCO directory (or one file); with ``fix`` the fixed json is
    written to ``out`` (a file, for one json) or in place with the original kept as ``NAME.json.bak``."""
    p = Path(src)
    files = [p] if p.is_file() else list(split_files(p).values())
    reports = []
    for f in files:
        data = load(f)
        root = Path(images) if images else root_of(f)
        report, fixed = check(data, root if check_files else None, fix=fix)
        report["file"] = str(f)
        if fix and (report["fixed"] or report["remaining"]):
            target = Path(out) if out and len(files) == 1 else f
            if target == f:
                backup = f.with_name(f.name + ".bak")
                if not backup.exists():
                    atomic_write_text(backup, f.read_text())
                report["backup"] = str(backup)
            save(fixed, target)
            report["written"] = str(target)
        reports.append(report)
    return {"files": reports, "ok": all(r["ok"] for r in reports) and (fix or all(not r["issues"] for r in reports))}


def render_check(result: dict[str, Any]) -> str:
    lines = []
    for r in result["files"]:
        lines.append(f"{r['file']}: {r['images']} images, {r['annotations']} boxes, {r['categories']} categories")
        if not r["issues"]:
            lines.append("  no problems found")
        for kind, n in r["issues"].items():
            fixed = r["fixed"].get(kind)
            what = f" -> {fixed['action']}" if fixed else (" (cannot be fixed automatically)" if r.get("after") else "")
            lines.append(f"  {n:>6}  {ISSUES.get(kind, kind)}{what}")
            for ex in r["examples"].get(kind, [])[:2]:
                lines.append(f"          e.g. {ex}")
        if r.get("written"):
            lines.append(f"  wrote {r['written']}: {r['after']['images']} images, {r['after']['annotations']} boxes"
                         + (f" (original kept as {r['backup']})" if r.get("backup") else ""))  # fmt: skip
        elif r["issues"] and not r.get("after"):
            lines.append("  run again with --fix to clip or drop what can be fixed")
    return "\n".join(lines)


def validate_for_training(data: dict[str, Any], name: str, need_boxes: bool = True) -> None:
    """Refuse data a detector cannot use, with the first problem named (training, evaluation and exports do
    not fix silently): the same checks as ``dlbox data coco check``."""
    report, _ = check(data, None, fix=False)
    if need_boxes and "no_annotations" in report["issues"]:
        raise UserError(f"{name} has an empty annotation list", "label some boxes first; `dlbox data coco stats` shows counts")
    if not data["categories"]:
        raise UserError(f"{name} has no categories")
    serious = [k for k in ("duplicate_category_id", "duplicate_image_id", "unknown_category", "unknown_image",
                           "negative_size", "bad_bbox", "zero_area") if k in report["issues"]]  # fmt: skip
    if serious:
        k = serious[0]
        raise UserError(
            f"{name}: {report['issues'][k]} x {ISSUES[k]} (e.g. {report['examples'][k][0]})",
            f"run `dlbox data coco check --fix {name}` to drop or repair them",
        )


# --- split, subset, stats ----------------------------------------------------------------------------------
def restrict(data: dict[str, Any], image_ids: set[int]) -> dict[str, Any]:
    """A copy with only the images ``image_ids`` and their boxes."""
    out = {k: v for k, v in data.items() if k not in ("images", "annotations")}
    out["images"] = [im for im in data["images"] if int(im["id"]) in image_ids]
    out["annotations"] = [a for a in data["annotations"] if int(a["image_id"]) in image_ids]
    if isinstance(data.get("points"), list):  # Labelbox points (dlbox.data.labelbox) follow their images
        out["points"] = [p for p in data["points"] if int(p.get("image_id", -1)) in image_ids]
    return copy.deepcopy(out)


def check_fractions(train: float, val: float, test: float) -> None:
    """Split fractions: each >= 0, summing to more than 0 and at most 1 (a sum past 1 is a typo, not rescaled)."""
    fracs = {"train": train, "val": val, "test": test}
    if any(not math.isfinite(f) or f < 0 for f in fracs.values()) or sum(fracs.values()) <= 0:
        raise UserError(f"split fractions must be >= 0 and sum to more than 0, got {fracs}", "e.g. --train 0.8 --val 0.1 --test 0.1")
    if sum(fracs.values()) > 1 + 1e-9:
        raise UserError(f"--train {train:g} + --val {val:g} + --test {test:g} = {sum(fracs.values()):g}, more than 1",
                        "give fractions that sum to 1 (or less: they are then scaled up), e.g. --train 0.8 --val 0.1 --test 0.1")  # fmt: skip


def class_list(text: str | list[str]) -> list[str]:
    """``--classes person,cat,dog`` -> names in order, each once; an empty list is refused."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    names = list(dict.fromkeys(n for n in names if n))  # duplicates would make two categories with one name
    if not names:
        raise UserError(f"--classes {text!r} names no class", "give comma-separated category names, e.g. --classes person,cat")
    return names


def split(data: dict[str, Any], train: float = 0.8, val: float = 0.1, test: float = 0.1, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Seeded split by image (all boxes of an image stay together); fractions that sum to less than 1 are
    scaled up to sum 1, a sum past 1 is refused."""
    fracs = {"train": train, "val": val, "test": test}
    check_fractions(train, val, test)
    total = sum(fracs.values())
    ids = np.array(sorted(int(im["id"]) for im in data["images"]))
    rng = np.random.default_rng(seed)
    ids = ids[rng.permutation(len(ids))]
    n = len(ids)
    n_val = round(n * val / total)
    n_test = round(n * test / total)
    parts = {"val": ids[:n_val], "test": ids[n_val : n_val + n_test], "train": ids[n_val + n_test :]}
    return {name: restrict(data, set(map(int, parts[name]))) for name in SPLITS if fracs[name] > 0}


def split_to_dir(src: str | Path, out: str | Path, train: float, val: float, test: float, seed: int = 0,
                 copy_images: bool = False, images: str | Path | None = None) -> dict[str, Any]:
    f = resolve_json(src)
    data = load(f)
    out = Path(out)
    parts = split(data, train, val, test, seed)
    counts = {}
    for name, part in parts.items():
        part = rebase(part, Path(images) if images else root_of(f), out, copy_images)
        save(part, out / "annotations" / f"{name}.json")
        counts[name] = {"images": len(part["images"]), "annotations": len(part["annotations"])}
    return {"source": str(f), "out": str(out), "seed": seed, "splits": counts}


def subset(data: dict[str, Any], classes: list[str], keep_empty: bool = False) -> dict[str, Any]:
    """Images holding any of ``classes`` (with only those boxes), category ids remapped to 1..K in the given
    order. ``keep_empty`` also keeps the other images as negatives (no boxes)."""
    classes = class_list(classes)
    by_name = {str(c["name"]): int(c["id"]) for c in data["categories"]}
    missing = [c for c in classes if c not in by_name]
    if missing:
        hint = close_matches(missing[0], by_name) or f"categories here: {', '.join(sorted(by_name)[:20])}"
        raise UserError(f"class {missing[0]!r} is not a category of this dataset", hint)
    remap = {by_name[c]: i + 1 for i, c in enumerate(classes)}
    anns = [dict(a, category_id=remap[int(a["category_id"])]) for a in data["annotations"] if int(a["category_id"]) in remap]
    keep = {int(im["id"]) for im in data["images"]} if keep_empty else {int(a["image_id"]) for a in anns}
    out = {k: copy.deepcopy(v) for k, v in data.items() if k not in ("images", "annotations", "categories")}
    old = {int(c["id"]): c for c in data["categories"]}
    out["categories"] = [dict(copy.deepcopy(old[by_name[c]]), id=remap[by_name[c]]) for c in classes]
    out["images"] = [copy.deepcopy(im) for im in data["images"] if int(im["id"]) in keep]
    out["annotations"] = [a for a in anns if int(a["image_id"]) in keep]
    if isinstance(data.get("points"), list):
        out["points"] = [copy.deepcopy(p) for p in data["points"] if int(p.get("image_id", -1)) in keep]
    return out


def subset_to_dir(src: str | Path, classes: list[str], out: str | Path, keep_empty: bool = False,
                  copy_images: bool = False) -> dict[str, Any]:
    """Every split of a COCO directory (or one json) restricted to ``classes``, written under ``out``."""
    p = Path(src)
    files = {p.stem: p} if p.is_file() else split_files(p)
    counts = {}
    for name, f in files.items():
        part = subset(load(f), classes, keep_empty)
        part = rebase(part, root_of(f), Path(out), copy_images)
        save(part, Path(out) / "annotations" / f"{name}.json")
        counts[name] = {"images": len(part["images"]), "annotations": len(part["annotations"])}
    return {"out": str(out), "classes": classes, "splits": counts}


def stats(data: dict[str, Any]) -> dict[str, Any]:
    """Images, boxes per class, images per class, boxes per image, box-size histogram, COCO size ranges."""
    names = categories_by_id(data)
    boxes = Counter()
    images_with = {cid: set() for cid in names}
    sizes, small, medium, large = [], 0, 0, 0
    for a in data["annotations"]:
        cid = int(a["category_id"])
        boxes[names.get(cid, f"<unknown id {cid}>")] += 1
        images_with.setdefault(cid, set()).add(int(a["image_id"]))
        b = _bbox(a) or [0, 0, 0, 0]
        area = float(a.get("area", max(b[2], 0) * max(b[3], 0)))
        sizes.append(math.sqrt(max(b[2], 0) * max(b[3], 0)))
        small += area < AREA_SMALL
        medium += AREA_SMALL <= area < AREA_LARGE
        large += area >= AREA_LARGE
    hist = {}
    arr = np.array(sizes)
    for lo, hi in zip(SIZE_BINS[:-1], SIZE_BINS[1:], strict=True):
        label = f"{lo}-{hi}" if math.isfinite(hi) else f">={lo}"
        hist[label] = int(((arr >= lo) & (arr < hi)).sum()) if len(arr) else 0
    per_image = Counter(int(a["image_id"]) for a in data["annotations"])
    counts = [per_image.get(int(im["id"]), 0) for im in data["images"]]
    return {
        "images": len(data["images"]),
        "annotations": len(data["annotations"]),
        "categories": len(names),
        "boxes_per_class": {names[c]: boxes.get(names[c], 0) for c in sorted(names)},
        "images_per_class": {names[c]: len(images_with.get(c, ())) for c in sorted(names)},
        "images_without_boxes": sum(1 for n in counts if n == 0),
        "boxes_per_image": {"min": min(counts, default=0), "mean": float(np.mean(counts)) if counts else 0.0,
                            "max": max(counts, default=0)},  # fmt: skip
        "box_size_histogram": hist,  # sqrt(w*h) in pixels
        "coco_size_ranges": {"small": small, "medium": medium, "large": large},
    }


def stats_of(src: str | Path) -> dict[str, Any]:
    p = Path(src)
    files = {p.stem: p} if p.is_file() else split_files(p)
    return {"splits": {name: {"file": str(f), **stats(load(f))} for name, f in files.items()}}


def render_stats(result: dict[str, Any]) -> str:
    lines = []
    for name, s in result["splits"].items():
        bpi = s["boxes_per_image"]
        lines.append(f"{name}: {s['images']} images, {s['annotations']} boxes, {s['categories']} categories "
                     f"({bpi['min']}-{bpi['max']} boxes per image, mean {bpi['mean']:.2f}; "
                     f"{s['images_without_boxes']} without boxes)")  # fmt: skip
        width = max([len(c) for c in s["boxes_per_class"]] + [5])
        lines.append(f"  {'class':<{width}}  {'boxes':>7}  {'images':>7}")
        for c, n in s["boxes_per_class"].items():
            lines.append(f"  {c:<{width}}  {n:>7}  {s['images_per_class'][c]:>7}")
        lines.append("  box size sqrt(w*h) px: " + "  ".join(f"{k}: {v}" for k, v in s["box_size_histogram"].items()))
        r = s["coco_size_ranges"]
        lines.append(f"  COCO ranges: small {r['small']}  medium {r['medium']}  large {r['large']}")
    return "\n".join(lines)
