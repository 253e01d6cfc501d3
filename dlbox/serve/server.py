"""Running `dlbox serve`: checks before binding, uvicorn, the startup line, graceful shutdown.

``serve(...)`` blocks (the command); ``start(...)`` runs the same server in a thread and returns a handle with
its URL (tests, notebooks, the load benchmark): ``with start(["runs/classify/digits"], port=0) as s: s.url``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from dlbox.base.errors import UserError
from dlbox.serve.config import ServeArgs

log = logging.getLogger("dlbox.serve")


def _logging() -> None:
    root = logging.getLogger("dlbox.serve")
    if not root.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
        root.addHandler(h)
        root.setLevel(logging.INFO)
        root.propagate = False


def _prepare(cfg: ServeArgs):
    """Everything checked before anything binds: options, the models' sources and tasks, the key."""
    from dlbox.serve import backend, models

    cfg.validate()
    specs = models.resolve(cfg.models)
    backend.plan(specs, cfg.backend)
    key = secrets.token_urlsafe(24) if cfg.api_key == "auto" else cfg.api_key
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    return specs, key


def _build(cfg: ServeArgs, specs, key):
    import uvicorn

    from dlbox.serve.app import Limits, State, create_app

    limits = Limits(max_body=int(cfg.max_body_mb * 2**20), max_pixels=int(cfg.max_pixels * 1e6),
                    max_audio_s=cfg.max_audio_s, timeout_s=cfg.timeout_s)  # fmt: skip
    state = State(specs=specs, limits=limits, api_key=key, max_batch=cfg.max_batch,
                  max_delay_s=cfg.max_delay_ms / 1000, max_queue=cfg.max_queue, threads=cfg.threads,
                  worker=cfg.worker)  # fmt: skip
    app = create_app(state, access_log=cfg.access_log, cors=cfg.cors)
    config = uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=cfg.timeout_s, lifespan="on", loop="auto", http="auto",
                            limit_concurrency=max(64, cfg.max_queue * 4), server_header=False)  # fmt: skip
    server = _server_class()(config)
    state.on_load_error = lambda e: setattr(server, "should_exit", True)
    return server, state


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's Server that records the address it bound (``port=0`` picks one) and says when it is up."""

        def __init__(self, config):
            super().__init__(config)
            self.bound: tuple[str, int] | None = None
            self.up = threading.Event()

        @contextlib.contextmanager
        def capture_signals(self):
            """Ctrl-C / SIGTERM: stop listening, finish what is in flight, exit 0 (uvicorn's own would re-raise
            the signal afterwards: a KeyboardInterrupt, or death by SIGTERM). A second Ctrl-C forces it."""
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            original = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, handler in original.items():
                    signal.signal(s, handler)

        async def startup(self, sockets=None):
            try:
                await super().startup(sockets)
                if self.servers and self.servers[0].sockets:
                    self.bound = tuple(self.servers[0].sockets[0].getsockname()[:2])
            finally:
                self.up.set()

    return Server


def _url(server) -> str:
    host, port = server.bound
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


def _startup_line(url: str, specs, key: str | None, generated: bool, as_json: bool) -> None:
    from dlbox.serve.backend import describe

    info: dict[str, Any] = {"url": url, "models": [{"name": s.name, "version": s.version, "task": s.task,
                                                    "source": s.source, "backend": describe(s)} for s in specs],
                            "page": url + "/", "openapi": url + "/openapi.json", "metrics": url + "/metrics"}  # fmt: skip
    if generated:
        info["api_key"] = key  # printed this once, on stdout only
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
    else:
        names = ", ".join(f"{s.name} ({s.task}, {describe(s)})" for s in specs)
        sys.stdout.write(f"dlbox serve: {url}/  models: {names}\n")
        if generated:
            sys.stdout.write(f"API key (shown once): {key}\n")
    sys.stdout.flush()


def serve(cfg: ServeArgs, as_json: bool = False) -> None:
    """The command: serve until Ctrl-C or SIGTERM, then finish the requests in flight and stop."""
    _logging()
    specs, key = _prepare(cfg)
    server, state = _build(cfg, specs, key)

    def announce():
        server.up.wait()
        if server.bound:
            _startup_line(_url(server), specs, key, cfg.api_key == "auto", as_json)

    threading.Thread(target=announce, daemon=True).start()
    try:
        server.run()
    except (OSError, SystemExit):  # uvicorn exits when it cannot bind (it said why on stderr)
        server.bound = None
    if state.load_error is not None:
        e = state.load_error
        if isinstance(e, UserError):
            raise e
        raise UserError(f"loading the models failed: {type(e).__name__}: {e}") from None
    if server.bound is None:
        raise UserError(f"cannot listen on {cfg.host}:{cfg.port}", "pick another --port, or 0 for any free one")
    log.info("stopped")
    return None


@dataclass
class Running:
    """A server started by ``start``: its URL, key and state; ``stop()`` finishes in-flight requests."""

    url: str
    api_key: str | None
    state: Any
    server: Any
    thread: threading.Thread

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.state.ready:
            if self.state.load_error is not None:
                raise self.state.load_error
            if time.monotonic() > deadline:
                raise TimeoutError("the models did not load in time")
            time.sleep(0.02)

    def stop(self, timeout: float = 60.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(models: list[str], *, wait: bool = True, **options: Any) -> Running:
    """Serve ``models`` from a thread of this process (options: those of ``ServeArgs``; ``port=0`` picks a free
    port); returns once it listens (and, with ``wait``, once the models are loaded)."""
    _logging()
    cfg = ServeArgs(models=list(models), **options)
    specs, key = _prepare(cfg)
    server, state = _build(cfg, specs, key)
    thread = threading.Thread(target=server.run, name="dlbox-serve", daemon=True)
    thread.start()
    if not server.up.wait(60) or server.bound is None:
        server.should_exit = True
        raise UserError(f"cannot listen on {cfg.host}:{cfg.port}", "pick another --port")
    running = Running(_url(server), key, state, server, thread)
    if wait:
        running.wait_ready()
    return running
