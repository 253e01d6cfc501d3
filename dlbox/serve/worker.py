"""Where a served model runs: an ``Executor`` turns one batch of requests into one answer per request, in the
server's process (``--worker thread``) or in a process of its own (``--worker process``, the default).

A request reaches the executor as it came in: image, WAV or word bytes (``predict``), a face pair's photos
(``call``: the request's files go to the model together) or v2 tensors (``infer``). The executor decodes, calls
the model once for the batch and answers each request with ``(OK, result)`` or ``(FAILED, status, message)``:
a file that does not decode, or a word the model does not know, fails its own request only.

In its own process the model's Python work (decoding, PyTorch's dispatch) never holds the server's GIL, so HTTP
parsing, health checks and the next batch's bodies go on beside it on another core; the server sends each batch
over a socket pair (pickled) and reads the answers back. The process ignores Ctrl-C and SIGTERM (the server
finishes the requests in flight, then tells it to stop) and exits when the server closes its end.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from dlbox.base.errors import UserError
from dlbox.serve.protocol import BadRequest

log = logging.getLogger("dlbox.serve")
OK, FAILED = 0, 1
WORKERS = ("process", "thread")


def _failure(e: BaseException) -> tuple:
    if isinstance(e, BadRequest):
        return (FAILED, e.status, str(e))
    if isinstance(e, UserError):
        return (FAILED, 400, str(e))
    return (FAILED, 500, f"{type(e).__name__}: {str(e)[:300]}")


class Executor:
    """One batch of one model's requests -> one outcome per request (the batcher's only call into a model)."""

    def __init__(self, predictor):
        self.predictor = predictor

    def run(self, kind: str, payloads: list[Any], options: dict[str, Any]) -> list[tuple]:
        try:
            with warnings.catch_warnings():  # a decoder's warnings on odd files: the request's answer says it
                warnings.simplefilter("ignore")
                return self._run(kind, payloads, options)
        except BaseException as e:  # noqa: BLE001 - every request of the batch hears of it
            return [_failure(e)] * len(payloads)

    def _run(self, kind: str, payloads: list[Any], options: dict[str, Any]) -> list[tuple]:
        if kind == "infer":
            return self._infer(payloads)
        if kind == "call":  # one request's files together (a face pair to verify)
            samples = [self._decode(data, ctype) for data, ctype in payloads[0]]
            return [(OK, self.predictor.predict(samples, **options))]
        return self._predict(payloads, options)

    def _decode(self, data: bytes, ctype: str | None):
        try:
            return self.predictor.decode(data, ctype)
        except UserError as e:
            raise BadRequest(str(e)) from None
        except Exception as e:  # a decoder's own error on bad bytes
            raise BadRequest(f"cannot decode the input: {type(e).__name__}: {str(e)[:200]}") from None

    def _predict(self, payloads: list[tuple[bytes, str | None]], options: dict[str, Any]) -> list[tuple]:
        if options:  # the predictor refuses unknown or bad options on an empty batch
            try:
                self.predictor.predict([], **options)
            except UserError as e:
                return [(FAILED, 400, f"bad option for model {self.predictor.name!r}: {e}")] * len(payloads)
        out: list[tuple | None] = [None] * len(payloads)
        good = []
        for i, (data, ctype) in enumerate(payloads):
            try:
                good.append((i, self._decode(data, ctype)))
            except BadRequest as e:
                out[i] = _failure(e)
        for i, r in self._each(good, lambda samples: self.predictor.predict(samples, **options)):
            out[i] = r
        return out  # type: ignore[return-value]

    def _infer(self, payloads: list[dict[str, np.ndarray]]) -> list[tuple]:
        def call(batch: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
            if len(batch) == 1:
                return [self.predictor.infer(batch[0])]
            joined = {k: np.concatenate([b[k] for b in batch]) for k in batch[0]}
            out = self.predictor.infer(joined)
            bounds = np.cumsum([0] + [len(next(iter(b.values()))) for b in batch])
            return [{k: v[bounds[i] : bounds[i + 1]] for k, v in out.items()} for i in range(len(batch))]

        return [r for _, r in self._each(list(enumerate(payloads)), call)]

    def _each(self, items: list[tuple[int, Any]], call) -> list[tuple[int, tuple]]:
        """``call`` on all the items at once; when one bad input (a word not in the vocabulary...) fails the
        batch, each item again on its own, so that only the bad one fails."""
        if not items:
            return []
        try:
            results = call([x for _, x in items])
            if len(results) != len(items):
                raise RuntimeError(f"{self.predictor.name}: {len(results)} results for {len(items)} inputs")
            return [(i, (OK, r)) for (i, _), r in zip(items, results, strict=True)]
        except UserError as e:
            if len(items) == 1:
                return [(items[0][0], _failure(e))]
            return [out for item in items for out in self._each([item], call)]
        except BaseException as e:  # noqa: BLE001
            return [(i, _failure(e)) for i, _ in items]

    def close(self) -> None:
        pass

    def alive(self) -> bool:
        return True


class Described:
    """What the server needs of a model that runs in another process: its name, task, metadata and tensors."""

    def __init__(self, name: str, task: str, meta: dict[str, Any], inputs: list, outputs: list):
        self.name, self.task, self.meta, self.inputs, self.outputs = name, task, meta, inputs, outputs


class ProcessExecutor:
    """An ``Executor`` in a process of its own: ``send`` a batch, ``receive`` the outcomes of the oldest one sent.
    The process writes on the server's stderr only (its stdout too), so that `--json`'s line stays alone."""

    def __init__(self, spec, threads: int | None):
        import dlbox

        ours, theirs = socket.socketpair()
        root = str(Path(dlbox.__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen([sys.executable, "-m", "dlbox.serve.worker", str(theirs.fileno())],
                                     pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=2, env=env)  # fmt: skip
        theirs.close()
        self.conn = Connection(ours.detach())
        self.conn.send((spec, threads))
        self.name = spec.name
        self.predictor: Described | None = None

    def wait_loaded(self) -> Described:
        """The model's description once it has loaded; its loading error (a UserError) if it failed."""
        while not self.conn.poll(0.2):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker of {self.name} exited with code {self.proc.returncode} while loading")
        try:
            msg = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"the worker of {self.name} exited while loading") from None
        if msg[0] == "error":
            _, kind, message, hint = msg
            self.close()
            raise UserError(message, hint) if kind == "UserError" else RuntimeError(f"{kind}: {message}")
        self.predictor = Described(**msg[1])
        return self.predictor

    def send(self, kind: str, payloads: list[Any], options: dict[str, Any]) -> None:
        """A batch to the process (the batcher sends the next while the process computes the one before)."""
        self.conn.send((kind, payloads, options))

    def receive(self) -> tuple[list[tuple], float]:
        """The next batch's outcomes, in the order sent, and the seconds the process spent on it."""
        return self.conn.recv()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self, timeout: float = 10.0) -> None:
        """Ask the process to stop, after the batch it is on; kill it if it does not."""
        with contextlib.suppress(OSError):
            self.conn.send(None)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.conn.close()


