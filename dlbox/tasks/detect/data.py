"""Detection data for training and evaluation: COCO json -> letterboxed image tensors and box targets.

Every image is resized to fit ``img_size`` x ``img_size`` keeping its aspect ratio and padded at the right
and bottom (a letterbox), so a box only scales by one factor and goes back to the original image by
dividing by it. Class index i is the i-th class name of the model (category ids are mapped by name, so a
validation json with other ids but the same names works).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from dlbox.base.errors import UserError
from dlbox.data import coco

PAD_VALUE = 114  # grey padding, as YOLO does: neither black nor white objects blend into it
CACHE_LIMIT_BYTES = 1 << 30  # decoded letterboxed images kept in memory for datasets below this size


def letterbox(im: Image.Image, size: int) -> tuple[Image.Image, float]:
    """Fit ``im`` into a size x size canvas (top-left aligned); returns (canvas, scale)."""
    scale = size / max(im.width, im.height)
    w, h = max(1, round(im.width * scale)), max(1, round(im.height * scale))
    canvas = Image.new("RGB", (size, size), (PAD_VALUE,) * 3)
    canvas.paste(im.resize((w, h), Image.BILINEAR), (0, 0))
    return canvas, scale


def to_tensor(im: Image.Image | np.ndarray) -> torch.Tensor:
    """(3, H, W) float in [0, 1]."""
    arr = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)


def read_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        raise UserError(f"image file {str(path)!r} is missing", "run `dlbox data coco check --fix` to drop missing images") from None
    except OSError as e:
        raise UserError(f"cannot read image {str(path)!r}: {e}", "run `dlbox data coco check --fix` to drop unreadable images") from None


def category_index(data: dict[str, Any], classes: list[str], name: str) -> dict[int, int]:
    """category id -> class index, by name; names the model does not know are an error."""
    out = {}
    for c in data["categories"]:
        if c["name"] not in classes:
            raise UserError(
                f"{name}: category {c['name']!r} is not one of the model's classes {classes}",
                "train and evaluate on the same classes (`dlbox data coco subset` selects classes)",
            )
        out[int(c["id"])] = classes.index(c["name"])
    return out


class CocoDetection(Dataset):
    """``ds[i] -> (image (3, S, S) in [0, 1], target)``; target holds ``boxes`` (K, 4) xyxy in letterboxed
    pixels, ``labels`` (K,) class indices, ``image_id`` and ``scale`` (letterbox factor). Crowd boxes are
    left out of training targets (COCO practice) and kept for evaluation (pycocotools ignores matches to them)."""

    def __init__(self, data: dict[str, Any], root: Path, classes: list[str], img_size: int, train: bool = False,
                 name: str = "dataset", cache: bool = True):
        self.data, self.root, self.classes, self.img_size, self.train = data, Path(root), classes, img_size, train
        self.images = sorted(data["images"], key=lambda im: int(im["id"]))
        self.cat_index = category_index(data, classes, name)
        by_image = coco.anns_by_image(data)
        self.anns = [[a for a in by_image.get(int(im["id"]), []) if not a.get("iscrowd", 0)] for im in self.images]
        missing = [im["file_name"] for im in self.images if not coco.image_path(self.root, im["file_name"]).is_file()]
        if missing:
            raise UserError(
                f"{name}: {len(missing)} image file(s) missing under {self.root}, e.g. {missing[0]!r}",
                "run `dlbox data coco check --fix` to drop them, or pass the right image folder",
            )
        self.cache_enabled = cache and len(self.images) * img_size * img_size * 3 < CACHE_LIMIT_BYTES
        self._cache: dict[int, tuple[np.ndarray, float]] = {}

    def __len__(self) -> int:
        return len(self.images)

    def load(self, i: int) -> tuple[np.ndarray, float]:
        """Letterboxed (S, S, 3) uint8 and its scale."""
        if i in self._cache:
            return self._cache[i]
        im = read_image(coco.image_path(self.root, self.images[i]["file_name"]))
        canvas, scale = letterbox(im, self.img_size)
        out = (np.asarray(canvas, dtype=np.uint8), scale)
        if self.cache_enabled:
            self._cache[i] = out
        return out

    def boxes(self, i: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [(a["bbox"], self.cat_index[int(a["category_id"])]) for a in self.anns[i]]
        if not rows:
            return torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)
        b = torch.tensor([r[0] for r in rows], dtype=torch.float32)  # (K, 4) xywh
        b = torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1) * scale
        b = b.clamp(0, self.img_size)
        keep = (b[:, 2] - b[:, 0] > 0.5) & (b[:, 3] - b[:, 1] > 0.5)  # boxes that shrank below a pixel
        return b[keep], torch.tensor([r[1] for r in rows], dtype=torch.long)[keep]

    def __getitem__(self, i: int):
        arr, scale = self.load(i)
        boxes, labels = self.boxes(i, scale)
        if self.train and torch.rand(()) < 0.5:
            # Horizontal flip inside the resized area (the padding stays at the right).
            w = round(self.images[i]["width"] * scale)
            arr = arr.copy()
            arr[:, :w] = arr[:, :w][:, ::-1]
            if len(boxes):
                boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
        target = {"boxes": boxes, "labels": labels, "image_id": torch.tensor(int(self.images[i]["id"])),
                  "scale": torch.tensor(scale, dtype=torch.float32)}  # fmt: skip
        return to_tensor(arr), target


def collate(batch):
    """(images (N, 3, S, S), [target, ...])."""
    return torch.stack([b[0] for b in batch]), [b[1] for b in batch]


def load_split(coco_dir: str | Path, split: str) -> tuple[dict[str, Any], Path, Path]:
    """(data, image root, json path) of one split of a COCO directory (or a json file)."""
    f = coco.resolve_split(coco_dir, split) if Path(coco_dir).is_dir() else Path(coco_dir)
    return coco.load(f), coco.root_of(f), f
