"""`dlbox classify models|train|evaluate|predict|export`."""

from __future__ import annotations

import argparse

from dlbox.cliutil import add_config_options, add_json, command, config_from_args, emit, number


def cmd_models(args: argparse.Namespace) -> int:
    from dlbox.tasks.classify.models import list_models, model_info

    if args.source == "timm":
        return cmd_timm_models(args)
    rows = [model_info(n).as_dict() for n in list_models()]

    def render(rows) -> str:
        head = f"{'model':<24} {'params(M)':>9} {'GFLOPs':>7} {'size':>5} {'top-1':>7} {'top-5':>7}"
        body = [
            f"{r['name']:<24} {r['params_m'] or 0:>9.2f} {r['gflops'] or 0:>7.2f} {r['img_size'] or 0:>5} "
            f"{r['top1'] or 0:>7.2f} {r['top5'] or 0:>7.2f}"
            for r in rows
        ]
        return "\n".join([head, *body, "", "top-1/top-5: ImageNet-1k val accuracy (%) of torchvision's default weights"])

    emit(args, rows, render)
    return 0


def cmd_timm_models(args: argparse.Namespace) -> int:
    from dlbox.tasks.classify import timm_models

    rows = timm_models.list_models(args.filter, args.results)

    def render(rows) -> str:
        def num(v, fmt):
            return format(v, fmt) if v is not None else "-"

        head = f"{'model':<56} {'params(M)':>9} {'size':>5} {'top-1':>7} {'top-5':>7}  mean/std"
        body = [f"{r['name']:<56} {num(r['params_m'], '>9.2f'):>9} {num(r['img_size'], '>5'):>5} "
                f"{num(r['top1'], '>7.2f'):>7} {num(r['top5'], '>7.2f'):>7}  {r['mean']}/{r['std']}" for r in rows]  # fmt: skip
        notes = [] if args.results else [timm_models.NOTE]
        if not args.filter:
            notes.append("params: counted with --filter (e.g. --filter 'resnet*'), or read from --results")
        return "\n".join([head, *body, "", *notes])

    emit(args, rows, render)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from dlbox.tasks.classify.train import ClassifyConfig, train

    cfg = config_from_args(ClassifyConfig, args)
    result = train(cfg)
    if result is None:
        return 0

    def render(r) -> str:
        top5 = f"{100 * r['val_top5']:.2f}%" if r["val_top5"] is not None else "-"
        top1 = f"{100 * r['val_top1']:.2f}%" if r["val_top1"] is not None else "-"
        return (
            f"{'run':<16} {r['run_dir']}\n{'precision@1':<16} {top1}\n{'recall@5':<16} {top5}\n"
            f"{'best epoch':<16} {r['best_epoch']} of {r['epochs']}\n{'time':<16} {r['seconds']:.1f} s "
            f"({r['images_per_sec']:.0f} images/s, {r['processes']} process(es))"
        )

    emit(args, result, render)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dlbox.tasks.classify.evaluate import evaluate, render

    emit(args, evaluate(args.source, args.data, split=args.split, out_dir=args.out, model_name=args.model), render)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import sys

    from dlbox.tasks.classify.predict import predict, render_csv, render_table

    source, inputs = args.source, list(args.inputs)
    if args.weights:  # `predict --weights W IMAGE...`: every positional argument is an image
        source, inputs = args.weights, [source, *inputs]
    if not inputs:
        from dlbox.errors import UserError

        raise UserError("no images given", "dlbox classify predict SOURCE IMAGE... (or --weights W IMAGE...)")
    results = predict(source, inputs, topk=args.topk, model_name=args.model, fast=args.fast)
    if args.csv:
        sys.stdout.write(render_csv(results) + "\n")
    else:
        emit(args, results, render_table)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from dlbox.tasks.classify.export import export

    result = export(args.source, args.format, out=args.out, dynamic_batch=args.dynamic_batch)
    emit(args, result, lambda r: f"wrote {r['file']} ({r['format']}); parity with PyTorch: max |diff| = {r['max_abs_diff']:.2e}")
    return 0


