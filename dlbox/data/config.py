"""The arguments of the data commands (`dlbox data build|sample`, `dlbox data coco ...`), declared for dlbox.cliutil.Command; torch-free,
so the CLI builds its parser without importing the data layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlbox.config import REQUIRED, opt, positional
from dlbox.errors import UserError

SAMPLE_NAMES = ("digits", "shapes", "shapes-det")  # dlbox.data.samples.SAMPLES, without importing it at startup



@dataclass(kw_only=True)
class BuildArgs:
    train_dir: str = positional("one folder per class (jpg, jpeg, png, bmp, webp), or s3://BUCKET/PREFIX", metavar="TRAIN_DIR")
    out: str = opt(REQUIRED, "the dataset directory to write", metavar="DIR")
    val_dir: str | None = opt(None, "class folders of a separate validation set", metavar="DIR")
    val_split: float | None = opt(None, "validation fraction of each class, stratified (default: 0.1)", ge=0, lt=1,
                                  metavar="X")  # fmt: skip
    shards: bool = opt(False, "also write WebDataset tar shards (self-contained copies)")
    shard_size: int = opt(1024, "images per shard (default: 1024)", ge=1, metavar="N")
    seed: int = opt(0, "split seed (default: 0)", ge=0, metavar="N")

    def validate(self) -> None:
        if self.val_dir and self.val_split is not None:
            raise UserError("give --val-dir or --val-split, not both", "--val-dir uses that folder as the validation set")


@dataclass(kw_only=True)
class SampleArgs:
    name: str = positional("which sample: " + ", ".join(SAMPLE_NAMES), choices=SAMPLE_NAMES, metavar="NAME")
    out: str = opt(REQUIRED, "output folder (replaced when it holds an earlier sample)", metavar="DIR")
    seed: int = opt(0, "generator seed (default: 0)", ge=0, metavar="N")
    n_per_class: int | None = opt(None, "shapes, shapes-det: images (boxes) per class (shapes: 200)", ge=1, metavar="N")
    classes: int | None = opt(None, "shapes, shapes-det: how many shape classes, 3 to 5 (shapes: 4)", ge=3, le=5,
                              metavar="N")  # fmt: skip
    size: int | None = opt(None, "digits: image size in px (default: 32)", ge=8, metavar="PX")


SOURCE = "a COCO json, or a COCO directory (annotations/*.json, images/)"
IMAGES = "the image folder, when not next to the json (ROOT/images)"
COPY_IMAGES = "copy images into OUT/images (default: reference them)"


@dataclass(kw_only=True)
class CocoSplitArgs:
    source: str = positional("one COCO json (or a directory holding one)")
    out: str = opt(REQUIRED, "the COCO directory to write")
    train: float = opt(0.8, "train fraction (default: 0.8)", ge=0, le=1)
    val: float = opt(0.1, "validation fraction (default: 0.1)", ge=0, le=1)
    test: float = opt(0.1, "test fraction (default: 0.1)", ge=0, le=1)
    seed: int = opt(0, "shuffle seed (default: 0)", ge=0)
    images: str | None = opt(None, IMAGES)
    copy_images: bool = opt(False, COPY_IMAGES)


@dataclass(kw_only=True)
class CocoSubsetArgs:
    source: str = positional(SOURCE)
    classes: str = opt(REQUIRED, "comma-separated category names, in the new id order")
    out: str = opt(REQUIRED, "the COCO directory to write (every split of the source)")
    keep_empty: bool = opt(False, "also keep the other images, without boxes (negatives)")
    copy_images: bool = opt(False, COPY_IMAGES)


@dataclass(kw_only=True)
class CocoStatsArgs:
    source: str = positional(SOURCE)


@dataclass(kw_only=True)
class CocoCheckArgs:
    source: str = positional(SOURCE)
    fix: bool = opt(False, "clip or drop what can be fixed and write the json back (the original is kept as NAME.json.bak)")
    out: str | None = opt(None, "with --fix and one json: write the fixed json here instead")
    images: str | None = opt(None, IMAGES)
    no_files: bool = opt(False, "skip the image file checks (json only)")


@dataclass(kw_only=True)
class CocoConvertArgs:
    source: str = positional("voc: a folder (Annotations/ + JPEGImages/); yolo: a folder (images/ + labels/); "
                             "labelbox: the export .json/.ndjson; csv: the .csv (file,x1,y1,x2,y2,label)")  # fmt: skip
    from_format: Literal["voc", "yolo", "labelbox", "csv"] = opt(REQUIRED, "source format", flag="--from")
    to: Literal["coco"] = opt("coco", "target format (coco)")
    out: str = opt(REQUIRED, "the COCO directory to write (OUT/annotations/NAME.json)")
    name: str = opt("all", "annotation file name (default: all; then `dlbox data coco split`)")
    images: str | None = opt(None, "the image folder (default: found from the source layout)")
    names: str | None = opt(None, "yolo: class names file (default: classes.txt / obj.names / data.yaml)")
    copy_images: bool = opt(False, COPY_IMAGES)
    skip_invalid: bool = opt(False, "drop boxes with x2 < x1, unknown classes, ... and count them")


@dataclass(kw_only=True)
class CocoExportYoloArgs:
    source: str = positional(SOURCE + "; each split goes to OUT/<split>/")
    out: str = opt(REQUIRED, "output folder: labels/, images/, classes.txt")
    no_images: bool = opt(False, "write labels only (default: copy the images too)")
