"""What both services share: the binding rules (localhost unless told otherwise, a token beyond it), the
port check before anything starts, and the life of the server process (ready, URL printed once, Ctrl-C)."""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from dlbox.base.errors import UserError


def is_local(ip: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        raise UserError(f"--ip {ip!r} is not an IP address",
                        "use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface, with a token)") from None  # fmt: skip


def check_binding(ip: str, with_token: bool) -> None:
    """The rule of both services: without a token they listen on this machine only."""
    if not is_local(ip) and not with_token:
        raise UserError(f"--ip {ip} is reachable from other machines, so a token is required",
                        "drop --no-token (dlbox generates a token and prints it once), or use --ip 127.0.0.1")  # fmt: skip


def new_token() -> str:
    return secrets.token_hex(24)


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def bind_host(ip: str) -> str:
    return "127.0.0.1" if ip == "localhost" else ip


def _try_bind(ip: str, port: int) -> int:
    """Bind and release (ip, port) as a server would (SO_REUSEADDR, so TIME_WAIT does not count); the port."""
    with socket.socket(_family(ip), socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((bind_host(ip), port))
        return s.getsockname()[1]


def free_port(ip: str = "127.0.0.1") -> int:
    return _try_bind(ip, 0)


def check_port(ip: str, port: int, option: str = "--port") -> int:
    """The port to listen on (0: any free one), or one line saying what to do when it is taken."""
    if not 0 <= port <= 65535:
        raise UserError(f"{option} {port} is not a port", "use a number from 1 to 65535 (0: any free port)")
    try:
        return _try_bind(ip, port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            spare = next((p for p in range(port + 1, min(port + 50, 65536)) if _is_free(ip, p)), 0)
            raise UserError(f"port {port} on {ip} is already in use",
                            f"use {option} {spare} (free now), or stop what listens there (see: ss -ltnp | grep :{port})") from None  # fmt: skip
        if e.errno == errno.EACCES:
            raise UserError(f"port {port} needs root privileges", f"use a port above 1023, e.g. {option} 8888") from None
        raise UserError(f"cannot listen on {ip}:{port}: {e.strerror}",
                        "use --ip 127.0.0.1, 0.0.0.0 or an address of this machine") from None  # fmt: skip


def opening(cfg, name: str, modules: tuple[str, ...], with_token: bool) -> tuple[int, str | None]:
    """What every service checks and makes before it starts (notebook, board, track server): its options, its
    packages installed here, its port free (``check_port``), and a token when it takes one."""
    cfg.validate()
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise UserError(f"{module} is not installed in this environment ({sys.executable})",
                            f"reinstall dlbox (pip install dlbox): {name} is one of its dependencies")  # fmt: skip
    return check_port(cfg.ip, cfg.port), (new_token() if with_token else None)


def _is_free(ip: str, port: int) -> bool:
    try:
        _try_bind(ip, port)
        return True
    except OSError:
        return False


def display_host(ip: str) -> str:
    if ip in ("0.0.0.0", "::"):
        return socket.gethostname()
    return f"[{ip}]" if ":" in ip else ip


def probe_host(ip: str) -> str:
    """Where this machine reaches a server listening on ``ip``."""
    if ip in ("0.0.0.0", "localhost"):
        return "127.0.0.1"
    if ip == "::":
        return "[::1]"
    return f"[{ip}]" if ":" in ip else ip


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the server gets SIGTERM if dlbox itself dies (SIGKILL included), so no server is orphaned."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Service:
    """A running server: ``url`` (with the token, to print once), ``stop()`` ends it and what it left behind."""

    name: str
    base_url: str
    token: str | None
    process: subprocess.Popen
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.base_url}?token={self.token}" if self.token else self.base_url

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (both servers shut down cleanly on it: kernels stopped, files closed), SIGKILL after
        ``timeout``; then the cleanups. The server's exit code."""
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            return self.process.returncode
        finally:
            while self.cleanups:
                with contextlib.suppress(Exception):
                    self.cleanups.pop()()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def launch(name: str, argv: list[str], env: dict[str, str], probe: str, headers: dict[str, str],
           timeout: float, cwd: str | None = None) -> subprocess.Popen:  # fmt: skip
    """Start the server in its own session (a Ctrl-C in the terminal reaches dlbox only, which then stops the
    server: Jupyter would otherwise ask 'Shutdown this server?'); return once ``probe`` answers."""
    try:  # the server's own messages go to stderr: stdout stays for --json
        out = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        out = None
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
        start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )  # fmt: skip
    try:
        wait_ready(proc, name, probe, headers, timeout)
    except BaseException:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    return proc


def wait_ready(proc: subprocess.Popen, name: str, url: str, headers: dict[str, str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an HTTP(S)_PROXY
    while True:
        if proc.poll() is not None:
            raise UserError(f"{name} stopped before it answered (exit code {proc.returncode})",
                            "its own messages are above")  # fmt: skip
        try:
            with direct.open(urllib.request.Request(url, headers=headers), timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answers, even if not with 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            raise UserError(f"{name} did not answer on {url.split('?')[0]} within {timeout:.0f} s",
                            "its own messages are above")  # fmt: skip
        time.sleep(0.2)


def serve(service: Service, as_json: bool = False) -> int:
    """Print the URL once (the token is in it and nowhere else), then wait for Ctrl-C (or SIGTERM) and stop."""
    if as_json:
        doc = {"service": service.name, "url": service.url, "token": service.token, "pid": service.process.pid,
               **service.info}  # fmt: skip
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()
    else:
        sys.stderr.write(f"{service.name} is running at {service.url}\n(Ctrl-C stops it)\n")
        sys.stderr.flush()

    def on_term(signum, frame):
        raise KeyboardInterrupt

    # SIGINT too, explicitly: a process started in the background by a non-interactive shell inherits
    # SIGINT ignored, and Python then never raises KeyboardInterrupt (Ctrl-C from a test or a supervisor).
    previous = signal.signal(signal.SIGTERM, on_term)
    previous_int = signal.signal(signal.SIGINT, on_term)
    try:
        rc = service.process.wait()
        sys.stderr.write(f"{service.name} exited by itself (exit code {rc})\n")
        return 0 if rc == 0 else 1
    except KeyboardInterrupt:
        sys.stderr.write(f"stopping {service.name}...\n")
        service.stop()
        sys.stderr.write(f"{service.name} stopped\n")
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        service.stop()


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment, with the folder dlbox is imported from on PYTHONPATH, so the server and its kernels
    import this same dlbox even from a source checkout that is not installed."""
    import dlbox

    root = os.path.dirname(os.path.dirname(os.path.abspath(dlbox.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env
