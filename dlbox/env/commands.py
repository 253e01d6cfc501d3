"""`dlbox env`, `dlbox env test` and `dlbox env gpu`."""

from __future__ import annotations

import argparse

from dlbox.cliutil import Command, command, lazy, number, register_commands
from dlbox.env import config


def integrity_test(c: config.IntegrityArgs) -> dict | None:
    from dlbox.config import from_dict
    from dlbox.engine.distributed import launched_by_torchrun
    from dlbox.env.integrity import run_integrity

    cfg = c.options  # --distributed N wins over --nproc-per-node
    if c.distributed is not None:
        cfg = from_dict(config.IntegrityConfig, {"nproc_per_node": c.distributed}, base=cfg)
    report = run_integrity(cfg)
    if report is None and not launched_by_torchrun():  # the launcher of a node without rank 0: node 0 reports the results
        note = f"node {cfg.node_rank} of {cfg.nnodes} finished; the node with rank 0 reports the results"
        return {"node_rank": cfg.node_rank, "results": None, "note": note}
    return report


def render_test(r) -> str:
    return r["note"] if r["results"] is None else lazy("dlbox.env.integrity:render")(r)


ENV = Command("env", "environment doctor: software, CPU, GPU, CUDA compatibility, with a verdict", "dlbox env --json",
              config.DoctorArgs, lambda c: lazy("dlbox.env.doctor:collect")(runs_dir=c.runs_dir or "runs"),
              lazy("dlbox.env.doctor:render"))  # fmt: skip
TEST = Command("test", "integrity test: LeNet-5 on handwritten digits in each framework (PyTorch, Keras, TF)",
               "dlbox env test --framework torch --distributed 2", config.IntegrityArgs, integrity_test, render_test)


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
    env = register_commands(sub, [ENV])["env"]
    env_sub = env.add_subparsers(dest="env_command", metavar="SUBCOMMAND", parser_class=type(env))
    register_commands(env_sub, [TEST])
    gpu = command(env_sub, "gpu", "NVIDIA GPUs now (or live with --watch): power, temperature, use, memory, clocks",
                  "dlbox env gpu --watch --interval 2")  # fmt: skip
    gpu.add_argument("--watch", action="store_true", help="a new line per GPU every --interval seconds, until Ctrl-C")
    gpu.add_argument("--interval", type=number(float, gt=0), default=1.0, metavar="S", help="seconds between samples (default: 1)")
    gpu.add_argument("--count", type=number(int, ge=1), default=None, metavar="N", help="stop after N samples")
    gpu.add_argument("--json", action="store_true", help="one JSON document per sample on stdout")
    gpu.set_defaults(func=cmd_env_gpu, command_path="dlbox env gpu")
