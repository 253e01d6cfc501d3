"""`dlbox data build|sample` (and `dlbox data coco ...` from the detection toolchain)."""

from __future__ import annotations

import argparse

from dlbox.cliutil import add_json, command, emit, number

SAMPLE_NAMES = ("digits", "shapes", "shapes-det")  # dlbox.data.samples.SAMPLES, without importing it at startup


def cmd_build(args: argparse.Namespace) -> int:
    from dlbox.data.build import build_dataset, render

    if args.val_dir and args.val_split is not None:
        from dlbox.errors import UserError

        raise UserError("give --val-dir or --val-split, not both", "--val-dir uses that folder as the validation set")
    summary = build_dataset(args.train_dir, args.out, val_dir=args.val_dir,
                            val_split=0.1 if args.val_split is None else args.val_split, seed=args.seed,
                            shards=args.shards, shard_size=args.shard_size)  # fmt: skip
    emit(args, summary, render)
    return 0


def _render_sample(r: dict) -> str:
    per_class = r.get("per_class") or {}
    counts = ", ".join(f"{c} {n}" for c, n in per_class.items())
    return f"wrote {r.get('images', '?')} images of {len(r.get('classes', []))} classes to {r['out']}" + (
        f" ({counts})" if counts else "")  # fmt: skip


def cmd_sample(args: argparse.Namespace) -> int:
    from dlbox.data.samples import write_sample

    result = write_sample(args.name, args.out, seed=args.seed, n_per_class=args.n_per_class, classes=args.classes,
                          size=args.size)  # fmt: skip
    emit(args, result, _render_sample)
    return 0


def register(sub) -> None:
    group = command(sub, "data", "datasets: build from class folders, shards, sample data, COCO tools",
                    "dlbox data sample digits --out data/digits")  # fmt: skip
    dsub = group.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=type(group), required=True)

    p = command(dsub, "build", "class folders -> dataset dir: labels.txt, train/val manifests, optional tar shards",
                "dlbox data build photos/ --val-split 0.1 --out data/photos --shards",
                description="Class folders (jpg, jpeg, png, bmp, webp) -> DIR/labels.txt, DIR/train.csv, DIR/val.csv,\n"
                "DIR/dataset.json and, with --shards, DIR/shards/{train,val}-NNNNNN.tar (WebDataset).\n"
                "Every file is verified: unreadable and non-image files are listed and skipped with a count;\n"
                "val files that are byte-for-byte copies of train files are reported.")  # fmt: skip
    add_json(p)
    p.add_argument("train_dir", metavar="TRAIN_DIR", help="one folder per class (jpg, jpeg, png, bmp, webp), or s3://BUCKET/PREFIX")
    p.add_argument("--out", required=True, metavar="DIR", help="the dataset directory to write")
    p.add_argument("--val-dir", metavar="DIR", help="class folders of a separate validation set")
    p.add_argument("--val-split", type=number(float, ge=0, lt=1), metavar="X", help="validation fraction of each class, stratified (default: 0.1)")
    p.add_argument("--shards", action="store_true", help="also write WebDataset tar shards (self-contained copies)")
    p.add_argument("--shard-size", type=number(int, ge=1), default=1024, metavar="N", help="images per shard (default: 1024)")
    p.add_argument("--seed", type=number(int, ge=0), default=0, metavar="N", help="split seed (default: 0)")
    p.set_defaults(func=cmd_build)

    p = command(dsub, "sample", "write embedded sample data (offline): digits, shapes, shapes-det",
                "dlbox data sample shapes --out data/shapes --n-per-class 100")  # fmt: skip
    add_json(p)
    p.add_argument("name", choices=SAMPLE_NAMES, metavar="NAME", help="which sample: " + ", ".join(SAMPLE_NAMES))
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (replaced when it holds an earlier sample)")
    p.add_argument("--seed", type=number(int, ge=0), default=0, metavar="N", help="generator seed (default: 0)")
    p.add_argument("--n-per-class", type=number(int, ge=1), metavar="N", help="shapes, shapes-det: images (boxes) per class (shapes: 200)")
    p.add_argument("--classes", type=number(int, ge=3, le=5), metavar="N", help="shapes, shapes-det: how many shape classes, 3 to 5 (shapes: 4)")
    p.add_argument("--size", type=number(int, ge=8), metavar="PX", help="digits: image size in px (default: 32)")
    p.set_defaults(func=cmd_sample)

    from dlbox.data.coco_commands import register as register_coco

    register_coco(dsub)
