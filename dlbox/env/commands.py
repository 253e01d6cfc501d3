"""`dlbox env` and `dlbox env test`."""

from __future__ import annotations

import argparse

from dlbox.cliutil import add_config_options, add_json, command, config_from_args, emit, number


def cmd_env(args: argparse.Namespace) -> int:
    from dlbox.env import doctor

    emit(args, doctor.collect(runs_dir=args.runs_dir or "runs"), doctor.render)
    return 0


def cmd_env_test(args: argparse.Namespace) -> int:
    from dlbox.engine.distributed import launched_by_torchrun
    from dlbox.env.integrity import IntegrityConfig, render, run_integrity

    if args.distributed is not None:
        args.nproc_per_node = args.distributed
    cfg = config_from_args(IntegrityConfig, args)
    report = run_integrity(cfg)
    if report is not None:
        emit(args, report, render)
    elif not launched_by_torchrun():  # the launcher of a node without rank 0: node 0 reports the results
        note = f"node {cfg.node_rank} of {cfg.nnodes} finished; the node with rank 0 reports the results"
        emit(args, {"node_rank": cfg.node_rank, "results": None, "note": note}, lambda r: r["note"])
    return 0


def cmd_env_gpu(args: argparse.Namespace) -> int:
    from dlbox.env import nvml
    from dlbox.errors import UserError

    if args.interval <= 0:
        raise UserError(f"--interval must be positive, got {args.interval}", "e.g. --interval 1")
    if args.count is not None and args.count < 1:
        raise UserError(f"--count must be at least 1, got {args.count}")
    count = args.count if args.watch else (args.count or 1)
    return nvml.watch(args.interval, count=count, as_json=args.json)


def register(sub) -> None:
    from dlbox.env.config import IntegrityConfig

    env = command(sub, "env", "environment doctor: software, CPU, GPU, CUDA compatibility, with a verdict",
                  "dlbox env --json")  # fmt: skip
    add_json(env)
    env.add_argument("--runs-dir", default=None, help="where runs go, for the free-disk check (default: runs)")
    env.set_defaults(func=cmd_env)
    env_sub = env.add_subparsers(dest="env_command", metavar="SUBCOMMAND", parser_class=type(env))
    test = command(
        env_sub, "test", "integrity test: LeNet-5 on handwritten digits in each framework (PyTorch, Keras, TF)",
        "dlbox env test --framework torch --distributed 2",
    )  # fmt: skip
    add_json(test)
    test.add_argument("--config", help="a YAML file of options (typed options win)")
    test.add_argument("--distributed", type=number(int, ge=1), metavar="N", help="run PyTorch as N DDP processes (= --nproc-per-node N)")
    add_config_options(test, IntegrityConfig, title="integrity test")
    test.set_defaults(func=cmd_env_test, command_path="dlbox env test")
    gpu = command(env_sub, "gpu", "NVIDIA GPUs now (or live with --watch): power, temperature, use, memory, clocks",
                  "dlbox env gpu --watch --interval 2")  # fmt: skip
    gpu.add_argument("--watch", action="store_true", help="a new line per GPU every --interval seconds, until Ctrl-C")
    gpu.add_argument("--interval", type=number(float, gt=0), default=1.0, metavar="S", help="seconds between samples (default: 1)")
    gpu.add_argument("--count", type=number(int, ge=1), default=None, metavar="N", help="stop after N samples")
    gpu.add_argument("--json", action="store_true", help="one JSON document per sample on stdout")
    gpu.set_defaults(func=cmd_env_gpu, command_path="dlbox env gpu")
