"""Warm-up, then timed steps; the median and spread of the step time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlbox.engine.progress import bar


@dataclass
class Timing:
    first_s: float  # the first call alone: compilation, graph optimisation, weight pre-packing
    steps_s: list[float]

    @property
    def median_s(self) -> float:
        return float(np.median(self.steps_s))

    def percentile_s(self, q: float) -> float:
        return float(np.percentile(self.steps_s, q))


def measure(step: Callable[[], Any], steps: int, warmup: int, sync: Callable[[], None] | None = None,
            desc: str = "steps") -> Timing:  # fmt: skip
    """Time ``steps`` calls of ``step`` one by one after ``warmup`` untimed ones (at least one: the first call
    compiles and allocates). ``sync`` waits for queued GPU work so each step is timed to its end."""
    sync = sync or (lambda: None)
    with bar(max(1, warmup) + steps, desc=desc, unit="step") as progress:
        t = time.perf_counter()
        step()
        sync()
        first = time.perf_counter() - t
        progress.update(1)
        for _ in range(max(0, warmup - 1)):
            step()
            progress.update(1)
        sync()
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - t)
            progress.update(1)
    return Timing(first_s=first, steps_s=times)
