"""`dlbox detect models|train|evaluate|predict|export|bench`."""

from __future__ import annotations

from dlbox.cliutil import Command, call, group, lazy
from dlbox.config import NoOptions
from dlbox.tasks.detect import config


def models(_) -> list[dict]:
    from dlbox.tasks.detect.models import MODELS, model_info

    return [model_info(n).as_dict() for n in MODELS]


def render_models(rows) -> str:
    head = f"{'model':<40} {'params(M)':>9} {'GFLOPs':>7} {'size':>5} {'COCO AP':>8}"
    body = [
        f"{r['name'] + (' (default)' if r['default'] else ''):<40} {r['params_m']:>9.2f} {r['gflops'] or 0:>7.2f} "
        f"{r['img_size']:>5} {'-' if r['coco_box_ap'] is None else format(r['coco_box_ap'], '.1f'):>8}"
        for r in rows
    ]
    return "\n".join([head, *body, "", "COCO AP: published box mAP@[.5:.95] (%) on COCO val2017 of torchvision's "
                      "weights; GFLOPs: torchvision's figure at its reference input size (tinydet: multiply-adds at 320 px, 80 classes); "
                      "size: dlbox's default --img-size"])  # fmt: skip


def render_export(r) -> str:
    p = r["parity"]
    verdict = "ok" if p["ok"] else f"MISMATCH ({p['unmatched']} of {p['compared']} detections)"
    return (f"wrote {r['file']} ({r['format']}, {r['img_size']} px, decoding + NMS inside)\n"
            f"parity with PyTorch on {p['images']} images: {verdict}; min IoU {p['min_iou']:.4f}, "
            f"max score diff {p['max_score_diff']:.2e}"
            + (f"\nregistered {r['registered']['uri']}" if r.get("registered") else ""))  # fmt: skip


COMMANDS = [
    Command("models", "detectors with parameters, GFLOPs and published COCO box AP", "dlbox detect models --json",
            NoOptions, models, render_models),
    Command("train", "train tinydet from scratch or fine-tune a torchvision detector on a COCO directory",
            "dlbox detect train --data data/shapes-det --model fasterrcnn_mobilenet_v3_large_320_fpn "
            "--weights hub:fasterrcnn_mobilenet_v3_large_320_fpn --fine-tune",
            config.DetectConfig, lazy("dlbox.tasks.detect.train:train"), lazy("dlbox.tasks.detect.train:render"),
            train="detection"),
    Command("evaluate", "COCO metrics with pycocotools: AP, AP50, AP75, APs/APm/APl, per-class AP",
            "dlbox detect evaluate runs/detect/shapes --data data/shapes-det --split test --json",
            config.EvaluateArgs, call("dlbox.tasks.detect.evaluate:evaluate"), lazy("dlbox.tasks.detect.metrics:render")),
    Command("predict", "boxes, labels and scores for images; --save-images draws them",
            "dlbox detect predict runs/detect/shapes photos/ --conf 0.5 --save-images out/",
            config.PredictArgs, call("dlbox.tasks.detect.predict:predict"), lazy("dlbox.tasks.detect.predict:render_table")),
    Command("export", "export to ONNX with decoding and NMS inside, checked against PyTorch",
            "dlbox detect export runs/detect/shapes --format onnx --img-size 320",
            config.ExportArgs, call("dlbox.tasks.detect.export:export", fmt="format"), render_export,
            exit_code=lambda r: 0 if r["parity"]["ok"] else 1),
    Command("bench", "latency and throughput at one input size, batch 1 (onnxruntime or PyTorch)",
            "dlbox detect bench runs/detect/shapes --img-size 320 --threads 2",
            config.BenchArgs, call("dlbox.tasks.detect.bench:bench"), lazy("dlbox.tasks.detect.bench:render")),
]  # fmt: skip


register = group("detect", "object detection: COCO data, train or fine-tune, COCO mAP, predict, export, bench",
                 "dlbox detect train --data data/shapes-det --epochs 10 --img-size 160", COMMANDS)  # fmt: skip
