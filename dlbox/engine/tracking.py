"""Experiment trackers: where a run's parameters, metrics and files go besides metrics.jsonl.

The engine keeps metrics.jsonl itself (resume and ``FitResult.best_record`` read it) and hands every record to
the trackers that ``--tracker`` names (default ``tensorboard``; ``none``; several comma-separated, e.g.
``tensorboard,mlflow``). Only rank 0 creates trackers. A tracker implements the five methods of ``Tracker``;
the engine calls them in this order::

    start(run_dir, cfg, resumed)     # once, before the first step (resumed: the step resumed from, or None)
    log_params(params)               # once, the run's flat options {"lr": 0.1, "model": "resnet18", ...}
    log_metrics(record, step)        # per epoch / eval record and per system sample (finite numbers only)
    log_artifact(path)               # files of the finished run (config.yaml, metrics.jsonl)
    finish(status)                   # once: "finished", "interrupted", "diverged" or "failed"

Adding one: a class in a module of the engine layer (or below) named in ``TRACKERS`` as "module:Class", or
``register_tracker(name, factory)`` at import time of a module the command imports before training.
"""

from __future__ import annotations

import importlib
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError


def summary_writer(log_dir: str | Path, purge_step: int | None = None):
    """torch's TensorBoard SummaryWriter without TensorFlow.

    tensorboard imports all of TensorFlow (seconds per process, and its log noise) when TF is installed,
    just to write event files; its own stub does that as well. The ``tensorboard.compat.notf`` marker module
    makes it take the stub."""
    import sys
    import types

    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


STATUSES = ("finished", "interrupted", "diverged", "failed")


class Tracker:
    """No-op base: a tracker overrides what it supports."""

    name = "tracker"

    def start(self, run_dir: Path, cfg: Any, resumed: int | None) -> None:
        pass

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_metrics(self, record: dict[str, float], step: int) -> None:
        pass

    def log_artifact(self, path: Path) -> None:
        pass

    def finish(self, status: str) -> None:
        pass


class TensorBoardTracker(Tracker):
    """Scalars into RUN/tensorboard (what ``dlbox board`` shows)."""

    name = "tensorboard"

    def __init__(self) -> None:
        self.writer = None

    def start(self, run_dir: Path, cfg: Any, resumed: int | None) -> None:
        # purge_step hides events an interrupted run wrote after the checkpoint it resumes from.
        self.writer = summary_writer(Path(run_dir) / "tensorboard", purge_step=resumed)

    def log_metrics(self, record: dict[str, float], step: int) -> None:
        for key, value in record.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def finish(self, status: str) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


# name -> the tracker's class, or "module:Class" imported when a run asks for it
TRACKERS: dict[str, Callable[[], Tracker] | str] = {
    "tensorboard": TensorBoardTracker,
    "mlflow": "dlbox.engine.trackers_mlflow:MlflowTracker",  # issue 24: mlflow imported when a run uses it
}


def register_tracker(name: str, factory: Callable[[], Tracker] | str) -> None:
    TRACKERS[name] = factory


def parse(spec: str) -> list[str]:
    """``--tracker`` as a list of known names ("none" and "" give none); a bad name is a UserError."""
    names = [n.strip() for n in (spec or "").split(",") if n.strip() and n.strip() != "none"]
    for n in names:
        if n not in TRACKERS:
            raise UserError(f"--tracker {n!r} is not a tracker",
                            f"use {', '.join(sorted(TRACKERS))}, none, or several separated by commas")  # fmt: skip
    if len(set(names)) != len(names):
        raise UserError(f"--tracker {spec!r} names a tracker twice", "name each tracker once")
    return names


def build(spec: str) -> list[Tracker]:
    out = []
    for n in parse(spec):
        factory = TRACKERS[n]
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        out.append(factory())
    return out


def flat_params(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested options as one level of "a.b" keys; lists and None as text."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_params(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


def numeric(record: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a metrics record, without its time and step."""
    return {k: float(v) for k, v in record.items()
            if k not in ("time", "step") and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)}  # fmt: skip


class Trackers:
    """The run's trackers as one: calls each in turn; thread-safe (the system monitor logs from its thread)."""

    def __init__(self, trackers: list[Tracker]):
        self.trackers = trackers
        self._lock = threading.Lock()

    def start(self, run_dir: Path, cfg: Any, resumed: int | None, params: dict[str, Any]) -> None:
        for t in self.trackers:
            t.start(run_dir, cfg, resumed)
            t.log_params(params)

    def log_metrics(self, record: dict[str, Any]) -> None:
        values, step = numeric(record), int(record.get("step", 0))
        with self._lock:
            for t in self.trackers:
                t.log_metrics(values, step)

    def log_artifact(self, path: Path) -> None:
        for t in self.trackers:
            t.log_artifact(path)

    def finish(self, status: str) -> None:
        with self._lock:
            trackers, self.trackers = self.trackers, []
        for t in trackers:
            t.finish(status)
