"""Start `dlbox notebook` / `dlbox board` as a user would (a child process, --json), on a free loopback port;
always stop it (Ctrl-C, then kill), so no server outlives a test."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from dlbox.services.server import free_port
from tests.conftest import cli_env


@contextlib.contextmanager
def started(*args, cwd: Path, timeout: float = 120):
    """``(doc, proc, stderr_path)`` once the command printed its JSON line (the server answers by then)."""
    err_path = cwd / "service-stderr.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dlbox", *map(str, args), "--port", str(free_port()), "--json"],
            cwd=cwd, env=cli_env(), stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
        try:
            yield json.loads(_first_line(proc, timeout, err_path)), proc, err_path
        finally:
            stop(proc)


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    """Ctrl-C as in a terminal; SIGKILL if it does not end."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _first_line(proc: subprocess.Popen, timeout: float, err_path: Path) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=0.5):
            line = proc.stdout.readline()
            if line:
                return line
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before answering:\n{err_path.read_text()[-3000:]}")
    raise AssertionError(f"no answer within {timeout} s:\n{err_path.read_text()[-3000:]}")


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"token {token}"} if token else {}
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never via a proxy
    try:
        with direct.open(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not a running server.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return True