def start(spec, threads: int | None, worker: str):
    """An executor for ``spec``: loaded in this process (``thread``), or a process starting to load it."""
    if worker == "thread":
        from dlbox.serve import models

        return Executor(models.load(spec, threads))
    return ProcessExecutor(spec, threads)


def describe(predictor) -> dict[str, Any]:
    return {"name": predictor.name, "task": getattr(predictor, "task", ""), "meta": predictor.meta,
            "inputs": list(predictor.inputs), "outputs": list(predictor.outputs)}  # fmt: skip


def main(fd: int) -> None:
    """The worker process: load the model the server sends, then answer its batches until told to stop."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)
    conn = Connection(fd)
    spec, threads = conn.recv()
    try:
        if threads:
            import torch

            torch.set_num_threads(threads)
        from dlbox.serve import models

        predictor = models.load(spec, threads)
        gc.collect()
        gc.freeze()  # the model and its libraries stay: full collections under load skip them
        conn.send(("ready", describe(predictor)))
    except BaseException as e:  # noqa: BLE001 - told to the server, which stops with it
        conn.send(("error", "UserError" if isinstance(e, UserError) else type(e).__name__,
                   getattr(e, "message", str(e)), getattr(e, "hint", None)))  # fmt: skip
        return
    ex = Executor(predictor)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the server is gone
            return
        if msg is None:
            return
        start = time.perf_counter()
        outcomes = ex.run(*msg)
        conn.send((outcomes, time.perf_counter() - start))


if __name__ == "__main__":
    main(int(sys.argv[1]))
