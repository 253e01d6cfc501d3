"""Summarise what benchmarks/gpu_check.sh left in OUT: OUT/gpu_check.json (environment, each step's exit code
and time, the GPU tests, every benchmark row, the training runs' throughput, the JPEG decode figures of
decode_speed.py, issue 15's goals) and
OUT/gpu_table.md (rows for the README's GPU table). Standard library only, so it runs even where a step failed.

    python benchmarks/gpu_summary.py OUT
"""

from __future__ import annotations

import csv
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

GOALS = {"train": 3000.0, "infer": 20000.0}  # ResNet-50 img/s on one H100/H200 (issue 15)


def _json(path: Path):
    try:
        text = path.read_text().strip()
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None


def _steps(out: Path) -> list[dict]:
    rows = []
    if (out / "steps.tsv").exists():
        for line in (out / "steps.tsv").read_text().splitlines():
            name, rc, seconds = (line.split("\t") + ["", ""])[:3]
            rows.append({"step": name, "exit": rc, "seconds": int(seconds or 0)})
    return rows


def _tests(out: Path) -> dict | None:
    path = out / "tests.xml"
    if not path.exists():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return {"error": "tests.xml is not valid XML (pytest cut short?)"}
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    cases = []
    for case in suite.iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                cases.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                              "message": (el.get("message") or "")[:300]})  # fmt: skip
                break
        else:
            cases.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome})
    counts = {k: sum(c["outcome"] == k for c in cases) for k in ("passed", "failed", "error", "skipped")}
    return {**counts, "seconds": float(suite.get("time", 0)), "cases": cases}


def _num(v: str):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v or None


ORDER = ["fp32", "fp32-cl", "tf32-cl", "bf16-cl", "fp16-cl", "bf16-cl-graphs", "suite"]


def _bench(out: Path) -> list[dict]:
    """Every row of every bench-*.csv. The single-path runs get their "vs baseline" from the fp32 run."""
    rows = []
    paths = sorted(out.glob("bench-*.csv"), key=lambda p: (ORDER.index(p.stem[6:]) if p.stem[6:] in ORDER else 99, p.name))
    for path in paths:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                rows.append({"run": path.stem.removeprefix("bench-"), **{k: _num(v) for k, v in r.items()}})
    base = {r["mode"]: r["images_per_sec"] for r in rows if r["run"] == "fp32" and isinstance(r["images_per_sec"], float)}
    for r in rows:
        if r["run"] != "suite" and not isinstance(r.get("vs_baseline"), float) and base.get(r.get("mode")):
            if isinstance(r.get("images_per_sec"), float):
                r["vs_baseline"] = round(r["images_per_sec"] / base[r["mode"]], 2)
    return rows


def _train(out: Path) -> dict:
    runs = {}
    for task in ("classify", "detect"):
        path = out / f"train-{task}.metrics.jsonl"
        if not path.exists():
            continue
        epochs = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
        epochs = [r for r in epochs if "epoch" in r]
        if epochs:
            last = epochs[-1]
            runs[task] = {"epochs": len(epochs), "images_per_sec_last_epoch": last.get("images_per_sec"),
                          "images_per_sec_by_epoch": [r.get("images_per_sec") for r in epochs],
                          "last": {k: v for k, v in last.items() if k.startswith(("val/", "train/"))}}  # fmt: skip
    return runs


