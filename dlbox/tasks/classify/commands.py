"""`dlbox classify models|train|evaluate|predict|export`."""

from __future__ import annotations

from dlbox.cliutil import Command, call, group, lazy
from dlbox.tasks.classify import config


def models(c: config.ModelsArgs) -> list[dict]:
    if c.source == "timm":
        return lazy("dlbox.tasks.classify.timm_models:list_models")(c.filter, c.results)
    from dlbox.tasks.classify.models import list_models, model_info

    return [model_info(n).as_dict() for n in list_models()]


def render_models(rows, c: config.ModelsArgs) -> str:
    if c.source == "timm":
        return render_timm_models(rows, c)
    head = f"{'model':<24} {'params(M)':>9} {'GFLOPs':>7} {'size':>5} {'top-1':>7} {'top-5':>7}"
    body = [
        f"{r['name']:<24} {r['params_m'] or 0:>9.2f} {r['gflops'] or 0:>7.2f} {r['img_size'] or 0:>5} "
        f"{r['top1'] or 0:>7.2f} {r['top5'] or 0:>7.2f}"
        for r in rows
    ]
    return "\n".join([head, *body, "", "top-1/top-5: ImageNet-1k val accuracy (%) of torchvision's default weights"])


def render_timm_models(rows, c: config.ModelsArgs) -> str:
    from dlbox.tasks.classify import timm_models

    def num(v, fmt):
        return format(v, fmt) if v is not None else "-"

    head = f"{'model':<56} {'params(M)':>9} {'size':>5} {'top-1':>7} {'top-5':>7}  mean/std"
    body = [f"{r['name']:<56} {num(r['params_m'], '>9.2f'):>9} {num(r['img_size'], '>5'):>5} "
            f"{num(r['top1'], '>7.2f'):>7} {num(r['top5'], '>7.2f'):>7}  {r['mean']}/{r['std']}" for r in rows]  # fmt: skip
    notes = [] if c.results else [timm_models.NOTE]
    if not c.filter:
        notes.append("params: counted with --filter (e.g. --filter 'resnet*'), or read from --results")
    return "\n".join([head, *body, "", *notes])


def render_train(r) -> str:
    top5 = f"{100 * r['val_top5']:.2f}%" if r["val_top5"] is not None else "-"
    top1 = f"{100 * r['val_top1']:.2f}%" if r["val_top1"] is not None else "-"
    return (
        f"{'run':<16} {r['run_dir']}\n{'precision@1':<16} {top1}\n{'recall@5':<16} {top5}\n"
        f"{'best epoch':<16} {r['best_epoch']} of {r['epochs']}\n{'time':<16} {r['seconds']:.1f} s "
        f"({r['images_per_sec']:.0f} images/s, {r['processes']} process(es))"
    )


def predict(c: config.PredictArgs) -> list[dict] | None:
    import sys

    from dlbox.tasks.classify.predict import predict, render_csv

    source, inputs = (c.weights, [c.source, *c.inputs]) if c.weights else (c.source, c.inputs)  # --weights W IMAGE...
    results = predict(source, inputs, topk=c.topk, model_name=c.model, fast=c.fast)
    if not c.csv:
        return results
    sys.stdout.write(render_csv(results) + "\n")  # CSV instead of the table (and of --json)
    return None


COMMANDS = [
    Command("models", "torchvision classifiers with parameters, GFLOPs and ImageNet top-1/top-5; timm's with --source timm",
            "dlbox classify models --source timm --filter 'resnet*' --json",
            config.ModelsArgs, models, render_models),
    Command("train", "train from scratch or fine-tune on class folders or a built dataset",
            "dlbox classify train --data data/flowers --model resnet50 --weights hub:resnet50 --fine-tune",
            config.ClassifyConfig, lazy("dlbox.tasks.classify.train:train"), render_train, train="classification"),
    Command("evaluate", "precision@1, recall@5, per-class P/R/F1, confusion matrix, misclassified files",
            "dlbox classify evaluate runs/classify/20260101-120000 --data data/digits",
            config.EvaluateArgs, call("dlbox.tasks.classify.evaluate:evaluate", out_dir="out", model_name="model"),
            lazy("dlbox.tasks.classify.evaluate:render")),
    Command("predict", "top-k labels with probabilities for images, a folder or a glob",
            "dlbox classify predict runs/classify/demo 'photos/*.jpg' --topk 3",
            config.PredictArgs, predict, lazy("dlbox.tasks.classify.predict:render_table")),
    Command("export", "export to ONNX, TorchScript or OpenVINO IR (any batch size), with a parity check against PyTorch",
            "dlbox classify export runs/classify/demo --format onnx --register digits",
            config.ExportArgs, call("dlbox.tasks.classify.export:export", fmt="format"),
            lambda r: f"wrote {r['file']} ({r['format']}); parity with PyTorch: max |diff| = {r['max_abs_diff']:.2e}"
                      + (f"\nregistered {r['registered']['uri']}" if r.get("registered") else "")),
]  # fmt: skip


register = group("classify", "image classification: train or fine-tune, evaluate, predict, export",
                 "dlbox classify train --data data/digits --model googlenet --img-size 32", COMMANDS)  # fmt: skip
