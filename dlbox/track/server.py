"""`dlbox track server`: ``mlflow server`` over dlbox's store (SQLite backend, artifacts under $DLBOX_HOME/mlflow).

The same binding rules as `dlbox notebook` and `board`: localhost without a token by default; a non-local address
(or ``--token``) needs dlbox's token, checked inside the server's one process (``dlbox.track.gate``): MLflow has
no authentication of its own. MLflow clients send the token with ``MLFLOW_TRACKING_TOKEN`` (an
``Authorization: Bearer`` header); a browser opens the URL printed once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from dlbox.engine.trackers_mlflow import local_store
from dlbox.services import server
from dlbox.track.config import ServerArgs
from dlbox.track.gate import TOKEN_ENV


def argv(host: str, port: int) -> list[str]:
    store = local_store()
    return [sys.executable, "-m", "dlbox.track.gate", "--host", host, "--port", str(port),
            "--backend", f"sqlite:///{store / 'mlflow.db'}", "--artifacts", str(store / "artifacts-served")]  # fmt: skip


def start(cfg: ServerArgs) -> server.Service:
    """Start the server and return once it answers; ``service.url`` holds the token if there is one."""
    port, token = server.opening(cfg, "MLflow", ("mlflow",), cfg.with_token)
    local_store().mkdir(parents=True, exist_ok=True)
    env = server.child_env({TOKEN_ENV: token} if token else {})
    proc = server.launch("MLflow", argv(server.bind_host(cfg.ip), port), env,
                         f"http://{server.probe_host(cfg.ip)}:{port}/health", {}, cfg.timeout)  # fmt: skip
    host = server.probe_host(cfg.ip)
    store = local_store()
    info = {"port": port, "tracking_uri": f"http://{host}:{port}", "backend": f"sqlite:///{store / 'mlflow.db'}",
            "artifacts": str(store / "artifacts-served")}  # fmt: skip
    cleanups = [lambda: _kill_group(proc.pid)]  # anything it started, in the session started for it
    return server.Service("MLflow", f"http://{server.display_host(cfg.ip)}:{port}/", token, proc, cleanups, info)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def serve(cfg: ServerArgs, as_json: bool = False) -> int:
    """Start, print the URL once, run until Ctrl-C; the exit status (1: the server stopped by itself)."""
    return server.serve(start(cfg), as_json)
