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
from dlbox.cliutil import Parser
from dlbox.errors import UserError

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
    "dlbox.tasks.caffe.commands",
    "dlbox.tasks.face.commands",
    "dlbox.tasks.asr.commands",
    "dlbox.demo",
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
        if getattr(e, "run_dir", None):  # a distributed job that lost a worker: say how to continue it
            e.hint = f"continue with: {getattr(args, 'command_path', 'dlbox')} --resume {e.run_dir}"
        sys.stderr.write(f"error: {e}\n")
        return e.exit_code
    except Interrupted as e:
        resume = f"{getattr(args, 'command_path', 'dlbox')} --resume {e.run_dir}"
        sys.stderr.write(f"{e}; saved {e.run_dir}/checkpoints/last.pt (continue with: {resume})\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
