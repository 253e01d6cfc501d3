"""`dlbox bench`: throughput of a model on this machine, the suite of paths, the published comparison and the
automatic choice of the fastest correct path."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from dlbox.cliutil import add_config_options, add_json, command, config_from_args, emit
from dlbox.errors import UserError


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
    p = Path(path)
    if p.is_dir():
        raise UserError(f"--save {path} is a directory", "give a file name, e.g. --save bench.csv")
    if p.suffix.lower() != ".csv":
        raise UserError(f"--save {path}: the table is saved as CSV", "give a file name ending in .csv")


def cmd_bench(args: argparse.Namespace) -> int:
    from dlbox.bench import fastpath, report, runner
    from dlbox.engine.progress import log

    cfg = config_from_args(runner.BenchConfig, args)
    _check_save(args.save)
    if args.auto and (args.suite or args.compare_published):
        raise UserError("--auto is a run of its own", "run --suite or --compare-published separately")
    if not (args.suite or args.auto):
        cfg.spec  # noqa: B018  # impossible combinations fail here, before any model is built
    with stdout_to_stderr(args.json):
        if args.auto:
            result = fastpath.auto(cfg)
            rows, env = result["rows"], result["environment"]
        elif args.suite:
            rows, env = runner.suite(cfg)
        else:
            rows, env = runner.run(cfg)
    if args.json:
        log(report.header(env))
        if args.auto:
            log(_auto_summary(result))
    if args.save:
        report.save_csv(rows, args.save)
        log(f"saved {len(rows)} rows to {args.save}")
    if args.compare_published:
        if cfg.model != "resnet50":
            log(f"note: the published figures are for resnet50, these are for {cfg.model}")
        emit(args, report.published_rows(rows),
             lambda _: report.render(rows, env) + "\n\n" + report.published_table(rows))  # fmt: skip
    elif args.auto:
        out = {k: result[k] for k in ("choice", "saved_to", "rows")}
        emit(args, out, lambda r: report.render(rows, env) + "\n\n" + _auto_summary(r))
    else:
        emit(args, rows, lambda r: report.render(r, env))
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


def register(sub) -> None:
    from dlbox.bench.config import BenchConfig

    p = command(
        sub, "bench", "throughput benchmark: images/sec, step time and fraction of peak FLOP/s, per path",
        "dlbox bench --model resnet50 --batch-size 32 --suite --save bench.csv",
        description="Time training and inference of a model on synthetic data on this machine: warm-up, then\n"
                    "timed steps (median and p10/p90 of the step time), images/sec, achieved FLOP/s\n"
                    "(torch.utils.flop_counter; training = 3x forward) and the fraction of the device's peak.\n"
                    "--suite runs the grid from fp32 eager to the fastest paths here; --auto picks the\n"
                    "fastest path whose results match fp32 eager and saves it for the tasks' --fast.\n"
                    "Random weights unless --weights gives trained ones, resolved as `classify predict` does\n"
                    "(e.g. --weights hub:slim-inception_v3 or path/to/model.ckpt: the network and its input\n"
                    "size come from the checkpoint).",
    )  # fmt: skip
    add_json(p)
    runs = p.add_argument_group("what to run")
    runs.add_argument(
        "--suite", action="store_true", help="every path, from fp32 NCHW eager to the fastest here"
    )
    runs.add_argument(
        "--auto",
        action="store_true",
        help="find the fastest path that agrees with fp32 eager; save it to $DLBOX_HOME/fastpath.json",
    )
    runs.add_argument(
        "--compare-published",
        action="store_true",
        help="show the old platform's published ResNet-50 table beside these figures",
    )
    runs.add_argument("--save", metavar="FILE.csv", help="also write the rows as CSV")
    add_config_options(p, BenchConfig, title="benchmark")
    p.set_defaults(func=cmd_bench, command_path="dlbox bench")
