"""`dlbox demo`: the main job after `make demo`, a tour of the platform on the bundled data, offline.

environment summary -> integrity test (LeNet-5 in each framework) -> sample digits as class folders ->
GoogLeNet (Inception v1) from scratch -> evaluate -> predict a few images -> export ONNX -> predict
through ONNX. Each step prints its result; the whole tour takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dlbox.base.progress import log
from dlbox.cliutil import Command, register_commands
from dlbox.config import opt

DEMO_TRAIN = {"model": "googlenet", "img_size": 32, "epochs": 6, "batch_size": 32, "lr": 2e-3, "augment": "none"}


def run_demo(runs_dir: str = "runs", quiet_json: bool = False, frameworks: str = "all") -> dict[str, Any]:
    """Print (to stdout, unless ``quiet_json``) each step's result; return them all."""
    from dlbox.data.samples import write_sample
    from dlbox.env import doctor
    from dlbox.env.integrity import IntegrityConfig, render, run_integrity
    from dlbox.tasks.classify import evaluate as ev
    from dlbox.tasks.classify import predict as pr
    from dlbox.tasks.classify.export import export
    from dlbox.tasks.classify.train import ClassifyConfig, train

    def show(title: str, text: str) -> None:
        if quiet_json:
            log(f"== {title}")
        else:
            print(f"\n== {title}\n{text}", flush=True)

    out: dict[str, Any] = {}
    out["env"] = doctor.collect(runs_dir=runs_dir)
    show("1. environment (dlbox env)", doctor.render(out["env"]))

    out["integrity"] = run_integrity(IntegrityConfig(framework=frameworks, runs_dir=runs_dir, name="demo"))
    show("2. integrity test (dlbox env test): LeNet-5 on scikit-learn's digits", render(out["integrity"]))

    data = Path(runs_dir) / "demo-data" / "digits"
    out["sample"] = write_sample("digits", data)
    show("3. sample data (dlbox data sample digits)", f"{data}: 10 class folders of digit PNGs")

    cfg = ClassifyConfig(data=str(data), runs_dir=runs_dir, name="demo", **DEMO_TRAIN)
    out["train"] = train(cfg)
    t = out["train"]
    show(
        "4. train GoogLeNet (Inception v1) from scratch (dlbox classify train)",
        f"{t['run_dir']}: precision@1 {100 * t['val_top1']:.2f}%, recall@5 {100 * t['val_top5']:.2f}% "
        f"(best epoch {t['best_epoch']}/{t['epochs']}, {t['seconds']:.0f} s, {t['images_per_sec']:.0f} images/s)",
    )
    run = t["run_dir"]

    out["evaluate"] = ev.evaluate(run, str(data), split="val")
    show("5. evaluate (dlbox classify evaluate)", ev.render(out["evaluate"]))

    images = [str(next((data / c).iterdir())) for c in ("3", "7", "9")]
    out["predict"] = pr.predict(run, images, topk=3)
    show("6. predict (dlbox classify predict)", pr.render_table(out["predict"]))

    out["export"] = export(run, "onnx")
    e = out["export"]
    show("7. export ONNX (dlbox classify export)", f"{e['file']}: max |onnx - torch| = {e['max_abs_diff']:.2e}")

    out["predict_onnx"] = pr.predict(e["file"], images, topk=3)
    show("8. predict through ONNX (onnxruntime)", pr.render_table(out["predict_onnx"]))
    return out


@dataclass(kw_only=True)
class DemoArgs:
    runs_dir: str | None = opt(None, "where runs and the sample data go (default: runs)", output="dir")
    framework: Literal["all", "torch", "keras", "tensorflow", "caffe"] = opt(
        "all", "frameworks for the integrity step (default: all)")  # fmt: skip


def demo(c: DemoArgs, as_json: bool) -> int:
    """The tour; each step prints as it goes (on stderr with --json, then the whole result as one document)."""
    result = run_demo(runs_dir=c.runs_dir or "runs", quiet_json=as_json, frameworks=c.framework)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    return 0


DEMO = Command("demo", "the main job: environment, integrity test, then a classification tour", "dlbox demo",
               DemoArgs, demo, streams=True)


def register(sub) -> None:
    register_commands(sub, [DEMO])
