"""`dlbox board`: TensorBoard over the run directories. It listens on localhost; for any other address (or
with ``token=True``) TensorBoard, which has no authentication, runs its WSGI application inside a server that
checks the token (``dlbox.services.tbgate``): one port, no ungated TensorBoard port left behind the gate (and
no data-server port: ``--load_fast=false``)."""

from __future__ import annotations

import sys
from pathlib import Path

from dlbox.services import server
from dlbox.services.config import BoardConfig

# TensorBoard imports TensorFlow when it is installed (seconds of start-up) though dlbox's runs are local event
# files its own reader handles. An importable `tensorboard.compat.notf` is TensorBoard's switch for its
# TensorFlow stub (what its no-TensorFlow build uses).
NO_TF = ("import sys, types; sys.modules['tensorboard.compat.notf'] = types.ModuleType('tensorboard.compat.notf'); "
         "sys.argv[0] = 'tensorboard'; from tensorboard.main import run_main; run_main()")  # fmt: skip


def start(cfg: BoardConfig) -> server.Service:
    """Start TensorBoard and return once it answers; ``service.url`` holds the token if there is one."""
    port, token = server.opening(cfg, "TensorBoard", ("tensorboard",), cfg.with_token)
    logdir = str(Path(cfg.runs_dir).resolve())
    args = ["--logdir", logdir, "--host", server.bind_host(cfg.ip), "--port", str(port), "--reload_interval", "5"]
    env, headers = server.child_env(), {}
    if token:  # TensorBoard's app behind the token check, in its own process, on the one port
        from dlbox.services import tbgate

        # the Rust data server would listen on a loopback port of its own, without a token: not with one
        launch = [sys.executable, "-m", "dlbox.services.tbgate",
                  *([] if cfg.with_tensorflow else ["--no-tensorflow"]), "--", "--load_fast", "false"]  # fmt: skip
        env[tbgate.TOKEN_ENV] = token  # the environment, not argv: ps shows argv to every user
        headers = {"Authorization": f"token {token}"}
    else:
        launch = [sys.executable, "-m", "tensorboard.main"] if cfg.with_tensorflow else [sys.executable, "-c", NO_TF]
    cleanups: list = []
    proc = server.launch("TensorBoard", [*launch, *args], env, f"http://{server.probe_host(cfg.ip)}:{port}/",
                         headers, cfg.timeout)  # fmt: skip
    host = server.probe_host(cfg.ip)
    info = {"runs_dir": logdir, "port": port, "api": f"http://{host}:{port}/data"}
    return server.Service("TensorBoard", f"http://{server.display_host(cfg.ip)}:{port}/", token, proc, cleanups, info)


def serve(cfg: BoardConfig, as_json: bool = False) -> int:
    """Start, print the URL once, run until Ctrl-C."""
    return server.serve(start(cfg), as_json)
