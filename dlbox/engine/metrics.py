"""Run metrics: one JSON line per epoch/eval in metrics.jsonl, handed on to the trackers (TensorBoard)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from dlbox.base.fileio import atomic_write_text
from dlbox.engine.tracking import TensorBoardTracker, Trackers, summary_writer

__all__ = ["MetricsLogger", "read_jsonl", "record_at", "summary_writer"]


class MetricsLogger:
    """Writes metrics.jsonl in the run directory and hands each record to the run's trackers (TensorBoard unless
    told otherwise, see dlbox.engine.tracking). Only rank 0 creates one."""

    def __init__(self, run_dir: str | Path, resume_step: int | None = None, trackers=None):
        import threading

        self._lock = threading.Lock()
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        if resume_step is not None:
            self._drop_after(resume_step)
        if trackers is None:  # started here; the engine passes its own, started with the run's options
            trackers = Trackers([TensorBoardTracker()])
            trackers.start(self.run_dir, None, resume_step, {})
        self.trackers = trackers

    def _drop_after(self, step: int) -> None:
        if not self.path.exists():
            return
        kept = [ln for ln in self.path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
        atomic_write_text(self.path, "".join(ln + "\n" for ln in kept))

    def log(self, record: dict[str, Any]) -> None:
        """Append one record; its finite numbers also go to the trackers at ``record['step']``. Thread-safe: the
        system monitor logs from its own thread."""
        record = {"time": round(time.time(), 3), **record}
        with self._lock:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
            self.trackers.log_metrics(record)

    def close(self, status: str = "finished") -> None:
        self.trackers.finish(status)


def read_jsonl(path: str | Path, kind: str | None = None) -> list[dict[str, Any]]:
    """One kind of record: None, the epoch records (the default); "system", the monitor's samples."""
    records = [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]
    return [r for r in records if r.get("kind") == kind]


def record_at(run_dir: str | Path, epoch: int | None) -> dict[str, Any]:
    """The epoch record of ``epoch`` in a run's metrics.jsonl (the last one when that epoch has none)."""
    records = read_jsonl(Path(run_dir) / "metrics.jsonl")
    return next((r for r in records if r.get("epoch") == epoch), records[-1] if records else {})
