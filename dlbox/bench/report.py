"""The benchmark's output: the header, a Markdown table in the old platform's format, CSV, and the old
platform's published ResNet-50 table beside this machine's figures."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from dlbox.base.fileio import atomic_write_text
from dlbox.runtime.parity import describe

# tf_cnn_benchmarks, ResNet-50, synthetic data, as the old platform published them (images/sec).
PUBLISHED = [
    {"device": "NVIDIA P100", "batch_size": 64, "train": 199.0, "infer": 632.0},
    {"device": "2x NVIDIA P100", "batch_size": 64, "train": 382.0, "infer": 1103.0},
    {"device": "8-core CPU, TensorFlow without MKL", "batch_size": 32, "train": 1.9, "infer": 8.4},
    {"device": "16-core Broadwell, TensorFlow with MKL", "batch_size": 32, "train": 12.8, "infer": 39.2},
]

CSV_COLUMNS = [
    "model", "mode", "batch_size", "image_size", "precision", "backend", "channels_last", "compile", "path",
    "status", "reason", "images_per_sec", "step_ms", "step_ms_p10", "step_ms_p90", "steps", "warmup",
    "setup_s", "first_step_s", "gflop_per_image", "achieved_tflops", "peak_tflops", "peak_fraction",
    "vs_baseline",
    "parity_ok", "top1_same", "max_logit_rel_diff", "parity_tolerance", "peak_basis", "device", "device_name",
    "threads", "interop",
]  # fmt: skip


def header(env: dict[str, Any]) -> str:
    v = env["versions"]
    soft = " · ".join(f"{k} {v[k]}" for k in ("torch", "torchvision", "onnxruntime", "openvino") if v.get(k))
    missing = [k for k in ("onnxruntime", "openvino") if not v.get(k)]
    clock = f"{env['clock_ghz']} GHz ({env['clock_source']})" if env.get("clock_ghz") else "clock unknown"
    lines = [
        f"dlbox bench · {env['date']}",
        f"device: {env['device']} · {env['device_name']}",
        f"CPU: {env['cpu']} · {env['isa']} · {env['physical_cores']} physical core(s) · {clock}",
        f"threads: intra-op {env['threads']} (default: physical cores), inter-op {env['interop']}",
        f"software: python {v['python']} · {soft}"
        + (f" · not installed: {', '.join(missing)}" if missing else ""),
        f"model: {env['model']} at {env['image_size']}x{env['image_size']}, batch {env['batch_size']}, "
        "synthetic "
        f"data on the device; {env['gflop_per_image']} GFLOP per image forward (torch.utils.flop_counter), "
        f"training step counted as {env['train_factor']}x forward",
    ]  # fmt: skip
    return "\n".join(lines)


def _num(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _pair(train: Any, infer: Any, fmt) -> str:
    return f"{fmt(train)} / {fmt(infer)}"


def group(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (model, batch, path) with its train and infer rows, in first-seen order."""
    out: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        g = out.setdefault(
            (r["model"], r["batch_size"], r["path"]),
            {
                "model": r["model"],
                "batch_size": r["batch_size"],
                "path": r["path"],
                "train": None,
                "infer": None,
            },
        )
        g[r["mode"]] = r
    return list(out.values())


