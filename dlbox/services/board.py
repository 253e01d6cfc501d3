"""`dlbox board`: TensorBoard over the run directories. It listens on localhost; for any other address (or
with ``token=True``) TensorBoard, which has no authentication, stays on loopback behind a token gate."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from dlbox.errors import UserError
from dlbox.services import server
from dlbox.services.config import BoardConfig

# TensorBoard imports TensorFlow when it is installed (seconds of start-up) though dlbox's runs are local event
# files its own reader handles. An importable `tensorboard.compat.notf` is TensorBoard's switch for its
# TensorFlow stub (what its no-TensorFlow build uses).
NO_TF = ("import sys, types; sys.modules['tensorboard.compat.notf'] = types.ModuleType('tensorboard.compat.notf'); "
         "sys.argv[0] = 'tensorboard'; from tensorboard.main import run_main; run_main()")  # fmt: skip


def start(cfg: BoardConfig) -> server.Service:
    """Start TensorBoard and return once it answers; ``service.url`` holds the token if there is one."""
    cfg.validate()
    if importlib.util.find_spec("tensorboard") is None:
        raise UserError(f"tensorboard is not installed in this environment ({sys.executable})",
                        "reinstall dlbox (pip install dlbox): TensorBoard is one of its dependencies")  # fmt: skip
    port = server.check_port(cfg.ip, cfg.port)
    token = server.new_token() if cfg.with_token else None
    tb_ip, tb_port = ("127.0.0.1", server.free_port()) if token else (cfg.ip, port)
    cleanups, gate = [], None
    if token:
        from dlbox.services.proxy import TokenProxy

        gate = TokenProxy(server.bind_host(cfg.ip), port, tb_port, token)  # holds the port from now on
        cleanups.append(gate.stop)
    logdir = str(Path(cfg.runs_dir).resolve())
    launch = [sys.executable, "-m", "tensorboard.main"] if cfg.with_tensorflow else [sys.executable, "-c", NO_TF]
    argv = [*launch, "--logdir", logdir, "--host", server.bind_host(tb_ip), "--port", str(tb_port),
            "--reload_interval", "5"]  # fmt: skip
    try:
        proc = server.launch("TensorBoard", argv, server.child_env(),
                             f"http://{server.probe_host(tb_ip)}:{tb_port}/", {}, cfg.timeout)  # fmt: skip
    except BaseException:
        if gate:
            gate.httpd.server_close()
        raise
    if gate:
        gate.start()
    host = server.probe_host(cfg.ip)
    info = {"runs_dir": logdir, "port": port, "api": f"http://{host}:{port}/data"}
    return server.Service("TensorBoard", f"http://{server.display_host(cfg.ip)}:{port}/", token, proc, cleanups, info)


def serve(cfg: BoardConfig, as_json: bool = False) -> int:
    """Start, print the URL once, run until Ctrl-C."""
    return server.serve(start(cfg), as_json)