def register(sub) -> None:
    from dlbox.tasks.classify.config import ClassifyConfig

    group = command(sub, "classify", "image classification: train or fine-tune, evaluate, predict, export",
                    "dlbox classify train --data data/digits --model googlenet --img-size 32")  # fmt: skip
    csub = group.add_subparsers(dest="classify_command", metavar="SUBCOMMAND", parser_class=type(group), required=True)

    p = command(csub, "models", "torchvision classifiers with parameters, GFLOPs and ImageNet top-1/top-5; "
                "timm's with --source timm", "dlbox classify models --source timm --filter 'resnet*' --json")  # fmt: skip
    add_json(p)
    p.add_argument("--source", choices=["torchvision", "timm"], default="torchvision",
                   help="whose models (default: torchvision); timm's are used as --model timm:NAME")  # fmt: skip
    p.add_argument("--filter", help="timm: a glob on the names, e.g. 'resnet*' (parameters are counted then)")
    p.add_argument("--results", help="timm: its published results CSV (results-imagenet.csv) for top-1/top-5")
    p.set_defaults(func=cmd_models)

    p = command(csub, "train", "train from scratch or fine-tune on class folders or a built dataset",
                "dlbox classify train --data data/flowers --model resnet50 --weights hub:resnet50 --fine-tune")  # fmt: skip
    add_json(p)
    p.add_argument("--config", help="a YAML file of options (typed options win)")
    add_config_options(p, ClassifyConfig, title="classification")
    p.set_defaults(func=cmd_train, command_path="dlbox classify train")

    p = command(csub, "evaluate", "precision@1, recall@5, per-class P/R/F1, confusion matrix, misclassified files",
                "dlbox classify evaluate runs/classify/20260101-120000 --data data/digits")  # fmt: skip
    add_json(p)
    p.add_argument("source", help="a run directory (uses best.pt), a checkpoint, an .onnx file, or weights with --model")
    p.add_argument("--data", required=True, help="class folders or a built dataset")
    p.add_argument("--split", choices=["val", "train", "all"], default="val", help="which images (default: val)")
    p.add_argument("--out", help="where the confusion matrix and misclassified.csv go (default: RUN/eval-SPLIT)")
    p.add_argument("--model", help="the architecture, for plain weights files")
    p.set_defaults(func=cmd_evaluate)

    p = command(csub, "predict", "top-k labels with probabilities for images, a folder or a glob",
                "dlbox classify predict runs/classify/demo 'photos/*.jpg' --topk 3")  # fmt: skip
    add_json(p)
    p.add_argument("source", help="a run directory, a checkpoint, an .onnx export, or weights/hub:NAME with --model")
    p.add_argument("inputs", nargs="*", help="image files, folders or quoted globs")
    p.add_argument("--weights", metavar="W", help="weights to predict with (a TF checkpoint, hub:NAME, a file); then "
                   "SOURCE is an image too: `predict --weights model.ckpt photo.jpg`")  # fmt: skip
    p.add_argument("--topk", type=number(int, ge=1), default=5, help="how many labels per image (default: 5)")
    p.add_argument("--csv", action="store_true", help="print CSV (file, rank, label, prob)")
    p.add_argument("--model", help="the architecture, for plain weights (ImageNet names for 1000 classes)")
    p.add_argument("--fast", action="store_true",
                   help="run the inference path `dlbox bench --auto --model NAME` saved for this model on this CPU")  # fmt: skip
    p.set_defaults(func=cmd_predict)

    p = command(csub, "export", "export to ONNX or TorchScript, with a parity check against PyTorch",
                "dlbox classify export runs/classify/demo --format onnx --dynamic-batch")  # fmt: skip
    add_json(p)
    p.add_argument("source", help="a run directory or checkpoint")
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx", help="(default: onnx)")
    p.add_argument("--out", help="output file (default: RUN/model.onnx or RUN/model.torchscript.pt)")
    p.add_argument("--dynamic-batch", action="store_true", help="any batch size (default: batch 1)")
    p.set_defaults(func=cmd_export)
