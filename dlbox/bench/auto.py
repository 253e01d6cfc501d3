"""`dlbox bench --auto`: check and time every path of the suite, choose the fastest correct one and save it
(the saved choice is read and applied by the runtime: dlbox.runtime.fastpath)."""

from __future__ import annotations

import datetime
from typing import Any

from dlbox.bench.runner import Bench, BenchConfig, attach_baseline, suite_paths
from dlbox.runtime.fastpath import device_key, save


def _choice(rows: list[dict[str, Any]], mode: str) -> dict[str, Any] | None:
    ok = [r for r in rows if r["mode"] == mode and r["status"] == "ok"]
    if not ok:
        return None
    best = max(ok, key=lambda r: r["images_per_sec"])
    keys = (
        "backend",
        "precision",
        "channels_last",
        "compile",
        "path",
        "images_per_sec",
        "step_ms",
        "vs_baseline",
    )
    return {**{k: best[k] for k in keys}, "parity": best.get("parity")}


def auto(cfg: BenchConfig) -> dict[str, Any]:
    """Check and time every suite path, choose, save; returns the saved entry, its file and the rows."""
    with Bench(cfg) as b:
        rows = []
        passed_infer = set()
        plan = suite_paths(b.device, b.cpu)
        for spec, reason in plan:  # the correctness check is an inference, so every path runs one
            row = (
                b.skipped(spec, "infer", reason)
                if reason
                else b.run(spec, "infer", check=True, reject=True, timed="infer" in cfg.modes)
            )
            if "infer" in cfg.modes:
                rows.append(row)
            if row["status"] == "ok" and spec.trains:
                passed_infer.add(spec)
        if "train" in cfg.modes:
            # A training path is trusted when the same settings passed the inference check.
            for spec, _ in plan:
                if spec in passed_infer:
                    rows.append(b.run(spec, "train"))
        rows = attach_baseline(rows)
        env = b.environment()
        entry = {
            "model": b.cfg.model, "device": str(b.device), "device_key": device_key(b.device),
            "device_name": b.device_name, "batch_size": cfg.batch_size, "image_size": b.image_size,
            "infer": _choice(rows, "infer") if "infer" in cfg.modes else None,
            "train": _choice(rows, "train") if "train" in cfg.modes else None,
            "threads": b.threads, "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "versions": env["versions"],
        }  # fmt: skip
    saved = save(entry)
    return {"choice": entry, "saved_to": str(saved), "rows": rows, "environment": env}
