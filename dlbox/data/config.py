"""The arguments of the data commands (`dlbox data build|sample`, `dlbox data coco ...`), declared for dlbox.cliutil.Command; torch-free,
so the CLI builds its parser without importing the data layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlbox.base.errors import UserError
from dlbox.config import REQUIRED, opt, positional

SAMPLE_NAMES = ("digits", "shapes", "shapes-det")  # dlbox.data.samples.SAMPLES, without importing it at startup



@dataclass(kw_only=True)
class BuildArgs:
    train_dir: str = positional("one folder per class (jpg, jpeg, png, bmp, webp), or s3://BUCKET/PREFIX", metavar="TRAIN_DIR",
                                output=False)
    out: str = opt(REQUIRED, "the dataset directory to write", metavar="DIR", output="dir")
    val_dir: str | None = opt(None, "class folders of a separate validation set", metavar="DIR", output=False)
    val_split: float | None = opt(None, "validation fraction of each class, stratified (default: 0.1)", ge=0, lt=1,
                                  metavar="X")  # fmt: skip
    shards: bool = opt(False, "also write WebDataset tar shards (self-contained copies)")
    shard_size: int = opt(1024, "images per shard (default: 1024)", ge=1, metavar="N", le=1_000_000)
    seed: int = opt(0, "split seed (default: 0)", ge=0, metavar="N", le=2**32 - 1)

    def validate(self) -> None:
        if self.val_dir and self.val_split is not None:
            raise UserError("give --val-dir or --val-split, not both", "--val-dir uses that folder as the validation set")


@dataclass(kw_only=True)
class SampleArgs:
    name: str = positional("which sample: " + ", ".join(SAMPLE_NAMES), choices=SAMPLE_NAMES, metavar="NAME")
    out: str = opt(REQUIRED, "output folder (replaced when it holds an earlier sample)", metavar="DIR", output="dir")
    seed: int = opt(0, "generator seed (default: 0)", ge=0, metavar="N", le=2**32 - 1)
    n_per_class: int | None = opt(None, "shapes, shapes-det: images (boxes) per class (shapes: 200)", ge=1, metavar="N", le=10_000)
    classes: int | None = opt(None, "shapes, shapes-det: how many shape classes, 3 to 5 (shapes: 4)", ge=3, le=5,
                              metavar="N")  # fmt: skip
    size: int | None = opt(None, "digits: image size in px (default: 32)", ge=8, metavar="PX", le=512)


SOURCE = "a COCO json, or a COCO directory (annotations/*.json, images/)"
IMAGES = "the image folder, when not next to the json (ROOT/images)"
COPY_IMAGES = "copy images into OUT/images (default: reference them)"


@dataclass(kw_only=True)
class CocoSplitArgs:
    source: str = positional("one COCO json (or a directory holding one)")
    out: str = opt(REQUIRED, "the COCO directory to write", output="dir")
    train: float = opt(0.8, "train fraction (default: 0.8)", ge=0, le=1)
    val: float = opt(0.1, "validation fraction (default: 0.1)", ge=0, le=1)
    test: float = opt(0.1, "test fraction (default: 0.1)", ge=0, le=1)
    seed: int = opt(0, "shuffle seed (default: 0)", ge=0, le=2**32 - 1)
    images: str | None = opt(None, IMAGES)
    copy_images: bool = opt(False, COPY_IMAGES)

    def validate(self) -> None:
        from dlbox.data.coco import check_fractions

        check_fractions(self.train, self.val, self.test)


@dataclass(kw_only=True)
class CocoSubsetArgs:
    source: str = positional(SOURCE)
    classes: str = opt(REQUIRED, "comma-separated category names, in the new id order")
    out: str = opt(REQUIRED, "the COCO directory to write (every split of the source)", output="dir")
    keep_empty: bool = opt(False, "also keep the other images, without boxes (negatives)")
    copy_images: bool = opt(False, COPY_IMAGES)

    def validate(self) -> None:
        from dlbox.data.coco import class_list

        class_list(self.classes)


@dataclass(kw_only=True)
class CocoStatsArgs:
    source: str = positional(SOURCE)


@dataclass(kw_only=True)
class CocoCheckArgs:
    source: str = positional(SOURCE)
    fix: bool = opt(False, "clip or drop what can be fixed and write the json back (the original is kept as NAME.json.bak)")
    out: str | None = opt(None, "with --fix and one json: write the fixed json here instead", output="file")
    images: str | None = opt(None, IMAGES)
    no_files: bool = opt(False, "skip the image file checks (json only)")


@dataclass(kw_only=True)
class CocoConvertArgs:
    source: str = positional("voc: a folder (Annotations/ + JPEGImages/); yolo: a folder (images/ + labels/); "
                             "labelbox: the export .json/.ndjson; csv: the .csv (file,x1,y1,x2,y2,label)")  # fmt: skip
    from_format: Literal["voc", "yolo", "labelbox", "csv"] = opt(REQUIRED, "source format", flag="--from")
    to: Literal["coco"] = opt("coco", "target format (coco)", output=False)
    out: str = opt(REQUIRED, "the COCO directory to write (OUT/annotations/NAME.json)", output="dir")
    name: str = opt("all", "annotation file name (default: all; then `dlbox data coco split`)")
    images: str | None = opt(None, "the image folder (default: found from the source layout)")
    names: str | None = opt(None, "yolo: class names file (default: classes.txt / obj.names / data.yaml)")
    copy_images: bool = opt(False, COPY_IMAGES)
    skip_invalid: bool = opt(False, "drop boxes with x2 < x1, unknown classes, ... and count them")
    fetch: bool = opt(False, "labelbox: download each row's image (its URL) into OUT/images/ first, then check the result")
    drop_unlabeled: bool = opt(False, "labelbox: leave out images skipped in Labelbox or without objects (always counted)")
    workers: int = opt(8, "labelbox with --fetch, masks by URL: parallel downloads (default: 8)", ge=1, le=64, metavar="N")


@dataclass(kw_only=True)
class FetchImagesArgs:
    source: str = positional("a CSV of image URLs (one column, or --column NAME), a Labelbox export (v1 .json, "
                             "v2 .ndjson) or a COCO json with coco_url/flickr_url", output=False)  # fmt: skip
    out: str = opt(REQUIRED, "the data folder: images go to OUT/images/ (a COCO json's copy to OUT/annotations/)",
                   metavar="DIR", output="dir")  # fmt: skip
    from_format: Literal["auto", "csv", "labelbox", "coco"] = opt("auto", "source format (default: from the file)",
                                                                  flag="--from")  # fmt: skip
    column: str | None = opt(None, "CSV: the column of URLs (default: the only one, or url, image_url, ...)",
                             metavar="NAME")  # fmt: skip
    workers: int = opt(8, "parallel downloads (default: 8)", ge=1, le=64, metavar="N")
    retries: int | None = opt(None, "attempts after a network failure, with back-off (default: the hub's, 3)",
                              ge=0, le=20, metavar="N")  # fmt: skip
    max_size: float = opt(50.0, "largest image accepted, in MB; larger ones are listed as failed (default: 50)",
                          gt=0, le=10000, metavar="MB")  # fmt: skip


@dataclass(kw_only=True)
class CocoExportYoloArgs:
    source: str = positional(SOURCE + "; each split goes to OUT/<split>/")
    out: str = opt(REQUIRED, "output folder: labels/, images/, classes.txt", output="dir")
    no_images: bool = opt(False, "write labels only (default: copy the images too)")
