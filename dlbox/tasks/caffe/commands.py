"""`dlbox caffe import|train|convert-imageset`: Caffe models, solvers and databases without Caffe."""

from __future__ import annotations

import argparse

from dlbox.cliutil import add_config_options, add_json, command, config_from_args, emit, number


def cmd_import(args: argparse.Namespace) -> int:
    from dlbox.hub.convert.caffe.importer import import_model, parse_shapes

    result = import_model(args.prototxt, args.weights, args.out, parse_shapes(args.input_shape))

    def render(r) -> str:
        weights = f"{r['weights_loaded']} layers' weights" if args.weights else "no weights (fillers)"
        ins = ", ".join(f"{k} {tuple(v)}" for k, v in r["inputs"].items())
        return (f"wrote {r['file']} ({r['format']}): net {r['net']!r}, {r['layers']} layers, {r['parameters']:,} parameters, "
                f"{weights}\ninputs {ins}; outputs {', '.join(r['outputs'])}\n"
                f"parity with the imported net: max |diff| = {r['max_abs_diff']:.2e}")  # fmt: skip

    emit(args, result, render)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from dlbox.tasks.caffe.train import CaffeTrainConfig, train

    cfg = config_from_args(CaffeTrainConfig, args)
    result = train(cfg)
    if result is None:
        return 0

    def render(r) -> str:
        test = "  ".join(f"{k} {v:.4f}" for k, v in r["test"].items())
        return (
            f"{'run':<12} {r['run_dir']}\n{'test':<12} {test}\n"
            f"{'iterations':<12} {r['iterations']} (epochs of {r['iterations_per_epoch']} x batch {r['batch_size']}; "
            f"solver max_iter {r['max_iter']}, lr_policy {r['lr_policy']}, {r['type']})\n"
            f"{'data':<12} {'  '.join(f'{k} {v}' for k, v in r['data'].items())}; tested every {r['test_interval']} "
            f"iterations on {r['test_samples']} samples\n"
            f"{'weights':<12} {r['caffemodel']}\n{'time':<12} {r['seconds']:.1f} s ({r['images_per_sec']:.0f} images/s)"
        )  # fmt: skip

    emit(args, result, render)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from dlbox.tasks.caffe.imageset import convert_imageset

    result = convert_imageset(args.source, args.out, list_file=args.list, gray=args.gray,
                              resize_height=args.resize_height, resize_width=args.resize_width,
                              shuffle=args.shuffle, seed=args.seed, encoded=args.encoded, encode_type=args.encode_type)  # fmt: skip

    def render(r) -> str:
        shapes = ", ".join("x".join(map(str, s)) for s in r["shapes"]) or "encoded"
        classes = f"; labels {r['classes']}" if r["classes"] else ""
        return f"wrote {r['lmdb']}: {r['records']:,} Datum records ({shapes}){classes}"

    emit(args, result, render)
    return 0


def register(sub) -> None:
    from dlbox.tasks.caffe.config import CaffeTrainConfig

    group = command(sub, "caffe", "Caffe models and solvers without Caffe: import to PyTorch/ONNX, train a solver, write LMDBs",
                    "dlbox caffe import deploy.prototxt weights.caffemodel --out model.onnx")  # fmt: skip
    csub = group.add_subparsers(dest="caffe_command", metavar="SUBCOMMAND", parser_class=type(group), required=True)

    p = command(csub, "import", "a prototxt (+ caffemodel) as a PyTorch file (.pt) or ONNX, parity-checked",
                "dlbox caffe import deploy.prototxt bvlc_googlenet.caffemodel --out googlenet.onnx")  # fmt: skip
    add_json(p)
    p.add_argument("prototxt", help="the net definition (protobuf text format)")
    p.add_argument("weights", nargs="?", help="the .caffemodel (default: the prototxt's fillers)")
    p.add_argument("--out", required=True, help="model.pt (read back with dlbox.hub.convert.caffe.load_pt) or model.onnx")
    p.add_argument("--input-shape", action="append", metavar="NAME=N,C,H,W",
                   help="shape of an input blob (needed for Data layers; overrides Input layers); repeatable")  # fmt: skip
    p.set_defaults(func=cmd_import)

    p = command(csub, "convert-imageset", "images (class subfolders or a list file) or the digits into a Caffe LMDB",
                "dlbox caffe convert-imageset digits:train examples/mnist/mnist_train_lmdb",
                "Like Caffe's convert_imageset: one Datum per image (raw pixels, BGR for colour, or the file with "
                "--encoded), keys %08d_<path>, for Data layers with backend: LMDB.")  # fmt: skip
    add_json(p)
    p.add_argument("source", help="a folder of class subfolders (or of the files --list names), or digits:train / digits:test")
    p.add_argument("out", help="the LMDB folder to create (must not exist)")
    p.add_argument("--list", help="Caffe's list file: lines `relative/path.jpg LABEL` under SOURCE")
    p.add_argument("--gray", action="store_true", help="store images as one gray channel")
    p.add_argument("--resize-height", type=number(int, ge=0), default=0,
                   help="resize every image to this height (with --resize-width)")  # fmt: skip
    p.add_argument("--resize-width", type=number(int, ge=0), default=0,
                   help="resize every image to this width (with --resize-height)")  # fmt: skip
    p.add_argument("--shuffle", action="store_true", help="shuffle the images before writing (seeded by --seed)")
    p.add_argument("--seed", type=number(int, ge=0), default=0, help="seed of --shuffle")
    p.add_argument("--encoded", action="store_true", help="store the image files (JPEG/PNG) rather than pixels")
    p.add_argument("--encode-type", default="", help="with --encoded: re-encode as png or jpg")
    p.set_defaults(func=cmd_convert)

    p = command(csub, "train", "run a Caffe solver.prototxt on the dlbox engine (runs, resume, TensorBoard)",
                "dlbox caffe train --solver lenet_solver.prototxt --data data/mnist")  # fmt: skip
    add_json(p)
    p.add_argument("--config", help="a YAML file of options (typed options win)")
    add_config_options(p, CaffeTrainConfig, title="caffe solver")
    p.set_defaults(func=cmd_train, command_path="dlbox caffe train")
