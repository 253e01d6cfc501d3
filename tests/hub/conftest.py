"""Hub test fixtures: an isolated DLBOX_HOME, a loopback HTTP file server that can misbehave on purpose,
test-only catalog entries (DLBOX_CATALOG_EXTRA), and moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import pytest

HUB_ENV = ("DLBOX_MIRROR", "DLBOX_OFFLINE", "DLBOX_CONFIG", "DLBOX_CATALOG_EXTRA", "DLBOX_S3_ENDPOINT",
           "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
           "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION")  # fmt: skip


# Quick retries; timeouts long enough for a loaded 2-core test machine (the stall test sets its own).
QUICK_CONFIG = "retries = 2\nbackoff = 0.05\nconnect_timeout = 5\nread_timeout = 5\n"


@pytest.fixture(autouse=True)
def hub_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own DLBOX_HOME, no inherited hub settings, and quick retries."""
    return isolate_hub(tmp_path, monkeypatch)


def isolate_hub(tmp_path: Path, monkeypatch) -> Path:
    """An own DLBOX_HOME under tmp_path, no inherited hub settings, quick retries (tests/data uses it too)."""
    for name in HUB_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "dlbox-home"
    home.mkdir()
    monkeypatch.setenv("DLBOX_HOME", str(home))
    monkeypatch.setenv("DLBOX_PROGRESS", "0")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    (home / "config.toml").write_text(QUICK_CONFIG)
    return home


def payload(n: int, seed: int = 0) -> bytes:
    """n bytes of deterministic, incompressible-looking content."""
    out = bytearray()
    block = hashlib.sha256(f"dlbox-{seed}".encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileServer:
    """Serves ``files`` ({url path: bytes}) on 127.0.0.1 with Range support, and on request misbehaves:
    ``status[path] = 404/500`` answers that code, ``cut[path] = (n_bytes, times)`` sends the headers of the
    whole file but only n bytes before closing (the first ``times`` requests), ``stall`` paths send the
    headers and 1 KB and then hang. Every request is recorded as (path, Range header)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.status: dict[str, int] = {}
        self.cut: dict[str, list[int]] = {}
        self.stall: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        self.release = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                owner._handle(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.requests if p == path]

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        path = h.path
        rng = h.headers.get("Range")
        self.requests.append((path, rng))
        if path in self.status:
            h.send_error(self.status[path])
            return
        data = self.files.get(path)
        if data is None:
            h.send_error(404)
            return
        start = 0
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
        body = data[start:]
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        if path in self.stall:
            h.wfile.write(body[:1024])
            h.wfile.flush()
            self.release.wait(30)
            return
        cut = self.cut.get(path)
        if cut and cut[1] > 0:
            cut[1] -= 1
            h.wfile.write(body[: cut[0]])
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)  # the connection dies mid-file
            return
        h.wfile.write(body)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.close()


def toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def entry_toml(name: str, files: list[dict], kind: str = "dataset", task: str = "classify", **extra) -> str:
    """One [[entry]] of a test-only catalog."""
    lines = ["[[entry]]", f"name = {toml_str(name)}", f"kind = {toml_str(kind)}", f"task = {toml_str(task)}",
             f"title = {toml_str('test ' + name)}", 'description = "generated by the test"',
             'license = "test"', 'homepage = "http://127.0.0.1/"']  # fmt: skip
    for k, v in extra.items():
        if isinstance(v, bool):
            lines.append(f"{k} = {'true' if v else 'false'}")
        elif isinstance(v, (int, float)):
            lines.append(f"{k} = {v}")
        elif isinstance(v, dict):
            inner = ", ".join(f"{kk} = {toml_value(vv)}" for kk, vv in v.items())
            lines.append(f"{k} = {{ {inner} }}")
        else:
            lines.append(f"{k} = {toml_str(str(v))}")
    for f in files:
        lines.append("[[entry.files]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in f.items()]
    return "\n".join(lines) + "\n"


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return toml_str(str(v))


@pytest.fixture
def extra_catalog(tmp_path, monkeypatch):
    """Write test-only entries into a catalog file named by DLBOX_CATALOG_EXTRA; returns a writer."""
    path = tmp_path / "extra-catalog.toml"
    monkeypatch.setenv("DLBOX_CATALOG_EXTRA", str(path))

    def write(*entries: str) -> Path:
        path.write_text("\n".join(entries))
        return path

    return write


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's S3-compatible server on loopback (one for the session; each test uses its own bucket)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    yield f"http://127.0.0.1:{port}"
    srv.stop()


@pytest.fixture
def s3(moto_endpoint, monkeypatch, request):
    """Credentials and endpoint in the environment, and a fresh bucket; yields (bucket, boto3 client)."""
    import boto3

    monkeypatch.setenv("DLBOX_S3_ENDPOINT", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTKEY1234567890")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-Zq8VxW2nK4pL")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = "b-" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="AKIATESTKEY1234567890", aws_secret_access_key="test-secret-Zq8VxW2nK4pL")  # fmt: skip
    client.create_bucket(Bucket=bucket)
    return bucket, client


def tree(root: Path) -> dict[str, bytes]:
    """{relative path: content} of every file under root."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def listdir_all(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), root) for d, ds, fs in os.walk(root) for n in ds + fs}
