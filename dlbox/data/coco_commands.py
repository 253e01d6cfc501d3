"""`dlbox data coco split|subset|stats|check|convert|export-yolo` (owned by the detection toolchain)."""

from __future__ import annotations

from dlbox.cliutil import Command, call, group, lazy
from dlbox.data import config


def subset(c: config.CocoSubsetArgs) -> dict:
    classes = lazy("dlbox.data.coco:class_list")(c.classes)
    return lazy("dlbox.data.coco:subset_to_dir")(c.source, classes, c.out, keep_empty=c.keep_empty, copy_images=c.copy_images)


def render_convert(r) -> str:
    text = f"wrote {r['file']}: {r['images']} images, {r['annotations']} boxes, classes {', '.join(r['classes'])}"
    if r["skipped"]:
        text += "\nskipped: " + ", ".join(f"{n} x {k}" for k, n in r["skipped"].items())
    return text + lazy("dlbox.data.labelbox:render_extra")(r) if "counts" in r else text


COMMANDS = [
    Command("split", "seeded train/val/test split by image -> OUT/annotations/{train,val,test}.json",
            "dlbox data coco split data/mine/annotations/all.json --train 0.8 --val 0.1 --test 0.1 --out data/mine",
            config.CocoSplitArgs, call("dlbox.data.coco:split_to_dir", src="source"),
            lambda r: "\n".join(f"{k:<6} {v['images']:>6} images {v['annotations']:>7} boxes -> {r['out']}/annotations/{k}.json"
                                for k, v in r["splits"].items())),
    Command("subset", "keep images with the given classes (only their boxes), category ids remapped to 1..K",
            "dlbox data coco subset data/coco --classes person,cat,dog --out data/pets",
            config.CocoSubsetArgs, subset,
            lambda r: "\n".join(f"{k:<6} {v['images']:>6} images {v['annotations']:>7} boxes of {', '.join(r['classes'])}"
                                for k, v in r["splits"].items())),
    Command("stats", "images, boxes per class, boxes per image, box-size histogram, COCO size ranges",
            "dlbox data coco stats data/shapes-det --json",
            config.CocoStatsArgs, call("dlbox.data.coco:stats_of", src="source"), lazy("dlbox.data.coco:render_stats")),
    Command("check", "find bad boxes, unknown ids, missing/unreadable images; --fix clips or drops, with counts",
            "dlbox data coco check data/mine/annotations/all.json --fix",
            config.CocoCheckArgs,
            lambda c: lazy("dlbox.data.coco:check_file")(c.source, fix=c.fix, out=c.out, images=c.images,
                                                         check_files=not c.no_files),
            lazy("dlbox.data.coco:render_check"), exit_code=lambda r: 0 if r["ok"] else 1),
    Command("convert", "Pascal VOC XML, YOLO txt, Labelbox JSON (--fetch: images by URL) or CSV -> COCO json",
            "dlbox data coco convert --from labelbox export.ndjson --fetch --out data/mine",
            config.CocoConvertArgs,
            lambda c: lazy("dlbox.data.convert:convert")(c.from_format, c.source, c.out, images=c.images, names=c.names,
                                                         name=c.name, copy_images=c.copy_images, skip_invalid=c.skip_invalid,
                                                         fetch=c.fetch, drop_unlabeled=c.drop_unlabeled, workers=c.workers),
            render_convert, exit_code=lambda r: 0 if r.get("check", {}).get("ok", True) and r.get("fetch", {}).get("ok", True)
            else 1,
            description="Labelbox exports: boxes, polygons and masks (RLE or PNG URL) become COCO boxes (a polygon or\n"
            "mask also its segmentation, with its tight box); points go to the json's 'points' list. --fetch\n"
            "downloads each row's image first (resumable; failures listed, the rest converted) and checks the\n"
            "result: from a real export to a checked COCO dataset in one command."),
    Command("export-yolo", "COCO -> YOLO txt labels + classes.txt (+ images)",
            "dlbox data coco export-yolo data/shapes-det --out data/shapes-yolo",
            config.CocoExportYoloArgs,
            lambda c: lazy("dlbox.data.convert:to_yolo")(c.source, c.out, copy_images=not c.no_images),
            lambda r: f"wrote {r['images']} label files ({r['boxes']} boxes, {len(r['classes'])} classes) to {r['out']}"),
]  # fmt: skip


# the `coco` group under `dlbox data` (dlbox/data/commands.py)
register = group("coco", "COCO detection data: split, subset, stats, check/fix, convert, export to YOLO",
                 "dlbox data coco check data/shapes-det --fix", COMMANDS)  # fmt: skip
