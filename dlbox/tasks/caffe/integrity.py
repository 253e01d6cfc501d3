"""The Caffe row of `dlbox env test`: the old platform's LeNet solver (examples/mnist, shipped with dlbox)
trained through dlbox's Caffe importer and solver on PyTorch. BVLC Caffe is not used, and the row says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from dlbox.base.errors import UserError

NOTE = "ran through dlbox's Caffe importer and solver on PyTorch, not BVLC Caffe"


def _row(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "framework": "caffe", "status": "ok", "accuracy": summary["test"].get("accuracy"),
        "seconds": summary["seconds"], "images_per_sec": summary["images_per_sec"], "processes": 1, "note": NOTE,
        "solver": summary["solver"], "iterations": summary["iterations"], "run_dir": summary["run_dir"],
        "caffemodel": summary["caffemodel"],
    }  # fmt: skip


def run_caffe(cfg) -> dict[str, Any]:
    """``cfg``: the integrity test's IntegrityConfig (data, seed, device, threads, runs dir, run name)."""
    from dlbox.engine.distributed import launched_by_torchrun
    from dlbox.tasks.caffe.config import CaffeTrainConfig
    from dlbox.tasks.caffe.train import LENET_SOLVER, train_worker

    options = {"solver": str(LENET_SOLVER), "data": cfg.data, "seed": cfg.seed, "device": cfg.device,
               "threads": cfg.threads, "deterministic": cfg.deterministic, "runs_dir": cfg.runs_dir, "name": cfg.name}  # fmt: skip
    try:
        if not launched_by_torchrun():
            return _row(train_worker(CaffeTrainConfig(**options)))
        # Under torchrun this process belongs to a process group; one solver runs in a child of its own.
        argv = [sys.executable, "-m", "dlbox", "caffe", "train", "--json"]
        for key, value in options.items():
            if value is not None:
                argv += [f"--{key.replace('_', '-')}", str(value)] if not isinstance(value, bool) else ([f"--{key}"] if value else [])
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                                                                "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK")}  # fmt: skip
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError((proc.stderr.strip().splitlines() or ["no output"])[-1])
        return _row(json.loads(proc.stdout))
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 (the integrity test reports a broken framework as a failed row)
        return {"framework": "caffe", "status": "failed", "reason": str(e)[:300], "accuracy": None, "seconds": None,
                "images_per_sec": None, "processes": 1, "note": NOTE}  # fmt: skip
