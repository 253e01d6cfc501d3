"""The COCO dict the converters build (dlbox.data.convert, dlbox.data.labelbox): images, categories and boxes,
with what was skipped counted."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

from dlbox.base.errors import UserError


class Builder:
    """Collects images, categories and boxes into one COCO dict; counts what was skipped."""

    def __init__(self, classes: list[str] | None = None, skip_invalid: bool = False):
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self.cat_ids: dict[str, int] = {}
        self.skip_invalid = skip_invalid
        self.skipped: Counter[str] = Counter()
        self.fixed_class_list = False
        for c in classes or []:
            self.category(c)
        self.fixed_class_list = classes is not None
        self._image_ids: dict[str, int] = {}

    def category(self, name: str, where: str = "") -> int | None:
        if name not in self.cat_ids:
            if self.fixed_class_list:
                return self.invalid(f"{where}: class {name!r} is not in the class list", "unknown class")
            self.cat_ids[name] = len(self.cat_ids) + 1
        return self.cat_ids[name]

    def image(self, file_name: str, width: int, height: int) -> int:
        if file_name in self._image_ids:
            return self._image_ids[file_name]
        iid = len(self.images) + 1
        self.images.append({"id": iid, "file_name": file_name, "width": int(width), "height": int(height)})
        self._image_ids[file_name] = iid
        return iid

    def invalid(self, message: str, kind: str) -> None:
        if not self.skip_invalid:
            raise UserError(message, "fix the source, or add --skip-invalid to drop such boxes (they are counted)")
        self.skipped[kind] += 1
        return None

    def box(self, image_id: int, label: str, x1: float, y1: float, x2: float, y2: float, where: str, **extra) -> None:
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):  # NaN passes every comparison below
            return self.invalid(f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) is not finite", "not finite")
        if x2 < x1 or y2 < y1:
            return self.invalid(f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has x2 < x1 or y2 < y1", "x2 < x1 or y2 < y1")
        if x2 == x1 or y2 == y1:
            return self.invalid(f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has zero area", "zero area")
        cid = self.category(label, where)
        if cid is None:
            return None
        w, h = x2 - x1, y2 - y1
        self.annotations.append({"id": len(self.annotations) + 1, "image_id": image_id, "category_id": cid,
                                 "bbox": [x1, y1, w, h], "area": w * h, "iscrowd": 0, **extra})  # fmt: skip

    def result(self) -> dict[str, Any]:
        cats = [{"id": i, "name": n} for n, i in sorted(self.cat_ids.items(), key=lambda kv: kv[1])]
        return {"info": {"description": "converted by dlbox"}, "licenses": [], "images": self.images,
                "annotations": self.annotations, "categories": cats}  # fmt: skip


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise UserError(f"image file {str(path)!r} is missing", "pass the image folder with --images") from None
    except OSError as e:
        raise UserError(f"cannot read image {str(path)!r}: {e}", "the file may be truncated or not an image; replace it or drop its labels") from None
