"""`dlbox notebook` and `dlbox board`."""

from __future__ import annotations

from dlbox.cliutil import Command, register_commands
from dlbox.services.config import BoardConfig, NotebookConfig


def notebook(cfg: NotebookConfig, as_json: bool) -> int:
    from dlbox.services import notebook

    return notebook.serve(cfg, as_json=as_json)


def board(cfg: BoardConfig, as_json: bool) -> int:
    from dlbox.services import board

    return board.serve(cfg, as_json=as_json)


NOTEBOOK = Command(
    "notebook", "JupyterLab with a kernel that has dlbox; the example notebooks in a working folder",
    "dlbox notebook --dir ~/work --port 8888", NotebookConfig, notebook, streams=True,
    description="Start JupyterLab from dlbox's environment, its default kernel 'Python (dlbox)' importing\n"
                "this dlbox. On the first start dlbox's example notebooks are copied into --dir. A token\n"
                "is generated at each start and printed once in the URL (never logged). It listens on\n"
                "127.0.0.1; '--ip 0.0.0.0' opens it to the network (the token is then required).\n"
                "Ctrl-C stops it. With --json: one line {url, token, pid, ...} on stdout once it answers.",
)  # fmt: skip

BOARD = Command(
    "board", "TensorBoard over the run directories (losses, metrics, system and GPU use)",
    "dlbox board runs --port 6006", BoardConfig, board, streams=True,
    description="Start TensorBoard over RUNS_DIR (default: runs), where every run's tensorboard/ events\n"
                "are found. It listens on 127.0.0.1 without a token; with a non-local --ip (or --token)\n"
                "TensorBoard stays on loopback behind a token gate, the token printed once in the URL.\n"
                "Ctrl-C stops it. With --json: one line {url, token, pid, ...} on stdout once it answers.",
)  # fmt: skip


def register(sub) -> None:
    register_commands(sub, [NOTEBOOK, BOARD])
