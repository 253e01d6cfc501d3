"""The platform integrity test (`dlbox env test`): LeNet-5 on handwritten digits in every framework here.

The old platform's "MNIST on Caffe/TensorFlow/PyTorch/Keras" smoke test, made offline: scikit-learn's digits
by default, real MNIST IDX files with --data. PyTorch runs through the dlbox engine (so --distributed N
also checks DDP); Keras 3 and TensorFlow run in a child process each, because a Keras backend is fixed
once keras is imported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F

from dlbox.engine import distributed
from dlbox.engine.schedule import warmup_cosine
from dlbox.engine.task import Task
from dlbox.engine.trainer import fit
from dlbox.env.config import IntegrityConfig  # noqa: F401  (re-exported)
from dlbox.env.lenet import LeNet5

FRAMEWORKS = ("torch", "keras", "tensorflow", "caffe")
INSTALL_HINT = {"keras": "pip install keras", "tensorflow": "pip install tensorflow"}
# The Keras/TensorFlow child: importing TensorFlow alone takes several seconds on 2 cores; a hung child fails its row.
CHILD_TIMEOUT_S = 600
_TF_LOG = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl|To enable the following instructions)")




def load_data(data: str | None):
    from dlbox.data.digits import mnist_idx, sklearn_digits

    return mnist_idx(data) if data else sklearn_digits()


class LeNetTask(Task):
    """LeNet-5 classification for the engine."""

    name = "env-test"
    best_metric = "val/accuracy"

    def __init__(self, cfg: IntegrityConfig):
        self.cfg = cfg

    def build_model(self):
        return LeNet5()

    def datasets(self):
        return load_data(self.cfg.data)

    def configure_optimizers(self, model, steps_per_epoch):
        opt = torch.optim.Adam(model.parameters(), lr=self.cfg.lr)
        return opt, warmup_cosine(opt, 0, steps_per_epoch * self.cfg.epochs)  # cosine decay, no warm-up

    def _sums(self, logits, y, loss):
        n = y.shape[0]
        return {"count": n, "loss": loss.detach() * n, "accuracy": (logits.argmax(1) == y).sum()}

    def train_step(self, model, batch):
        x, y = batch
        logits = model(x)  # (N, 10)
        loss = F.cross_entropy(logits, y)
        return loss, self._sums(logits, y, loss)

    def eval_step(self, model, batch):
        x, y = batch
        logits = model(x)
        return self._sums(logits, y, F.cross_entropy(logits, y))


def torch_worker(cfg: IntegrityConfig) -> dict[str, Any] | None:
    """One process of the PyTorch run (module level: the launcher spawns it)."""
    result = fit(LeNetTask(cfg), cfg)
    if result is None:
        return None
    return {
        "framework": "torch",
        "status": "ok",
        "accuracy": result.last.get("val/accuracy"),
        "seconds": round(result.seconds, 3),
        "images_per_sec": round(result.images_per_sec, 1),
        "processes": result.world_size,
        "run_dir": result.run_dir,
        "identical_weights": result.identical_weights,
        "weights_digest": result.weights_digest,
    }


def run_torch(cfg: IntegrityConfig) -> dict[str, Any] | None:
    return distributed.run(cfg, torch_worker, cfg)


def run_keras(cfg: IntegrityConfig, backend: str) -> dict[str, Any]:
    """Keras 3 on ``backend`` ("torch" or "tensorflow") in a child process; returns its result row."""
    framework = "keras" if backend == "torch" else "tensorflow"
    needed = "keras" if backend == "torch" else "tensorflow"
    if importlib.util.find_spec(needed) is None:
        return skipped(framework, f"{needed} is not installed", INSTALL_HINT[needed])
    # KERAS_BACKEND is set explicitly: with TensorFlow installed too, the Keras row still runs on torch.
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    payload = json.dumps({"data": cfg.data, "epochs": cfg.epochs, "batch_size": cfg.batch_size,
                          "lr": cfg.lr, "seed": cfg.seed, "threads": cfg.threads})  # fmt: skip
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "dlbox.env.keras_run", payload], env=env, capture_output=True, text=True,
            timeout=CHILD_TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"framework": framework, "status": "failed", "reason": f"no result within {CHILD_TIMEOUT_S} s",
                "accuracy": None, "seconds": None, "images_per_sec": None, "processes": 1}  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        # The last line that is not one of TensorFlow's C++ log lines (absl prints some before any setting applies)
        errs = [ln for ln in proc.stderr.strip().splitlines() if not _TF_LOG.match(ln)]
        tail = (errs or ["no output"])[-1]
        return {"framework": framework, "status": "failed", "reason": tail[:300], "accuracy": None,
                "seconds": None, "images_per_sec": None, "processes": 1}  # fmt: skip
    return {"framework": framework, "status": "ok", **json.loads(lines[-1]), "processes": 1}


def skipped(framework: str, reason: str, hint: str) -> dict[str, Any]:
    return {"framework": framework, "status": "skipped", "reason": reason, "hint": hint,
            "accuracy": None, "seconds": None, "images_per_sec": None, "processes": None}  # fmt: skip


def run_integrity(cfg: IntegrityConfig) -> dict[str, Any] | None:
    """Run the chosen frameworks; returns ``{"results": [...], "identical_weights": bool | None}``.

    Returns None in a process that is not global rank 0 (started by torchrun or as node-rank > 0).
    """
    chosen = FRAMEWORKS if cfg.framework == "all" else (cfg.framework,)
    results: list[dict[str, Any]] = []
    identical = None
    if "torch" in chosen:
        row = run_torch(cfg)
        if row is None:
            return None
        identical = row.pop("identical_weights")
        results.append(row)
    # The other frameworks run once, in the process that holds rank 0.
    if "keras" in chosen:
        results.append(run_keras(cfg, "torch"))
    if "tensorflow" in chosen:
        results.append(run_keras(cfg, "tensorflow"))
    if "caffe" in chosen:  # dlbox's Caffe importer and solver, not BVLC Caffe
        from dlbox.tasks.caffe.integrity import run_caffe

        results.append(run_caffe(cfg))
    return {"results": results, "identical_weights": identical}


def render(report: dict[str, Any]) -> str:
    rows = [("framework", "status", "accuracy", "seconds", "images/sec", "processes")]
    for r in report["results"]:
        acc = f"{100 * r['accuracy']:.2f}%" if r.get("accuracy") is not None else "-"
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('reason', '')}"
        if r.get("hint"):
            status += f" ({r['hint']})"
        if r.get("note"):
            status += f" ({r['note']})"
        rows.append((r["framework"], status, acc, _fmt(r.get("seconds")), _fmt(r.get("images_per_sec")),
                     _fmt(r.get("processes"))))  # fmt: skip
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    if report.get("identical_weights") is not None:
        lines.append(f"all ranks ended with identical weights: {'yes' if report['identical_weights'] else 'NO'}")
    return "\n".join(lines)


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def config_dict(cfg: IntegrityConfig) -> dict[str, Any]:
    return asdict(cfg)
