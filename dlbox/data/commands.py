"""`dlbox data build|sample` (and `dlbox data coco ...` from the detection toolchain)."""

from __future__ import annotations

import argparse

from dlbox.cliutil import add_json, command, emit


def cmd_build(args: argparse.Namespace) -> int:
    from dlbox.data.build import build_dataset, render

    if args.val_dir and args.val_split is not None:
        from dlbox.errors import UserError

        raise UserError("give --val-dir or --val-split, not both")
    summary = build_dataset(args.train_dir, args.out, val_dir=args.val_dir,
                            val_split=0.1 if args.val_split is None else args.val_split, seed=args.seed,
                            shards=args.shards, shard_size=args.shard_size)  # fmt: skip
    emit(args, summary, render)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from dlbox.data.samples import write_sample

    kw = {}
    if args.n_per_class is not None:
        kw["n_per_class"] = args.n_per_class
    result = write_sample(args.name, args.out, seed=args.seed, **kw)
    emit(args, result, lambda r: f"wrote {r.get('images', '?')} images of {len(r.get('classes', []))} classes to {r['out']}")
    return 0


def register(sub) -> None:
    from dlbox.data.samples import SAMPLES

    group = command(sub, "data", "datasets: build from class folders, shards, sample data, COCO tools",
                    "dlbox data sample digits --out data/digits")  # fmt: skip
    dsub = group.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=type(group), required=True)

    p = command(dsub, "build", "class folders -> dataset dir: labels.txt, train/val manifests, optional tar shards",
                "dlbox data build photos/ --val-split 0.1 --out data/photos --shards")  # fmt: skip
    add_json(p)
    p.add_argument("train_dir", help="one folder per class (jpg, jpeg, png, bmp, webp)")
    p.add_argument("--out", required=True, help="the dataset directory to write")
    p.add_argument("--val-dir", help="class folders of a separate validation set")
    p.add_argument("--val-split", type=float, help="validation fraction, stratified (default: 0.1)")
    p.add_argument("--shards", action="store_true", help="also write WebDataset tar shards")
    p.add_argument("--shard-size", type=int, default=1024, help="images per shard (default: 1024)")
    p.add_argument("--seed", type=int, default=0, help="split seed (default: 0)")
    p.set_defaults(func=cmd_build)

    p = command(dsub, "sample", "write embedded sample data (offline): digits, shapes, shapes-det",
                "dlbox data sample shapes --out data/shapes --n-per-class 100")  # fmt: skip
    add_json(p)
    p.add_argument("name", choices=sorted(SAMPLES), help="which sample")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    p.add_argument("--n-per-class", type=int, help="images per class (shapes; default 200)")
    p.set_defaults(func=cmd_sample)

    from dlbox.data.coco_commands import register as register_coco

    register_coco(dsub)
