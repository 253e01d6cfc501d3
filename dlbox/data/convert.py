"""Converters into COCO json (Pascal VOC XML, YOLO txt + class names, Labelbox-style JSON, CSV) and out of
it (YOLO txt).

Coordinate conventions, so that VOC -> COCO -> YOLO -> COCO keeps every box:
- VOC: 1-based pixel indices, both ends inclusive: COCO x = xmin - 1, w = xmax - xmin + 1 (as Detectron does).
- YOLO: ``class cx cy w h`` normalised by the image size; written with 8 decimals (~1e-5 px on 1000 px).
- CSV ``file,x1,y1,x2,y2,label``: pixel edges, x2 exclusive (w = x2 - x1); a row with empty box fields
  marks an image without boxes.
- Labelbox: ``bbox``/``bounding_box`` ``{top, left, height, width}`` in pixels.

Bad boxes (x2 < x1, y2 < y1) are an error naming the file and row; with ``skip_invalid`` they are dropped
and counted in the result's ``skipped``.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from dlbox.base.errors import UserError, not_found
from dlbox.base.fileio import atomic_write_text
from dlbox.data import coco
from dlbox.data.builder import Builder, _image_size  # noqa: F401  (Builder: part of this module's API)
from dlbox.data.folders import IMAGE_EXTENSIONS
from dlbox.data.urlfetch import STATE, fetch_urls

FORMATS = ("voc", "yolo", "labelbox", "csv")


def _images_in(folder: Path) -> dict[str, Path]:
    """stem -> image file, for the images directly in ``folder``."""
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS} if folder.is_dir() else {}


def _read_names(path: Path) -> list[str]:
    """One class name per line (classes.txt, obj.names), or a YOLO data.yaml with ``names``."""
    if not path.is_file():
        raise UserError(f"class names file {str(path)!r} {not_found(path)}", "pass it with --names (one class per line)")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        names = (yaml.safe_load(path.read_text()) or {}).get("names")
        if isinstance(names, dict):
            names = [names[k] for k in sorted(names)]
        if not isinstance(names, list):
            raise UserError(f"{str(path)!r} has no 'names' list", "data.yaml needs 'names: [class1, class2, ...]'")
        return [str(n) for n in names]
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


# --- VOC ---------------------------------------------------------------------------------------------------
def from_voc(src: str | Path, images: str | Path | None = None, classes: list[str] | None = None,
             skip_invalid: bool = False) -> tuple[dict[str, Any], Path]:
    """A VOC folder (``Annotations/*.xml`` + ``JPEGImages/``) or a folder of XML files next to their images.
    Returns (COCO dict, image folder); file names are relative to the image folder."""
    src = Path(src)
    xml_dir = src / "Annotations" if (src / "Annotations").is_dir() else src
    files = sorted(xml_dir.glob("*.xml"))
    if not files:
        raise UserError(f"no VOC .xml files in {str(xml_dir)!r}", "expected Annotations/*.xml (Pascal VOC layout)")
    img_dir = Path(images) if images else (src / "JPEGImages" if (src / "JPEGImages").is_dir() else xml_dir)
    b = Builder(classes, skip_invalid)
    for f in files:
        try:
            root = ElementTree.parse(f).getroot()
        except ElementTree.ParseError as e:
            raise UserError(f"{str(f)!r} is not valid XML ({e})", "check that the annotation was written completely") from None
        name = (root.findtext("filename") or f.stem).strip()
        if not (img_dir / name).is_file():
            found = _images_in(img_dir).get(Path(name).stem)
            name = found.name if found else name
        size = root.find("size")
        try:
            w, h = int(float(size.findtext("width"))), int(float(size.findtext("height")))  # type: ignore[union-attr]
        except (AttributeError, TypeError, ValueError):
            w, h = _image_size(img_dir / name)
        if w <= 0 or h <= 0:
            w, h = _image_size(img_dir / name)
        iid = b.image(name, w, h)
        for k, obj in enumerate(root.findall("object")):
            label = (obj.findtext("name") or "").strip()
            bb = obj.find("bndbox")
            where = f"{f.name} object {k + 1} ({label})"
            try:
                xmin, ymin, xmax, ymax = (float(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[union-attr, arg-type]
            except (AttributeError, TypeError, ValueError):
                b.invalid(f"{where}: bndbox is missing or not numeric", "bad bndbox")
                continue
            difficult = int(float(obj.findtext("difficult") or 0))
            b.box(iid, label, xmin - 1, ymin - 1, xmax, ymax, where, **({"difficult": 1} if difficult else {}))
    return b.result() | {"skipped": dict(b.skipped)}, img_dir


# --- YOLO --------------------------------------------------------------------------------------------------
def _yolo_dirs(src: Path) -> tuple[Path, Path]:
    """(images, labels): src/images + src/labels, or both in src."""
    if (src / "labels").is_dir():
        return (src / "images" if (src / "images").is_dir() else src), src / "labels"
    return src, src


def from_yolo(src: str | Path, names: str | Path | None = None, images: str | Path | None = None,
              skip_invalid: bool = False) -> tuple[dict[str, Any], Path]:
    """YOLO txt labels (``images/`` + ``labels/``, or side by side) and a class names file (``--names``, else
    classes.txt / obj.names / data.yaml in the folder)."""
    src = Path(src)
    img_dir, lbl_dir = _yolo_dirs(src)
    if images:
        img_dir = Path(images)
    if names is None:
        cands = [src / n for n in ("classes.txt", "obj.names", "names.txt", "data.yaml")] + [lbl_dir / "classes.txt"]
        names = next((c for c in cands if c.is_file()), None)
        if names is None:
            raise UserError(f"no class names file in {str(src)!r}", "pass --names FILE (one class per line)")
    classes = _read_names(Path(names))
    b = Builder(classes, skip_invalid)
    imgs = _images_in(img_dir)
    if not imgs:
        raise UserError(f"no images in {str(img_dir)!r}", "YOLO data needs the images to know their sizes; pass --images")
    for stem, path in imgs.items():
        w, h = _image_size(path)
        iid = b.image(path.name, w, h)
        lbl = lbl_dir / f"{stem}.txt"
        if not lbl.is_file():
            continue  # an image without a label file has no boxes
        for n, line in enumerate(lbl.read_text().splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            where = f"{lbl.name} line {n}"
            try:
                k, cx, cy, bw, bh = int(parts[0]), *(float(v) for v in parts[1:5])
            except (ValueError, TypeError):
                b.invalid(f"{where}: expected 'class cx cy w h', got {line.strip()!r}", "bad line")
                continue
            if not 0 <= k < len(classes):
                b.invalid(f"{where}: class index {k} is outside the {len(classes)} names", "unknown class")
                continue
            x1, y1 = (cx - bw / 2) * w, (cy - bh / 2) * h
            b.box(iid, classes[k], x1, y1, x1 + bw * w, y1 + bh * h, where)
    return b.result() | {"skipped": dict(b.skipped)}, img_dir


def to_yolo(src: str | Path, out: str | Path, copy_images: bool = True) -> dict[str, Any]:
    """COCO json (or a COCO directory: every split) -> OUT/labels/*.txt, OUT/classes.txt and OUT/images/.
    Class index = rank of the category id; one label file per image, empty for images without boxes."""
    p = Path(src)
    files = {p.stem: p} if p.is_file() else coco.split_files(p)
    out = Path(out)
    written, boxes, names = 0, 0, None
    for split_name, f in files.items():
        data = coco.load(f)
        coco.validate_for_training(data, str(f), need_boxes=False)  # unknown category, string coordinate, w < 0: refused
        root = coco.root_of(f)
        classes = coco.class_names(data)
        if names is not None and classes != names:
            raise UserError(f"{f} has other categories than the other splits", "export the splits one by one")
        names = classes
        index = {int(c["id"]): i for i, c in enumerate(sorted(data["categories"], key=lambda c: c["id"]))}
        by_image = coco.anns_by_image(data)
        sub = out / split_name if len(files) > 1 else out
        for im in data["images"]:
            W, H = float(im["width"]), float(im["height"])
            lines = []
            for a in by_image.get(int(im["id"]), []):
                if a.get("iscrowd", 0):
                    continue
                x, y, w, h = (float(v) for v in a["bbox"])
                x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, W), min(y + h, H)  # YOLO's 0..1
                if x2 <= x1 or y2 <= y1:
                    continue  # outside the image: no size to write
                x, y, w, h = x1, y1, x2 - x1, y2 - y1
                lines.append(f"{index[int(a['category_id'])]} {(x + w / 2) / W:.8f} {(y + h / 2) / H:.8f} {w / W:.8f} {h / H:.8f}")
            stem = Path(im["file_name"]).stem
            atomic_write_text(sub / "labels" / f"{stem}.txt", "".join(ln + "\n" for ln in lines))
            if copy_images:
                src_img = coco.image_path(root, im["file_name"])
                dst = sub / "images" / Path(im["file_name"]).name
                dst.parent.mkdir(parents=True, exist_ok=True)
                if src_img.is_file() and not dst.exists():
                    shutil.copy2(src_img, dst)
            written += 1
            boxes += len(lines)
        atomic_write_text(sub / "classes.txt", "".join(n + "\n" for n in names))
    return {"out": str(out), "images": written, "boxes": boxes, "classes": names, "splits": list(files)}


# --- Labelbox ----------------------------------------------------------------------------------------------
def from_labelbox(src: str | Path, images: str | Path | None = None, skip_invalid: bool = False,
                  drop_unlabeled: bool = False, files: dict[str, str] | None = None,
                  masks_dir: str | Path | None = None, workers: int = 8) -> tuple[dict[str, Any], Path]:  # fmt: skip
    """A Labelbox export (JSON list, v1, or NDJSON, v2) with boxes, polygons, masks and points; images in
    ``images`` (default: the export's folder), matched by external id (the file name), or by URL through
    ``files`` / an earlier fetch's index. See :mod:`dlbox.data.labelbox`."""
    from dlbox.data import labelbox

    return labelbox.to_coco(src, images, skip_invalid, drop_unlabeled, files, masks_dir, workers)


# --- CSV ---------------------------------------------------------------------------------------------------
def from_csv(src: str | Path, images: str | Path | None = None, skip_invalid: bool = False) -> tuple[dict[str, Any], Path]:
    """Rows ``file,x1,y1,x2,y2,label`` (an optional header row is recognised); ``file,,,,,`` is an image
    without boxes. Images in ``images`` (default: the CSV's folder)."""
    path = Path(src)
    if not path.is_file():
        raise UserError(f"CSV file {str(path)!r} {not_found(path)}", "pass the CSV file (file,x1,y1,x2,y2,label rows)")
    img_dir = Path(images) if images else path.parent
    b = Builder(None, skip_invalid)
    with open(path, newline="") as fh:
        for n, row in enumerate(csv.reader(fh), start=1):
            if not row or not any(c.strip() for c in row):
                continue
            if n == 1 and row[0].strip().lower() in ("file", "filename", "image", "path", "file_name"):
                continue
            where = f"{path.name} line {n}"
            if len(row) != 6:
                raise UserError(f"{where}: expected 6 fields file,x1,y1,x2,y2,label, got {len(row)}", "each row is file,x1,y1,x2,y2,label (file,,,,, for an image without boxes)")
            name = row[0].strip()
            iid = b.image(name, *_image_size(img_dir / name))
            if not any(c.strip() for c in row[1:]):
                continue
            try:
                x1, y1, x2, y2 = (float(v) for v in row[1:5])
            except ValueError:
                b.invalid(f"{where}: coordinates must be numbers, got {row[1:5]}", "bad coordinates")
                continue
            b.box(iid, row[5].strip(), x1, y1, x2, y2, where)
    return b.result() | {"skipped": dict(b.skipped)}, img_dir


# --- into a COCO directory ---------------------------------------------------------------------------------
def convert(fmt: str, src: str | Path, out: str | Path, images: str | Path | None = None, names: str | Path | None = None,
            name: str = "all", copy_images: bool = False, skip_invalid: bool = False, fetch: bool = False,
            drop_unlabeled: bool = False, workers: int = 8) -> dict[str, Any]:  # fmt: skip
    """Convert ``src`` (format ``fmt``) into OUT/annotations/NAME.json; images copied into OUT/images/ with
    ``copy_images``, else referenced by paths relative to OUT.

    ``fetch`` (Labelbox): download each row's image (its URL) into OUT/images/ first, through the hub's
    downloader (see :mod:`dlbox.data.urlfetch`); rows whose image cannot be fetched are left out and listed,
    and the result is checked (``coco.check`` with the files) before it is reported."""
    if fmt not in FORMATS:
        raise UserError(f"unknown source format {fmt!r}", f"one of {', '.join(FORMATS)}")
    if fetch and fmt != "labelbox":
        raise UserError(f"--fetch downloads the images a Labelbox export names by URL, not {fmt} images",
                        "use --from labelbox, or `dlbox data fetch-images` for a CSV of URLs or a COCO json")  # fmt: skip
    if drop_unlabeled and fmt != "labelbox":
        raise UserError("--drop-unlabeled is for --from labelbox (Labelbox's Skip and unlabelled rows)", "leave it out, or use --from labelbox")
    out = Path(out)
    fetched, n_urls = None, 0
    extra: dict[str, Any] = {}
    if fmt == "voc":
        data, img_dir = from_voc(src, images, skip_invalid=skip_invalid)
    elif fmt == "yolo":
        data, img_dir = from_yolo(src, names, images, skip_invalid)
    elif fmt == "labelbox":
        files = None
        if fetch:
            from dlbox.data import labelbox

            if images:
                raise UserError("--fetch downloads into OUT/images: leave out --images", "leave out --images, or leave out --fetch to use local images")
            wants, _ = labelbox.image_wants(labelbox.read_rows(src), drop_unlabeled)
            if not wants:
                raise UserError(f"{str(src)!r} names no image URLs ('Labeled Data' or data_row.row_data)",
                                "without URLs, pass the local image folder with --images instead of --fetch")  # fmt: skip
            n_urls = len({w.url for w in wants})
            fetched = fetch_urls(wants, out / "images", workers=workers, desc=f"fetch {Path(src).name}")
            files, images = fetched.files, out / "images"
        data, img_dir = from_labelbox(src, images, skip_invalid, drop_unlabeled=drop_unlabeled, files=files,
                                      masks_dir=out / STATE / "masks", workers=workers)  # fmt: skip
        extra = {k: data.pop(k) for k in ("left_out", "unlabeled", "counts", "mask_failures")}
    else:
        data, img_dir = from_csv(src, images, skip_invalid)
    skipped = data.pop("skipped")
    if not data["annotations"]:
        if fetched is not None and fetched.files == {}:
            raise UserError(f"no image of {str(src)!r} could be fetched ({len(fetched.failed)} failed, "
                            f"{len(fetched.missing)} missing offline)", _first_failure(fetched))  # fmt: skip
        raise UserError(f"{str(src)!r} holds no boxes", "check the format given to --from and the folder layout")
    if fetched is None:
        data = coco.rebase(data, img_dir, out, copy_images)  # file names were relative to the image folder
    target = out / "annotations" / f"{name}.json"
    coco.save(data, target)
    result = {"format": fmt, "file": str(target), "images": len(data["images"]), "annotations": len(data["annotations"]),
              "classes": [c["name"] for c in data["categories"]], "skipped": skipped, **extra}  # fmt: skip
    if data.get("points"):
        result["points"] = len(data["points"])
    if fetched is not None:
        from dlbox.data.urlfetch import summary

        result["fetch"] = summary(fetched, n_urls)
        report, _ = coco.check(data, out)
        result["check"] = {"ok": report["ok"], "issues": report["issues"], "examples": report["examples"]}
    return result


def _first_failure(fetched) -> str:
    first = (fetched.failed or fetched.missing or [{}])[0]
    return f"e.g. {first.get('url')}: {first.get('reason', 'offline')}" if first else "check the URLs"
