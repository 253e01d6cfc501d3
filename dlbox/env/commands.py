"""`dlbox env`, `dlbox env test` and `dlbox env gpu`."""

from __future__ import annotations

from dlbox.cliutil import Command, lazy, register_commands
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


def watch_gpus(c: config.GpuArgs, as_json: bool) -> int:
    from dlbox.engine import nvml

    return nvml.watch(c.interval, count=c.count if c.watch else (c.count or 1), as_json=as_json)


GPU = Command("gpu", "NVIDIA GPUs now (or live with --watch): power, temperature, use, memory, clocks",
              "dlbox env gpu --watch --interval 2", config.GpuArgs, watch_gpus, streams=True,
              json_help="one JSON document per sample on stdout")  # fmt: skip


def register(sub) -> None:
    env = register_commands(sub, [ENV])["env"]
    env_sub = env.add_subparsers(dest="env_command", metavar="SUBCOMMAND", parser_class=type(env))
    register_commands(env_sub, [TEST, GPU])