def table(rows: list[dict[str, Any]]) -> str:
    """The old platform's format: model, batch, precision/backend, train img/s, infer img/s, step ms,
    vs baseline, peak fraction (train / infer where there are both)."""
    head = ["model", "batch", "precision / backend", "train img/s", "infer img/s", "step ms (train / infer)",
            "vs baseline (train / infer)", "peak fraction (train / infer)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for g in group(rows):
        t, i = g["train"], g["infer"]

        def img(r):
            if r is None:
                return "-"
            return _num(r["images_per_sec"]) if r["status"] == "ok" else r["status"]

        def get(r, key):
            return r.get(key) if r is not None and r["status"] == "ok" else None

        cells = [
            g["model"], str(g["batch_size"]), g["path"], img(t), img(i),
            _pair(get(t, "step_ms"), get(i, "step_ms"), _num),
            _pair(get(t, "vs_baseline"), get(i, "vs_baseline"), lambda v: "-" if v is None else f"{v:.2f}x"),
            _pair(get(t, "peak_fraction"), get(i, "peak_fraction"), _pct),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(rows: list[dict[str, Any]]) -> str:
    """Spread, first step, achieved FLOP/s and the peak basis of each measured row; reasons for skips."""
    out, bases = [], {}
    for r in rows:
        name = f"{r['path']} ({r['mode']})"
        if r["status"] != "ok":
            out.append(f"- {name}: {r['status']}: {r['reason']}")
            continue
        peak = f" of {r['peak_tflops']} peak" if r["peak_tflops"] else " (peak unknown)"
        parts = [
            f"median {r['step_ms']} ms/step (p10 {r['step_ms_p10']}, p90 {r['step_ms_p90']}) over {r['steps']} "
            f"steps after {r['warmup']} warm-up",
            f"setup {r['setup_s']} s, first step {r['first_step_s']} s",
            f"{r['achieved_tflops']} TFLOP/s achieved{peak}",
        ]
        if r.get("parity"):
            parts.append(describe(r["parity"]))
        out.append(f"- {name}: " + "; ".join(parts))
        bases.setdefault(r["precision"], r["peak_basis"])
    if any(r["mode"] == "infer" for r in rows) and any(not r["backend"] == "torch" for r in rows):
        out.append("- onnxruntime and openvino run inference only ('-' in the train column)")
    out += [f"- peak {p}: {b}" for p, b in bases.items()]
    if any((r.get("peak_fraction") or 0) > 1 for r in rows):
        out.append("- a peak fraction above 100% means the cores ran faster than the clock the peak assumes (a VM's "
                   "/proc/cpuinfo often shows the base clock; turbo is higher)")  # fmt: skip
    return "\n".join(out)


def render(rows: list[dict[str, Any]], env: dict[str, Any]) -> str:
    return "\n\n".join([header(env), table(rows), notes(rows)])


def published_table(rows: list[dict[str, Any]]) -> str:
    """The old platform's ResNet-50 figures, then this machine's rows in the same columns."""
    head = ["source", "device", "model", "batch", "precision / backend", "train img/s", "infer img/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for p in PUBLISHED:
        lines.append(f"| old platform (tf_cnn_benchmarks) | {p['device']} | resnet50 | {p['batch_size']} | "
                     f"fp32 TensorFlow | {p['train']:.1f} | {p['infer']:.1f} |")  # fmt: skip
    for g in group(rows):
        t, i = g["train"], g["infer"]
        any_row = t or i
        ips = [
            (_num(r["images_per_sec"]) if r["status"] == "ok" else r["status"]) if r else "-" for r in (t, i)
        ]
        lines.append(f"| this machine (dlbox) | {any_row['device_name']} | {g['model']} | {g['batch_size']} | "
                     f"{g['path']} | {ips[0]} | {ips[1]} |")  # fmt: skip
    return "\n".join(lines)


def published_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON of --compare-published: the published rows (source 'published'), then this machine's."""
    out = []
    for p in PUBLISHED:
        for mode in ("train", "infer"):
            out.append({"source": "published", "model": "resnet50", "mode": mode, "batch_size": p["batch_size"],
                        "precision": "fp32", "backend": "tensorflow", "device_name": p["device"],
                        "images_per_sec": p[mode], "step_ms": round(1000 * p["batch_size"] / p[mode], 1),
                        "peak_fraction": None})  # fmt: skip
    return out + [{"source": "this machine", **r} for r in rows]


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        p = r.get("parity") or {}
        flat = {**r, "parity_ok": p.get("ok"), "max_logit_rel_diff": p.get("max_rel_diff"),
                "parity_tolerance": p.get("tolerance"),
                "top1_same": f"{p['top1_same']}/{p['images']}" if "top1_same" in p else None}  # fmt: skip
        w.writerow({k: ("" if flat.get(k) is None else flat.get(k)) for k in CSV_COLUMNS})
    return buf.getvalue()


def save_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    atomic_write_text(path, to_csv(rows))
