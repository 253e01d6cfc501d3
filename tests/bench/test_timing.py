"""Warm-up and timed steps; a path far slower than the baseline is given up after one step, not ten."""

import time

import pytest

from dlbox.bench.timing import TooSlow, measure


def test_measure_times_each_step_after_the_warmup():
    calls = []
    timing = measure(lambda: calls.append(1), steps=4, warmup=2)
    assert len(calls) == 6 and len(timing.steps_s) == 4


def test_a_step_over_the_limit_stops_the_measurement_at_once():
    calls = []

    def slow_step():
        calls.append(1)
        time.sleep(0.05)

    with pytest.raises(TooSlow):
        measure(slow_step, steps=10, warmup=3, limit_s=0.01)
    assert len(calls) == 2  # the first call (compilation, allowed to be slow) and one more


def test_the_first_call_may_be_slow_without_tripping_the_limit():
    calls = []

    def step():
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.05)

    timing = measure(step, steps=3, warmup=1, limit_s=0.04)
    assert len(timing.steps_s) == 3
