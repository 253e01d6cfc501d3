"""The dlbox command tree. Commands parse arguments and call library functions; no logic lives here.

Each area registers its commands from ``dlbox/<area>/commands.py``. User errors print one line
``error: ... (hint: ...)`` on stderr and exit 2; ``--json`` prints one JSON document on stdout and nothing
else there (human output goes to stderr).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dlbox import __version__
from dlbox.base.errors import UserError
from dlbox.cliutil import Parser, check_outputs

# In the order `dlbox --help` lists them.
AREAS = [
    "dlbox.env.commands",
    "dlbox.bench.commands",
    "dlbox.hub.commands",
    "dlbox.data.commands",
    "dlbox.tasks.classify.commands",
    "dlbox.tasks.detect.commands",
    "dlbox.tasks.text.commands",
    "dlbox.services.commands",
    "dlbox.track.commands",
    "dlbox.tasks.caffe.commands",
    "dlbox.tasks.face.commands",
    "dlbox.tasks.asr.commands",
    "dlbox.demo",
    "dlbox.serve.commands",
    "dlbox.launch.commands",
]


def build_parser() -> Parser:
    p = Parser(
        prog="dlbox",
        description="dlbox: a deep-learning workbench.",
        epilog="example:\n  dlbox env            # check this machine\n  dlbox demo           # the main job",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"dlbox {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for area in AREAS:
        importlib.import_module(area).register(sub)
    return p


def _run_of_failed_write(e: UserError, args: argparse.Namespace):
    """The run directory a training command was writing into when the disk filled up (None otherwise): the
    same command again would start a new run, --resume RUN continues this one."""
    import ast
    import re
    from pathlib import Path

    from dlbox.base.fileio import WriteError

    if not isinstance(e, WriteError) or "free some space" not in (e.hint or ""):
        return None
    path = getattr(e, "path", None)
    if path is None:  # re-raised across ranks (message and hint only): the path is in the message
        m = re.match(r"cannot write ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", e.message)
        if m is None:
            return None
        path = Path(ast.literal_eval(m.group(1)))
    if not hasattr(args, "resume"):  # not a training command
        return None
    for p in path.absolute().parents:
        if (p / "checkpoints").is_dir() and (p / "config.yaml").is_file():
            return p
    return None


def main(argv: list[str] | None = None) -> int:
    from dlbox.engine.signals import Interrupted

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        check_outputs(args)  # every declared output path, before any work starts
        return args.func(args) or 0
    except UserError as e:
        if getattr(e, "run_dir", None):  # a distributed job that lost a worker: say how to continue it
            e.hint = f"continue with: {getattr(args, 'command_path', 'dlbox')} --resume {e.run_dir}"
        elif (run := _run_of_failed_write(e, args)) is not None:  # a full disk mid-training: resume, not rerun
            e.hint = f"free some space, then continue with: {getattr(args, 'command_path', 'dlbox')} --resume {run}"
        sys.stderr.write(f"error: {e}\n")
        return e.exit_code
    except Interrupted as e:
        resume = f"{getattr(args, 'command_path', 'dlbox')} --resume {e.run_dir}"
        sys.stderr.write(f"{e}; saved {e.run_dir}/checkpoints/last.pt (continue with: {resume})\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
