"""`dlbox detect models|train|evaluate|predict|export|bench`."""

from __future__ import annotations

import argparse

from dlbox.cliutil import add_config_options, add_json, command, config_from_args, emit, number


def cmd_models(args: argparse.Namespace) -> int:
    from dlbox.tasks.detect.models import MODELS, model_info

    rows = [model_info(n).as_dict() for n in MODELS]

    def render(rows) -> str:
        head = f"{'model':<40} {'params(M)':>9} {'GFLOPs':>7} {'size':>5} {'COCO AP':>8}"
        body = [
            f"{r['name'] + (' (default)' if r['default'] else ''):<40} {r['params_m']:>9.2f} {r['gflops'] or 0:>7.2f} "
            f"{r['img_size']:>5} {'-' if r['coco_box_ap'] is None else format(r['coco_box_ap'], '.1f'):>8}"
            for r in rows
        ]
        return "\n".join([head, *body, "", "COCO AP: published box mAP@[.5:.95] (%) on COCO val2017 of torchvision's "
                          "weights; GFLOPs: torchvision's figure at its reference input size (tinydet: multiply-adds at 320 px, 80 classes); "
                          "size: dlbox's default --img-size"])  # fmt: skip

    emit(args, rows, render)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from dlbox.tasks.detect.config import DetectConfig
    from dlbox.tasks.detect.train import render, train

    cfg = config_from_args(DetectConfig, args)
    result = train(cfg)
    if result is not None:
        emit(args, result, render)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dlbox.tasks.detect.evaluate import evaluate
    from dlbox.tasks.detect.metrics import render

    emit(args, evaluate(args.source, args.data, split=args.split, batch_size=args.batch_size, threads=args.threads), render)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from dlbox.tasks.detect.predict import predict, render_table

    emit(args, predict(args.source, args.inputs, conf=args.conf, save_images=args.save_images, threads=args.threads), render_table)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from dlbox.tasks.detect.export import export

    r = export(args.source, args.format, out=args.out, img_size=args.img_size, check_images=args.check_images)

    def render(r) -> str:
        p = r["parity"]
        verdict = "ok" if p["ok"] else f"MISMATCH ({p['unmatched']} of {p['compared']} detections)"
        return (f"wrote {r['file']} ({r['format']}, {r['img_size']} px, decoding + NMS inside)\n"
                f"parity with PyTorch on {p['images']} images: {verdict}; min IoU {p['min_iou']:.4f}, "
                f"max score diff {p['max_score_diff']:.2e}")  # fmt: skip

    emit(args, r, render)
    return 0 if r["parity"]["ok"] else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from dlbox.tasks.detect.bench import bench, render

    emit(args, bench(args.source, args.img_size, args.runtime, args.runs, args.warmup, args.threads), render)
    return 0


def register(sub) -> None:
    from dlbox.tasks.detect.config import DetectConfig

    group = command(sub, "detect", "object detection: COCO data, train or fine-tune, COCO mAP, predict, export, bench",
                    "dlbox detect train --data data/shapes-det --epochs 10 --img-size 160")  # fmt: skip
    dsub = group.add_subparsers(dest="detect_command", metavar="SUBCOMMAND", parser_class=type(group), required=True)

    p = command(dsub, "models", "detectors with parameters, GFLOPs and published COCO box AP",
                "dlbox detect models --json")  # fmt: skip
    add_json(p)
    p.set_defaults(func=cmd_models)

    p = command(dsub, "train", "train tinydet from scratch or fine-tune a torchvision detector on a COCO directory",
                "dlbox detect train --data data/shapes-det --model fasterrcnn_mobilenet_v3_large_320_fpn "
                "--weights hub:fasterrcnn_mobilenet_v3_large_320_fpn --fine-tune")  # fmt: skip
    add_json(p)
    p.add_argument("--config", help="a YAML file of options (typed options win)")
    add_config_options(p, DetectConfig, title="detection")
    p.set_defaults(func=cmd_train, command_path="dlbox detect train")

    p = command(dsub, "evaluate", "COCO metrics with pycocotools: AP, AP50, AP75, APs/APm/APl, per-class AP",
                "dlbox detect evaluate runs/detect/shapes --data data/shapes-det --split test --json")  # fmt: skip
    add_json(p)
    p.add_argument("source", help="a run directory (uses best.pt), a checkpoint, or an .onnx export")
    p.add_argument("--data", required=True, help="a COCO directory (or one annotations json)")
    p.add_argument("--split", default="val", help="which annotations: val, test, train (default: val)")
    p.add_argument("--batch-size", type=number(int, ge=1), default=8, help="images per forward pass (default: 8)")
    p.add_argument("--threads", type=number(int, ge=1), help="intra-op threads (default: all cores)")
    p.set_defaults(func=cmd_evaluate)

    p = command(dsub, "predict", "boxes, labels and scores for images; --save-images draws them",
                "dlbox detect predict runs/detect/shapes photos/ --conf 0.5 --save-images out/")  # fmt: skip
    add_json(p)
    p.add_argument("source", help="a run directory, a checkpoint, or an .onnx export")
    p.add_argument("inputs", nargs="+", help="image files, folders or quoted globs")
    p.add_argument("--conf", type=number(float, ge=0, le=1), default=0.5, help="minimum score (default: 0.5)")
    p.add_argument("--save-images", metavar="DIR", help="write each image with its boxes drawn and labelled (PNG)")
    p.add_argument("--threads", type=number(int, ge=1), help="intra-op threads (default: all cores)")
    p.set_defaults(func=cmd_predict)

    p = command(dsub, "export", "export to ONNX with decoding and NMS inside, checked against PyTorch",
                "dlbox detect export runs/detect/shapes --format onnx --img-size 320")  # fmt: skip
    add_json(p)
    p.add_argument("source", help="a run directory or checkpoint")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="(default: onnx)")
    p.add_argument("--out", help="output file (default: RUN/model.onnx)")
    p.add_argument("--img-size", type=number(int, ge=32), help="input size of the graph (default: the training size)")
    p.add_argument("--check-images", nargs="+", metavar="IMAGE", help="images for the parity check (default: generated scenes)")
    p.set_defaults(func=cmd_export)

    p = command(dsub, "bench", "latency and throughput at one input size, batch 1 (onnxruntime or PyTorch)",
                "dlbox detect bench runs/detect/shapes --img-size 320 --threads 2")  # fmt: skip
    add_json(p)
    p.add_argument("source", help="a run directory, a checkpoint, or an .onnx export")
    p.add_argument("--img-size", type=number(int, ge=32), default=320, help="input size (default: 320)")
    p.add_argument("--runtime", choices=["onnx", "torch"], default="onnx", help="(default: onnx)")
    p.add_argument("--runs", type=number(int, ge=1), default=100, help="timed runs (default: 100)")
    p.add_argument("--warmup", type=number(int, ge=0), default=10, help="untimed runs first (default: 10)")
    p.add_argument("--threads", type=number(int, ge=1), help="intra-op threads (default: physical cores)")
    p.set_defaults(func=cmd_bench)