def _table(rows: list[dict], env: dict) -> str:
    """README rows: the suite's when it ran, else the single-path runs."""
    suite = [r for r in rows if r["run"] == "suite"]
    chosen = suite or rows
    device = env.get("device") or (chosen[0].get("device_name") if chosen else "?")
    head = (f"GPU: {device} · driver {env.get('driver', '?')} · CUDA {env.get('cuda', '?')} · cuDNN "
            f"{env.get('cudnn', '?')} · torch {env.get('torch', '?')}\n\n"
            "| model | batch | precision / backend | train img/s | infer img/s | step ms (train / infer) | "
            "vs baseline (train / infer) | peak fraction (train / infer) |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    by_path: dict[tuple, dict] = {}
    for r in chosen:
        by_path.setdefault((r.get("model"), r.get("batch_size"), r.get("path"), r["run"]), {})[r.get("mode")] = r
    lines = [head]

    def cell(r, key, fmt):
        if r is None:
            return "-"
        if r.get("status") != "ok":
            return str(r.get("status"))
        v = r.get(key)
        return fmt.format(v) if isinstance(v, float) else "-"

    for (model, batch, path, _), modes in by_path.items():
        t, i = modes.get("train"), modes.get("infer")
        lines.append(
            f"| {model} | {int(batch) if isinstance(batch, float) else batch} | {path} "
            f"| {cell(t, 'images_per_sec', '{:,.0f}')} | {cell(i, 'images_per_sec', '{:,.0f}')} "
            f"| {cell(t, 'step_ms', '{:.1f}')} / {cell(i, 'step_ms', '{:.1f}')} "
            f"| {cell(t, 'vs_baseline', '{:.2f}x')} / {cell(i, 'vs_baseline', '{:.2f}x')} "
            f"| {cell(t, 'peak_fraction', '{:.1%}')} / {cell(i, 'peak_fraction', '{:.1%}')} |"
        )
    return "\n".join(lines) + "\n"


def main(out: Path) -> dict:
    torch_cuda = _json(out / "torch-cuda.json") or {}
    smi = []
    if (out / "nvidia-smi.csv").exists():
        with open(out / "nvidia-smi.csv", newline="") as f:
            smi = [{k.strip(): v.strip() for k, v in r.items()} for r in csv.DictReader(f, skipinitialspace=True)]
    env = {
        "device": smi[0].get("name") if smi else (torch_cuda.get("devices") or [None])[0],
        "driver": smi[0].get("driver_version") if smi else None,
        "gpus": smi, "cuda": torch_cuda.get("cuda"), "cudnn": torch_cuda.get("cudnn"),
        "torch": torch_cuda.get("torch"),
        "tf32": {"cudnn": torch_cuda.get("cudnn_allow_tf32"), "matmul": torch_cuda.get("matmul_allow_tf32")},
    }  # fmt: skip
    rows = _bench(out)
    best = {}
    for mode in ("train", "infer"):
        ok = [r for r in rows if r.get("mode") == mode and r.get("status") == "ok"
              and isinstance(r.get("images_per_sec"), float)]  # fmt: skip
        if ok:
            top = max(ok, key=lambda r: r["images_per_sec"])
            best[mode] = {"path": top["path"], "run": top["run"], "images_per_sec": top["images_per_sec"],
                          "goal": GOALS[mode], "met": top["images_per_sec"] >= GOALS[mode]}  # fmt: skip
    summary = {"environment": env, "steps": _steps(out), "tests": _tests(out), "best": best,
               "training": _train(out), "decode": _json(out / "decode-speed.json"), "bench_rows": rows}  # fmt: skip
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "gpu_table.md").write_text(_table(rows, env) if rows else "no benchmark rows\n")
    return summary


if __name__ == "__main__":
    s = main(Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/gpu"))
    t = s["tests"] or {}
    print(f"tests: {t.get('passed', 0)} passed, {t.get('failed', 0)} failed, {t.get('error', 0)} errors, "
          f"{t.get('skipped', 0)} skipped")  # fmt: skip
    for mode, b in s["best"].items():
        print(f"best {mode}: {b['path']} ({b['run']}) {b['images_per_sec']:,.0f} img/s "
              f"(goal {b['goal']:,.0f}: {'met' if b['met'] else 'not met'})")  # fmt: skip
    for task, r in s["training"].items():
        print(f"train {task}: {r['images_per_sec_last_epoch']} img/s in the last epoch")
    if s["decode"]:
        d = s["decode"]
        print(f"JPEG decode at {d['img_size']} px: best CPU loader {d['best_cpu_loader']:,.0f} img/s, "
              f"{d['device']} decode {d['best_device_decode']:,.0f} img/s ({d['speedup']:.2f}x)")
