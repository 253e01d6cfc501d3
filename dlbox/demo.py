"""`dlbox demo`: the main job after `make demo`. The environment summary, then the integrity test."""

from __future__ import annotations

from typing import Any

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
