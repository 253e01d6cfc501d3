"""`dlbox data coco split|subset|stats|check|convert|export-yolo` (owned by the detection toolchain)."""

from __future__ import annotations

import argparse

from dlbox.cliutil import add_json, command, emit, number


def cmd_split(args: argparse.Namespace) -> int:
    from dlbox.data.coco import split_to_dir

    r = split_to_dir(args.source, args.out, args.train, args.val, args.test, seed=args.seed,
                     copy_images=args.copy_images, images=args.images)  # fmt: skip
    emit(args, r, lambda r: "\n".join(f"{k:<6} {v['images']:>6} images {v['annotations']:>7} boxes -> {r['out']}/annotations/{k}.json"
                                      for k, v in r["splits"].items()))  # fmt: skip
    return 0


def cmd_subset(args: argparse.Namespace) -> int:
    from dlbox.data.coco import subset_to_dir

    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    r = subset_to_dir(args.source, classes, args.out, keep_empty=args.keep_empty, copy_images=args.copy_images)
    emit(args, r, lambda r: "\n".join(f"{k:<6} {v['images']:>6} images {v['annotations']:>7} boxes of {', '.join(r['classes'])}"
                                      for k, v in r["splits"].items()))  # fmt: skip
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from dlbox.data.coco import render_stats, stats_of

    emit(args, stats_of(args.source), render_stats)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from dlbox.data.coco import check_file, render_check

    r = check_file(args.source, fix=args.fix, out=args.out, images=args.images, check_files=not args.no_files)
    emit(args, r, render_check)
    return 0 if r["ok"] else 1


def cmd_convert(args: argparse.Namespace) -> int:
    from dlbox.data.convert import convert

    r = convert(args.from_format, args.source, args.out, images=args.images, names=args.names, name=args.name,
                copy_images=args.copy_images, skip_invalid=args.skip_invalid)  # fmt: skip

    def render(r) -> str:
        text = f"wrote {r['file']}: {r['images']} images, {r['annotations']} boxes, classes {', '.join(r['classes'])}"
        if r["skipped"]:
            text += "\nskipped: " + ", ".join(f"{n} x {k}" for k, n in r["skipped"].items())
        return text

    emit(args, r, render)
    return 0


def cmd_export_yolo(args: argparse.Namespace) -> int:
    from dlbox.data.convert import to_yolo

    r = to_yolo(args.source, args.out, copy_images=not args.no_images)
    emit(args, r, lambda r: f"wrote {r['images']} label files ({r['boxes']} boxes, {len(r['classes'])} classes) to {r['out']}")
    return 0


