"""The dlbox command tree. Commands parse arguments and call library functions; no logic lives here.

User errors print one line ``error: ... (hint: ...)`` on stderr and exit 2; ``--json`` prints one JSON
document on stdout and nothing else there (human output goes to stderr).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from typing import Any

from dlbox import __version__
from dlbox.errors import UserError

COMMANDS = {
    "env": "environment doctor: software, CPU, GPU, CUDA compatibility, with a verdict",
    "demo": "the main job: environment summary, then the integrity test",
}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage dumps."""

    def error(self, message: str) -> typing.NoReturn:
        sys.stderr.write(f"error: {message} (hint: see '{self.prog} --help')\n")
        sys.exit(2)


def _parser(sub, name: str, help: str, example: str, description: str | None = None) -> Parser:
    return sub.add_parser(
        name, help=help, description=description or help, epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_options(p: argparse.ArgumentParser, cls, title: str) -> None:
    """One option per dataclass field. Defaults are None so only what the user typed overrides the config
    (a YAML --config file, or the saved config of a run being resumed); help shows the real default.
    Engine fields go into their own group, after the command's own."""
    from dlbox.engine.config import EngineConfig

    engine_fields = {f.name for f in dataclasses.fields(EngineConfig)}
    own = p.add_argument_group(title)
    engine = p.add_argument_group("training engine") if issubclass(cls, EngineConfig) else own
    hints = typing.get_type_hints(cls)
    for f in sorted(dataclasses.fields(cls), key=lambda f: f.name in engine_fields):
        group = engine if f.name in engine_fields and cls is not EngineConfig else own
        tp, default = hints[f.name], f.default
        args = typing.get_args(tp)
        origin = typing.get_origin(tp)
        kw: dict[str, Any] = {"default": None, "dest": f.name}
        if tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif origin is typing.Literal:
            kw["choices"] = list(args)
        else:
            base = next((a for a in args if a is not type(None)), tp)
            kw["type"] = base if base in (int, float, str) else str
            kw["metavar"] = {int: "N", float: "X"}.get(base, "STR")
        text = f.metadata.get("help", "")
        kw["help"] = text if default is None or "default" in text else f"{text} (default: {default})"
        group.add_argument(_flag(f.name), **kw)


def config_from_args(cls, args: argparse.Namespace):
    """Defaults < --config FILE < the saved config of --resume RUN < options typed on the command line."""
    from dlbox.config import from_dict, load_yaml
    from dlbox.engine import checkpoint

    names = {f.name for f in dataclasses.fields(cls)}
    typed = {k: v for k, v in vars(args).items() if k in names and v is not None}
    data: dict[str, Any] = load_yaml(args.config) if getattr(args, "config", None) else {}
    if typed.get("resume"):
        data.update(checkpoint.saved_config(typed["resume"]))
    data.update(typed)
    return from_dict(cls, data)


def emit(args: argparse.Namespace, result: Any, render) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    else:
        print(render(result))


# --- commands -------------------------------------------------------------------------------------------


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


def cmd_demo(args: argparse.Namespace) -> int:
    from dlbox.demo import run_demo

    result = run_demo(runs_dir=args.runs_dir or "runs", quiet_json=args.json)
    if args.json:
        emit(args, result, str)
    return 0


def build_parser() -> Parser:
    from dlbox.env.integrity import IntegrityConfig

    p = Parser(
        prog="dlbox",
        description="dlbox: a deep-learning workbench.",
        epilog="example:\n  dlbox env            # check this machine\n  dlbox demo           # the main job",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"dlbox {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    env = _parser(sub, "env", COMMANDS["env"], "dlbox env --json")
    env.add_argument("--json", action="store_true", help="print one JSON object")
    env.add_argument("--runs-dir", default=None, help="where runs go, for the free-disk check (default: runs)")
    env.set_defaults(func=cmd_env)
    env_sub = env.add_subparsers(dest="env_command", metavar="SUBCOMMAND", parser_class=Parser)
    test = _parser(
        env_sub, "test", "integrity test: LeNet-5 on handwritten digits in each framework (PyTorch, Keras, TF)",
        "dlbox env test --framework torch --distributed 2",
    )
    test.add_argument("--json", action="store_true", help="print one JSON object")
    test.add_argument("--config", help="a YAML file of options (typed options win)")
    test.add_argument("--distributed", type=int, metavar="N", help="run PyTorch as N DDP processes (= --nproc-per-node N)")
    add_config_options(test, IntegrityConfig, title="integrity test")
    test.set_defaults(func=cmd_env_test, command_path="dlbox env test")

    demo = _parser(sub, "demo", COMMANDS["demo"], "dlbox demo")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.add_argument("--runs-dir", default=None, help="where runs go (default: runs)")
    demo.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    from dlbox.engine.signals import Interrupted

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except UserError as e:
        sys.stderr.write(f"error: {e}\n")
        return e.exit_code
    except Interrupted as e:
        resume = f"{getattr(args, 'command_path', 'dlbox')} --resume {e.run_dir}"
        sys.stderr.write(f"{e}; saved {e.run_dir}/checkpoints/last.pt (continue with: {resume})\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
