"""Run metrics: one JSON line per epoch/eval in metrics.jsonl, and TensorBoard scalars."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from dlbox.engine.fileio import atomic_write_text


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


class MetricsLogger:
    """Writes metrics.jsonl and TensorBoard events in the run directory. Only rank 0 creates one."""

    def __init__(self, run_dir: str | Path, resume_step: int | None = None):
        import threading

        self._lock = threading.Lock()
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        if resume_step is not None:
            self._drop_after(resume_step)
        # purge_step hides events an interrupted run wrote after the checkpoint it resumes from.
        self.tb = summary_writer(self.run_dir / "tensorboard", purge_step=resume_step)

    def _drop_after(self, step: int) -> None:
        if not self.path.exists():
            return
        kept = [ln for ln in self.path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
        atomic_write_text(self.path, "".join(ln + "\n" for ln in kept))

    def log(self, record: dict[str, Any]) -> None:
        """Append one record; numeric values also go to TensorBoard at ``record['step']``. Thread-safe: the
        system monitor logs from its own thread."""
        record = {"time": round(time.time(), 3), **record}
        with self._lock:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
            step = int(record.get("step", 0))
            for key, value in record.items():
                if key in ("time", "step") or not isinstance(value, (int, float)) or isinstance(value, bool):
                    continue
                if math.isfinite(value):
                    self.tb.add_scalar(key, value, step)
            self.tb.flush()

    def scalar(self, key: str, value: float, step: int) -> None:
        self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        self.tb.close()


def read_jsonl(path: str | Path, kind: str | None = None) -> list[dict[str, Any]]:
    """One kind of record: None, the epoch records (the default); "system", the monitor's samples."""
    records = [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]
    return [r for r in records if r.get("kind") == kind]


def record_at(run_dir: str | Path, epoch: int | None) -> dict[str, Any]:
    """The epoch record of ``epoch`` in a run's metrics.jsonl (the last one when that epoch has none)."""
    records = read_jsonl(Path(run_dir) / "metrics.jsonl")
    return next((r for r in records if r.get("epoch") == epoch), records[-1] if records else {})
