"""`dlbox bench`: throughput of a model on this machine, the suite of paths, the published comparison and the
automatic choice of the fastest correct path."""

from __future__ import annotations

import contextlib
import os
import sys
import types
from dataclasses import dataclass

from dlbox.base.errors import UserError
from dlbox.base.outputs import check_output
from dlbox.bench.config import BenchConfig
from dlbox.cliutil import Command, emit, register_commands
from dlbox.config import opt, section


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool):
    """While measuring, anything a library prints at the C level (exporters, compilers) goes to stderr, so
    --json leaves exactly one document on stdout."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _check_save(path: str | None) -> None:
    if path is None:
        return
    p = check_output(path, "file", "--save")
    if p.suffix.lower() != ".csv":
        raise UserError(f"--save {path}: the table is saved as CSV", "give a file name ending in .csv")


@dataclass(kw_only=True)
class BenchArgs:
    suite: bool = opt(False, "every path, from fp32 NCHW eager to the fastest here")
    auto: bool = opt(False, "find the fastest path that agrees with fp32 eager; save it to $DLBOX_HOME/fastpath.json")
    compare_published: bool = opt(False, "show the old platform's published ResNet-50 table beside these figures")
    save: str | None = opt(None, "also write the rows as CSV", metavar="FILE.csv", output="file")
    options: BenchConfig = section("benchmark")


def run_bench(a: BenchArgs, as_json: bool) -> int:
    from dlbox.base.progress import log
    from dlbox.bench import auto, report, runner

    cfg, out = a.options, types.SimpleNamespace(json=as_json)
    _check_save(a.save)
    if a.auto and (a.suite or a.compare_published):
        raise UserError("--auto is a run of its own", "run --suite or --compare-published separately")
    if not (a.suite or a.auto):
        cfg.spec  # noqa: B018  # impossible combinations fail here, before any model is built
    with stdout_to_stderr(as_json):
        if a.auto:
            result = auto.auto(cfg)
            rows, env = result["rows"], result["environment"]
        elif a.suite:
            rows, env = runner.suite(cfg)
        else:
            rows, env = runner.run(cfg)
    if as_json:
        log(report.header(env))
        if a.auto:
            log(_auto_summary(result))
    if a.save:
        report.save_csv(rows, a.save)
        log(f"saved {len(rows)} rows to {a.save}")
    if a.compare_published:
        if cfg.model != "resnet50":
            log(f"note: the published figures are for resnet50, these are for {cfg.model}")
        emit(out, report.published_rows(rows),
             lambda _: report.render(rows, env) + "\n\n" + report.published_table(rows))  # fmt: skip
    elif a.auto:
        chosen = {k: result[k] for k in ("choice", "saved_to", "rows")}
        emit(out, chosen, lambda r: report.render(rows, env) + "\n\n" + _auto_summary(r))
    else:
        emit(out, rows, lambda r: report.render(r, env))
    return 0


def _auto_summary(result: dict) -> str:
    lines = []
    for mode in ("infer", "train"):
        c = result["choice"].get(mode)
        if c is None:
            continue
        vs = f", {c['vs_baseline']:.2f}x fp32 eager" if c.get("vs_baseline") else ""
        lines.append(f"fastest correct path for {'inference' if mode == 'infer' else 'training'}: {c['path']} "
                     f"({c['images_per_sec']} img/s{vs})")  # fmt: skip
    if not lines:
        lines.append("no path passed the checks")
    lines.append(f"saved to {result['saved_to']} (the tasks use it with --fast)")
    return "\n".join(lines)


BENCH = Command(
    "bench", "throughput benchmark: images/sec, step time and fraction of peak FLOP/s, per path",
    "dlbox bench --model resnet50 --batch-size 32 --suite --save bench.csv", BenchArgs, run_bench, streams=True,
    description="Time training and inference of a model on synthetic data on this machine: warm-up, then\n"
                "timed steps (median and p10/p90 of the step time), images/sec, achieved FLOP/s\n"
                "(torch.utils.flop_counter; training = 3x forward) and the fraction of the device's peak.\n"
                "--suite runs the grid from fp32 eager to the fastest paths here; --auto picks the\n"
                "fastest path whose results match fp32 eager and saves it for the tasks' --fast.\n"
                "Random weights unless --weights gives trained ones, resolved as `classify predict` does\n"
                "(e.g. --weights hub:slim-inception_v3 or path/to/model.ckpt: the network and its input\n"
                "size come from the checkpoint).",
)  # fmt: skip


def register(sub) -> None:
    register_commands(sub, [BENCH])
