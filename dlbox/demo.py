"""`dlbox demo`: the main job after `make demo`. The environment summary, then the integrity test."""

from __future__ import annotations

from typing import Any

from dlbox.cliutil import add_json, command, emit
from dlbox.engine.progress import log


def run_demo(runs_dir: str = "runs", quiet_json: bool = False) -> dict[str, Any]:
    """Print (to stdout, unless ``quiet_json``) each step's result; return them all."""
    from dlbox.env import doctor
    from dlbox.env.integrity import IntegrityConfig, render, run_integrity

    def show(title: str, text: str) -> None:
        if quiet_json:
            log(f"== {title}")
        else:
            print(f"\n== {title}\n{text}", flush=True)

    env = doctor.collect(runs_dir=runs_dir)
    show("environment (dlbox env)", doctor.render(env))
    report = run_integrity(IntegrityConfig(framework="all", runs_dir=runs_dir, name="demo"))
    show("integrity test (dlbox env test): LeNet-5 on scikit-learn's digits", render(report))
    return {"env": env, "integrity": report}


def cmd_demo(args) -> int:
    result = run_demo(runs_dir=args.runs_dir or "runs", quiet_json=args.json)
    if args.json:
        emit(args, result, str)
    return 0


def register(sub) -> None:
    p = command(sub, "demo", "the main job: environment summary, then the integrity test", "dlbox demo")
    add_json(p)
    p.add_argument("--runs-dir", default=None, help="where runs go (default: runs)")
    p.set_defaults(func=cmd_demo)
