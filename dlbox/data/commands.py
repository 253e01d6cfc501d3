"""`dlbox data build|fetch-images|sample` (and `dlbox data coco ...` from the detection toolchain)."""

from __future__ import annotations

from dlbox.cliutil import Command, call, group, lazy
from dlbox.data import coco_commands, config


def build(c: config.BuildArgs) -> dict:
    return lazy("dlbox.data.build:build_dataset")(c.train_dir, c.out, val_dir=c.val_dir,
                                                  val_split=0.1 if c.val_split is None else c.val_split, seed=c.seed,
                                                  shards=c.shards, shard_size=c.shard_size)  # fmt: skip


def render_sample(r: dict) -> str:
    per_class = r.get("per_class") or {}
    counts = ", ".join(f"{c} {n}" for c, n in per_class.items())
    return f"wrote {r.get('images', '?')} images of {len(r.get('classes', []))} classes to {r['out']}" + (
        f" ({counts})" if counts else "")  # fmt: skip


COMMANDS = [
    Command("build", "class folders -> dataset dir: labels.txt, train/val manifests, optional tar shards",
            "dlbox data build photos/ --val-split 0.1 --out data/photos --shards",
            config.BuildArgs, build, lazy("dlbox.data.build:render"),
            description="Class folders (jpg, jpeg, png, bmp, webp) -> DIR/labels.txt, DIR/train.csv, DIR/val.csv,\n"
            "DIR/dataset.json and, with --shards, DIR/shards/{train,val}-NNNNNN.tar (WebDataset).\n"
            "Every file is verified: unreadable and non-image files are listed and skipped with a count;\n"
            "val files that are byte-for-byte copies of train files are reported."),
    Command("fetch-images", "download images named by URL (CSV of URLs, Labelbox export, COCO coco_url) into OUT/images",
            "dlbox data fetch-images image_urls.csv --out data/mine --workers 16",
            config.FetchImagesArgs,
            lambda c: lazy("dlbox.data.fetch_images:fetch_images")(c.source, c.out, fmt=c.from_format, column=c.column,
                                                                   workers=c.workers, retries=c.retries,
                                                                   max_mb=c.max_size),
            lazy("dlbox.data.fetch_images:render"), exit_code=lambda r: 0 if r["ok"] else 1,
            description="Through the hub's downloader: parallel, resumable (a rerun fetches only what is missing),\n"
            "retried with back-off, mirrors (DLBOX_MIRROR: <base>/images/<host>/<path>) and s3:// honoured,\n"
            "offline-aware (DLBOX_OFFLINE=1 lists what is missing). Each file is checked: HTTP errors, pages that\n"
            "are not images, truncated images and files over --max-size are listed; the rest are kept.\n"
            "Images with the same content are kept once. A COCO json is written to OUT/annotations/ with\n"
            "each fetched image's file_name. Only http, https, s3 and file URLs are fetched; redirects are\n"
            "followed only to http(s). Exit 1 when something failed."),
    Command("sample", "write embedded sample data (offline): digits, shapes, shapes-det",
            "dlbox data sample shapes --out data/shapes --n-per-class 100",
            config.SampleArgs, call("dlbox.data.samples:write_sample"), render_sample),
]  # fmt: skip


register = group("data", "datasets: build from class folders, shards, sample data, COCO tools",
                 "dlbox data sample digits --out data/digits", [*COMMANDS, coco_commands.register])  # fmt: skip
