"""Warm-up, then timed steps; the median and spread of the step time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlbox.base.progress import bar


class TooSlow(Exception):
    """A step after the first took longer than the caller's limit: not worth timing the rest."""

    def __init__(self, seconds: float):
        super().__init__(f"a step took {seconds:.1f} s")
        self.seconds = seconds


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
            desc: str = "steps", limit_s: float | None = None) -> Timing:  # fmt: skip
    """Time ``steps`` calls of ``step`` one by one after ``warmup`` untimed ones (at least one: the first call
    compiles and allocates). ``sync`` waits for queued GPU work so each step is timed to its end.
    ``limit_s``: raise TooSlow as soon as a step after the first takes longer (a path with no fast kernels on
    this machine, e.g. CPU fp16 autocast, can take minutes a step; the suite should not wait for 10 of them)."""
    sync = sync or (lambda: None)

    def check(seconds: float) -> None:
        if limit_s is not None and seconds > limit_s:
            raise TooSlow(seconds)

    with bar(max(1, warmup) + steps, desc=desc, unit="step") as progress:
        t = time.perf_counter()
        step()
        sync()
        first = time.perf_counter() - t
        progress.update(1)
        for _ in range(max(0, warmup - 1)):
            t = time.perf_counter()
            step()
            sync()
            check(time.perf_counter() - t)
            progress.update(1)
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - t)
            check(times[-1])
            progress.update(1)
    return Timing(first_s=first, steps_s=times)
