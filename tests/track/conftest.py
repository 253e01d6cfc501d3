"""One real MLflow tracking server for the session (`dlbox track server`: SQLite backend, loopback, free port),
and a TCP relay in front of it that a test can take away and bring back (the server "going away" mid-run, as
clients see it, without paying for a second server start)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import cli_env


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """{"uri", "home"}: `dlbox track server --port 0 --json` over a fresh DLBOX_HOME; stopped (its whole
    process group) at the end of the session."""
    home = tmp_path_factory.mktemp("mlflow-home")
    env = {**cli_env(), "DLBOX_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "dlbox", "track", "server", "--port", "0", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)  # fmt: skip
    try:
        # While the server starts (seconds of imports and database set-up in its own processes), this process
        # imports what the tests need anyway.
        import mlflow.tracking  # noqa: F401

        import dlbox.tasks.classify.train  # noqa: F401
        import dlbox.tasks.detect.train  # noqa: F401

        line = proc.stdout.readline()  # printed once the server answers (or empty when it failed)
        assert line, f"dlbox track server exited with {proc.wait(10)}"
        info = json.loads(line)
        yield {"uri": info["tracking_uri"], "home": home, "pid": proc.pid}
    finally:
        with _suppress():
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with _suppress():
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        with _suppress():
            os.killpg(proc.pid, signal.SIGKILL)  # uvicorn, the child of `mlflow server`, if it outlived it


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


@pytest.fixture
def tracking(mlflow_server, tmp_path, monkeypatch):
    """This test's processes track to the session server; dlbox's home (registry cache) is the test's own."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server["uri"])
    monkeypatch.setenv("DLBOX_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DLBOX_PROGRESS", "0")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    from dlbox.engine.trackers_mlflow import client

    return client(mlflow_server["uri"])


class Relay:
    """127.0.0.1:port -> the server's port, byte for byte. ``stop()`` closes the listening socket and every open
    connection (clients then get connection refused); ``start()`` listens on the same port again."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> Relay:
        self._stop.clear()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ)
        peers: dict[socket.socket, socket.socket] = {}
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.05):
                    s = key.fileobj
                    if s is self._listener:
                        a, _ = self._listener.accept()
                        b = socket.create_connection(("127.0.0.1", self.target_port))
                        peers[a], peers[b] = b, a
                        sel.register(a, selectors.EVENT_READ)
                        sel.register(b, selectors.EVENT_READ)
                        continue
                    data = b""
                    try:
                        data = s.recv(65536)
                    except OSError:
                        pass
                    other = peers.get(s)
                    if data and other is not None:
                        other.sendall(data)
                        continue
                    for x in (s, other):
                        if x is not None and x in peers:
                            sel.unregister(x)
                            peers.pop(x)
                            x.close()
        finally:
            for s in list(peers):
                s.close()
            sel.close()
            self._listener.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


@pytest.fixture
def relay(mlflow_server):
    port = int(mlflow_server["uri"].rsplit(":", 1)[1])
    r = Relay(port).start()
    yield r
    r.stop()


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def metrics_of(run_dir: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
