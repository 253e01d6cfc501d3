"""The options of `dlbox serve` (torch-free: the CLI registers them without importing torch or FastAPI)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Literal

from dlbox.base.errors import UserError
from dlbox.config import opt, positional

API_KEY_ENV = "DLBOX_API_KEY"


def is_local(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise UserError(f"--host {host!r} is not an IP address",
                        "use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface, with an API key)") from None  # fmt: skip


@dataclass(kw_only=True)
class ServeArgs:
    models: list[str] = positional(
        "models to serve: a run directory, an .onnx/.pt export, hub:NAME, a model repository folder "
        "(NAME/VERSION/model.onnx); NAME=MODEL names one")
    host: str = opt("127.0.0.1", "address to listen on (default: 127.0.0.1, this machine only); any other needs an API key")
    port: int = opt(8000, "port to listen on, 0 for any free one (default: 8000)", ge=0, le=65535)
    api_key: str | None = opt(None, f"require this key (header 'Authorization: Bearer KEY' or 'X-API-Key'); 'auto' "
                              f"generates one and prints it once; also read from ${API_KEY_ENV}", metavar="KEY")
    max_batch: int = opt(16, "most requests of one model coalesced into one call (1: no batching; default: 16)",
                         ge=1, le=1024)
    max_delay_ms: float = opt(2.0, "longest a request waits for others to join its batch (default: 2 ms)", ge=0, le=10000)
    max_queue: int = opt(256, "requests waiting per model; beyond it 503 with Retry-After (default: 256)", ge=1, le=1_000_000)
    max_body_mb: float = opt(16.0, "largest request body in MB, else 413 (default: 16)", gt=0, le=4096)
    max_pixels: float = opt(25.0, "largest decoded image in megapixels, else 413 (default: 25)", gt=0, le=1000)
    max_audio_s: float = opt(120.0, "longest audio in seconds, else 413 (default: 120)", gt=0, le=36000)
    timeout_s: float = opt(30.0, "a request not answered by then gets 504 (default: 30 s)", gt=0, le=3600)
    backend: Literal["auto", "pytorch", "onnxruntime", "fast"] = opt(
        "auto", "runtime of the models: auto (default: the fast path `dlbox bench --auto` saved for the model on "
        "this machine, else onnxruntime for exports, PyTorch for runs), pytorch, onnxruntime (a classification "
        "run is exported at load), fast (the saved fast path, else an error)")
    threads: int | None = opt(None, "intra-op threads for inference (default: all cores)", ge=1, le=1024)
    worker: Literal["process", "thread"] = opt(
        "process", "where each model runs: process (default: a process of its own, so that the server's HTTP work "
        "and health checks go on beside the model on another core) or thread (in the server's process: starts "
        "faster, one copy of the libraries in memory)")
    cors: list[str] = opt([], "allow this origin to call the API from a browser (repeatable; default: none)",
                          action="append", metavar="ORIGIN")
    access_log: bool = opt(True, "one line per request on stderr (id, method, path, status, ms)")

    def validate(self) -> None:
        if not self.models:
            raise UserError("no model to serve", "pass a run directory, an export, hub:NAME or a model repository")
        if self.api_key is None and os.environ.get(API_KEY_ENV):
            self.api_key = os.environ[API_KEY_ENV]
        if not is_local(self.host) and not self.api_key:
            raise UserError(f"--host {self.host} opens the server to the network and needs an API key",
                            f"add --api-key auto (generated, printed once) or set ${API_KEY_ENV}; "
                            "or keep the default --host 127.0.0.1")  # fmt: skip
        if self.api_key is not None and self.api_key != "auto" and len(self.api_key) < 16:
            raise UserError("--api-key is shorter than 16 characters", "use --api-key auto for a generated one")
        for origin in self.cors:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise UserError(f"--cors {origin!r} is not an origin", "e.g. --cors http://localhost:3000")
