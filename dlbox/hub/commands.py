"""`dlbox hub`: list, info, download, add, mirror, sync. Parsing only; the work is in dlbox.hub modules."""

from __future__ import annotations

import argparse

from dlbox.cliutil import add_json, command, emit


def cmd_list(args: argparse.Namespace) -> int:
    from dlbox.hub.listing import render_rows, rows

    emit(args, rows(args.task), render_rows)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from dlbox.hub.listing import info, render_info

    emit(args, info(args.name), render_info)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from dlbox.hub.download import download, render_download

    emit(args, download(args.name, to=args.to, extract_archives=args.extract, only=args.only), render_download)
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from dlbox.hub.download import add, render_add

    emit(args, add(args.name, args.file, as_name=args.as_name, link=args.link), render_add)
    return 0


def cmd_mirror(args: argparse.Namespace) -> int:
    from dlbox.hub.sync import mirror, render_mirror

    emit(args, mirror(args.names, args.to), render_mirror)
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from dlbox.hub.sync import render_sync, sync

    emit(args, sync(args.src, args.dst, dry_run=args.dry_run), render_sync)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from dlbox.hub.convert.slim import convert_to_file

    r = convert_to_file(args.source, args.out)
    emit(args, r, lambda r: f"wrote {r['file']}: {r['model_name']} ({r['family']}), {r['num_classes']} classes"
         f"{' (background class dropped)' if r['background_dropped'] else ''}, {r['params'] / 1e6:.2f} M parameters")
    return 0


def register(sub) -> None:
    group = command(sub, "hub", "datasets and pretrained models: catalog, mirrored checksummed downloads, S3 sync",
                    "dlbox hub list --task classify",
                    description="The hub: a catalog of datasets and pretrained models (torchvision's weights, TF-Slim\n"
                    "checkpoints), downloaded into $DLBOX_HOME (default ~/.cache/dlbox) through mirrors\n"
                    "(DLBOX_MIRROR: http(s), s3://, or a directory) with hash checks, usable offline\n"
                    "(DLBOX_OFFLINE=1), plus copying trees to and from object storage.")  # fmt: skip
    hsub = group.add_subparsers(dest="hub_command", metavar="SUBCOMMAND", parser_class=type(group), required=True)

    p = command(hsub, "list", "the catalog: name, kind, task, size, whether cached", "dlbox hub list --task detect --json")
    add_json(p)
    p.add_argument("--task", metavar="T", help="only this task: classify, detect, speech, face, text")
    p.set_defaults(func=cmd_list)

    p = command(hsub, "info", "one entry: files, sizes, hashes, whether cached and where, metrics, licence",
                "dlbox hub info resnet50 --json")  # fmt: skip
    add_json(p)
    p.add_argument("name", metavar="NAME", help="a catalog name (see `dlbox hub list`)")
    p.set_defaults(func=cmd_info)

    p = command(hsub, "download", "fetch an entry's files into the cache (mirrors, resume, hash check), optionally "
                "place or extract them", "dlbox hub download coco2017 --only val2017.zip --to data/coco --extract",
                description="Fetch every file of NAME (or those named with --only) into $DLBOX_HOME/hub: mirrors in\n"
                "order, then upstream; several files in parallel, resumed after an interruption, retried\n"
                "with backoff, verified (sha256 or md5) before it is moved into place. --to DIR also puts\n"
                "them there (hard link or copy); --extract unpacks .tar/.tar.gz/.tgz/.zip into --to DIR\n"
                "(default $DLBOX_HOME/extracted/NAME), refusing members that would land outside it.")  # fmt: skip
    add_json(p)
    p.add_argument("name", metavar="NAME", help="a catalog name (see `dlbox hub list`)")
    p.add_argument("--to", metavar="DIR", help="also place the files (or, with --extract, their contents) here")
    p.add_argument("--extract", action="store_true", help="extract .tar, .tar.gz, .tgz and .zip files")
    p.add_argument("--only", action="append", metavar="FILE", help="only this file of the entry (repeatable)")
    p.set_defaults(func=cmd_download)

    p = command(hsub, "add", "register a file you already have (checked against the catalog hash) for offline use",
                "dlbox hub add imagenet2012 --file ~/Downloads/ILSVRC2012_img_val.tar")  # fmt: skip
    add_json(p)
    p.add_argument("name", metavar="NAME", help="the catalog entry the file belongs to")
    p.add_argument("--file", required=True, metavar="PATH", help="the file")
    p.add_argument("--as", dest="as_name", metavar="FILE", help="which of the entry's files it is (default: by its name)")
    p.add_argument("--link", action="store_true", help="hard-link it into the cache instead of copying (same disk)")
    p.set_defaults(func=cmd_add)

    p = command(hsub, "mirror", "fill a mirror (s3://bucket/prefix or a directory) with entries' files",
                "dlbox hub mirror resnet18 mnist --to s3://models-mirror/dlbox")  # fmt: skip
    add_json(p)
    p.add_argument("names", nargs="+", metavar="NAME", help="catalog names")
    p.add_argument("--to", required=True, metavar="DEST", help="s3://bucket/prefix or a directory; files go to DEST/NAME/FILE")
    p.set_defaults(func=cmd_mirror)

    p = command(hsub, "sync", "copy a tree between a local directory and object storage, either way, incrementally",
                "dlbox hub sync s3://mydata/ data/ --json")  # fmt: skip
    add_json(p)
    p.add_argument("src", metavar="SRC", help="a directory or s3://bucket/prefix")
    p.add_argument("dst", metavar="DST", help="a directory or s3://bucket/prefix")
    p.add_argument("--dry-run", action="store_true", help="only say what would be copied")
    p.set_defaults(func=cmd_sync)

    p = command(hsub, "convert", "a TF-Slim checkpoint (hub entry or path) -> PyTorch weights in safetensors",
                "dlbox hub convert slim-inception_v1 --out googlenet-slim.safetensors",
                description="Convert a TF-Slim checkpoint once: a catalog entry (downloaded and extracted when\n"
                "needed) or a checkpoint path (V2 prefix/.index, or a V1 .ckpt), read without TensorFlow.\n"
                "The file has torchvision's keys (googlenet, resnet50/101/152) or dlbox's MobileNetV1's,\n"
                "ImageNet's 1000 classes (a 1001st background output is dropped), and the facts dlbox\n"
                "needs to rebuild TF's padding and strides: `--weights FILE` uses them.")  # fmt: skip
    add_json(p)
    p.add_argument("source", metavar="NAME|PATH", help="slim-NAME from `dlbox hub list`, or a checkpoint path")
    p.add_argument("--out", required=True, metavar="FILE", help="the .safetensors file to write")
    p.set_defaults(func=cmd_convert)