def register(data_sub) -> None:
    """Adds the `coco` command group under `dlbox data`."""
    group = command(data_sub, "coco", "COCO detection data: split, subset, stats, check/fix, convert, export to YOLO",
                    "dlbox data coco check data/shapes-det --fix")  # fmt: skip
    sub = group.add_subparsers(dest="coco_command", metavar="SUBCOMMAND", parser_class=type(group), required=True)
    src_help = "a COCO json, or a COCO directory (annotations/*.json, images/)"

    p = command(sub, "split", "seeded train/val/test split by image -> OUT/annotations/{train,val,test}.json",
                "dlbox data coco split data/mine/annotations/all.json --train 0.8 --val 0.1 --test 0.1 --out data/mine")  # fmt: skip
    add_json(p)
    p.add_argument("source", help="one COCO json (or a directory holding one)")
    p.add_argument("--out", required=True, help="the COCO directory to write")
    p.add_argument("--train", type=number(float, ge=0, le=1), default=0.8, help="train fraction (default: 0.8)")
    p.add_argument("--val", type=number(float, ge=0, le=1), default=0.1, help="validation fraction (default: 0.1)")
    p.add_argument("--test", type=number(float, ge=0, le=1), default=0.1, help="test fraction (default: 0.1)")
    p.add_argument("--seed", type=number(int, ge=0), default=0, help="shuffle seed (default: 0)")
    p.add_argument("--images", help="the image folder, when not next to the json (ROOT/images)")
    p.add_argument("--copy-images", action="store_true", help="copy images into OUT/images (default: reference them)")
    p.set_defaults(func=cmd_split)

    p = command(sub, "subset", "keep images with the given classes (only their boxes), category ids remapped to 1..K",
                "dlbox data coco subset data/coco --classes person,cat,dog --out data/pets")  # fmt: skip
    add_json(p)
    p.add_argument("source", help=src_help)
    p.add_argument("--classes", required=True, help="comma-separated category names, in the new id order")
    p.add_argument("--out", required=True, help="the COCO directory to write (every split of the source)")
    p.add_argument("--keep-empty", action="store_true", help="also keep the other images, without boxes (negatives)")
    p.add_argument("--copy-images", action="store_true", help="copy images into OUT/images (default: reference them)")
    p.set_defaults(func=cmd_subset)

    p = command(sub, "stats", "images, boxes per class, boxes per image, box-size histogram, COCO size ranges",
                "dlbox data coco stats data/shapes-det --json")  # fmt: skip
    add_json(p)
    p.add_argument("source", help=src_help)
    p.set_defaults(func=cmd_stats)

    p = command(sub, "check", "find bad boxes, unknown ids, missing/unreadable images; --fix clips or drops, with counts",
                "dlbox data coco check data/mine/annotations/all.json --fix")  # fmt: skip
    add_json(p)
    p.add_argument("source", help=src_help)
    p.add_argument("--fix", action="store_true", help="clip or drop what can be fixed and write the json back "
                                                      "(the original is kept as NAME.json.bak)")  # fmt: skip
    p.add_argument("--out", help="with --fix and one json: write the fixed json here instead")
    p.add_argument("--images", help="the image folder, when not next to the json (ROOT/images)")
    p.add_argument("--no-files", action="store_true", help="skip the image file checks (json only)")
    p.set_defaults(func=cmd_check)

    p = command(sub, "convert", "Pascal VOC XML, YOLO txt, Labelbox JSON or CSV -> COCO json",
                "dlbox data coco convert --from voc VOCdevkit/VOC2012 --to coco --out data/voc")  # fmt: skip
    add_json(p)
    p.add_argument("source", help="voc: a folder (Annotations/ + JPEGImages/); yolo: a folder (images/ + labels/); "
                                  "labelbox: the export .json/.ndjson; csv: the .csv (file,x1,y1,x2,y2,label)")  # fmt: skip
    p.add_argument("--from", dest="from_format", required=True, choices=["voc", "yolo", "labelbox", "csv"], help="source format")
    p.add_argument("--to", default="coco", choices=["coco"], help="target format (coco)")
    p.add_argument("--out", required=True, help="the COCO directory to write (OUT/annotations/NAME.json)")
    p.add_argument("--name", default="all", help="annotation file name (default: all; then `dlbox data coco split`)")
    p.add_argument("--images", help="the image folder (default: found from the source layout)")
    p.add_argument("--names", help="yolo: class names file (default: classes.txt / obj.names / data.yaml)")
    p.add_argument("--copy-images", action="store_true", help="copy images into OUT/images (default: reference them)")
    p.add_argument("--skip-invalid", action="store_true", help="drop boxes with x2 < x1, unknown classes, ... and count them")
    p.set_defaults(func=cmd_convert)

    p = command(sub, "export-yolo", "COCO -> YOLO txt labels + classes.txt (+ images)",
                "dlbox data coco export-yolo data/shapes-det --out data/shapes-yolo")  # fmt: skip
    add_json(p)
    p.add_argument("source", help=src_help + "; each split goes to OUT/<split>/")
    p.add_argument("--out", required=True, help="output folder: labels/, images/, classes.txt")
    p.add_argument("--no-images", action="store_true", help="write labels only (default: copy the images too)")
    p.set_defaults(func=cmd_export_yolo)
