"""`dlbox notebook` and `dlbox board`."""

from __future__ import annotations

import argparse

from dlbox.cliutil import add_json, command, number


def cmd_notebook(args: argparse.Namespace) -> int:
    from dlbox.services import notebook
    from dlbox.services.config import NotebookConfig

    cfg = NotebookConfig(dir=args.dir, port=args.port, ip=args.ip, no_token=args.no_token)
    return notebook.serve(cfg, as_json=args.json)


def cmd_board(args: argparse.Namespace) -> int:
    from dlbox.services import board
    from dlbox.services.config import BoardConfig

    cfg = BoardConfig(runs_dir=args.runs_dir, port=args.port, ip=args.ip, token=args.token,
                      with_tensorflow=args.with_tensorflow)
    return board.serve(cfg, as_json=args.json)


def _binding(p: argparse.ArgumentParser, port: int) -> None:
    p.add_argument("--port", type=number(int, ge=0, le=65535), default=port, metavar="N", help=f"port to listen on, 0 for any free one (default: {port})")
    p.add_argument("--ip", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only); any other needs the token")  # fmt: skip
    add_json(p)


def register(sub) -> None:
    nb = command(
        sub, "notebook", "JupyterLab with a kernel that has dlbox; the example notebooks in a working folder",
        "dlbox notebook --dir ~/work --port 8888",
        description="Start JupyterLab from dlbox's environment, its default kernel 'Python (dlbox)' importing\n"
                    "this dlbox. On the first start dlbox's example notebooks are copied into --dir. A token\n"
                    "is generated at each start and printed once in the URL (never logged). It listens on\n"
                    "127.0.0.1; '--ip 0.0.0.0' opens it to the network (the token is then required).\n"
                    "Ctrl-C stops it. With --json: one line {url, token, pid, ...} on stdout once it answers.",
    )  # fmt: skip
    nb.add_argument("--dir", default="dlbox-notebooks", help="working folder (default: ./dlbox-notebooks)")
    _binding(nb, 8888)
    nb.add_argument("--no-token", action="store_true",
                    help="no token: anyone on this machine can connect (refused with a non-local --ip)")  # fmt: skip
    nb.set_defaults(func=cmd_notebook, command_path="dlbox notebook")

    tb = command(
        sub, "board", "TensorBoard over the run directories (losses, metrics, system and GPU use)",
        "dlbox board runs --port 6006",
        description="Start TensorBoard over RUNS_DIR (default: runs), where every run's tensorboard/ events\n"
                    "are found. It listens on 127.0.0.1 without a token; with a non-local --ip (or --token)\n"
                    "TensorBoard stays on loopback behind a token gate, the token printed once in the URL.\n"
                    "Ctrl-C stops it. With --json: one line {url, token, pid, ...} on stdout once it answers.",
    )  # fmt: skip
    tb.add_argument("runs_dir", nargs="?", default="runs", metavar="RUNS_DIR", help="folder of runs (default: runs)")
    _binding(tb, 6006)
    tb.add_argument("--token", action="store_true", help="require a token on localhost too")
    tb.add_argument("--with-tensorflow", action="store_true",
                    help="let TensorBoard import TensorFlow when installed (by default it reads the runs without it)")  # fmt: skip
    tb.set_defaults(func=cmd_board, command_path="dlbox board")
