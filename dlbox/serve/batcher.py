"""Dynamic batching: per model, a thread coalesces queued requests into one call of the model's executor.

The policy, as Triton's dynamic batcher with a twist for latency: a batch is the first waiting request and
everything queued behind it that can join it (up to ``max_batch``); when the model is idle the batcher waits up
to ``max_delay`` for more only while other requests of this model are still being read (announced, not yet
queued). So a lone client never waits, and under load the requests that queue while the model computes form the
next batch. Requests of one batch share their kind (task-level ``predict``, a face pair's ``call``, tensor-level
``infer``) and options (e.g. ``topk``); tensor inputs also their non-batch shapes.

A model in a worker process (dlbox.serve.worker) is fed one batch ahead: while it computes a batch, the next one
is sent as soon as it is at least as large (or full), so that the model goes from one batch to the next without
waiting for the server's round trip, and batches never shrink by being sent early. Answers come back on a
receiving thread and are settled on the event loop, one wake-up per batch. A model in a thread of the server is
called batch by batch.

The queue is bounded: ``submit`` raises ``QueueFull`` (the server answers 503 with Retry-After).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from dlbox.serve.protocol import BadRequest
from dlbox.serve.worker import FAILED, OK

log = logging.getLogger("dlbox.serve")
AHEAD = 2  # batches a worker process holds at most: the one it computes, the next one waiting in its socket


class QueueFull(Exception):
    pass


class InferenceFailed(Exception):
    """The model failed on a batch for a reason that is not the request's (logged; the request gets 500)."""


@dataclass
class Job:
    kind: str  # "predict" (payload: (bytes, content type)), "call" (a list of those) or "infer" (arrays, n rows)
    payload: Any
    key: Any = None  # requests batch together only with equal keys
    n: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    future: asyncio.Future | None = None  # made by ``submit`` on the caller's event loop
    enqueued: float = 0.0


class Batcher:
    def __init__(self, executor, name: str, max_batch: int = 16, max_delay_s: float = 0.002, max_queue: int = 256,
                 metrics=None, version: str = "1"):  # fmt: skip
        self.executor, self.name = executor, name
        self.max_batch, self.max_delay_s, self.max_queue = max_batch, max_delay_s, max_queue
        self.metrics, self.labels = metrics, (name, version)
        self.pipelined = hasattr(executor, "send")  # a worker process: send / receive, one batch ahead
        self._jobs: collections.deque[Job] = collections.deque()
        self._inflight: collections.deque[tuple[list[Job], int]] = collections.deque()  # sent, not answered
        self._rows = 0  # rows of the queued jobs
        self._announced = 0
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name=f"serve-{name}-{version}", daemon=True)
        self._thread.start()
        self._receiver = None
        if self.pipelined:
            self._receiver = threading.Thread(target=self._receive, name=f"serve-{name}-{version}-answers", daemon=True)
            self._receiver.start()

    # -- request side (event loop) --
    def announce(self) -> None:
        """A request of this model is being read: the batcher may wait for it to join the next batch."""
        with self._cond:
            self._announced += 1

    def withdraw(self) -> None:
        with self._cond:
            self._announced -= 1
            self._cond.notify_all()

    def submit(self, job: Job, withdraw: bool = False) -> asyncio.Future:
        """Queue ``job`` (from the event loop); its future, settled on that loop. ``withdraw``: it is the last of
        an announced request (in one step, so that the batcher never waits for a request already queued)."""
        job.enqueued = time.perf_counter()
        job.future = asyncio.get_running_loop().create_future()
        with self._cond:
            if withdraw:
                self._announced -= 1
            if len(self._jobs) >= self.max_queue or self._closing:
                self._cond.notify_all()
                raise QueueFull
            self._jobs.append(job)
            self._rows += job.n
            if self._can_send():  # else the batching thread sleeps on: it would only look and wait again
                self._cond.notify_all()
            waiting = len(self._jobs)
        if self.metrics:
            self.metrics.pending.labels(*self.labels).set(waiting)
        return job.future

    def _can_send(self) -> bool:
        """Whether queued requests may go to the model now (``_take``'s rule, on the queue's rows), so that the
        batching thread is woken only then: the model idle, or the queue as large as the batch before it."""
        busy = len(self._inflight)
        return busy == 0 or (busy < AHEAD and self._rows >= min(self.max_batch, self._inflight[-1][1]))

    def qsize(self) -> int:
        """Requests waiting (not yet sent to the model)."""
        return len(self._jobs)

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued and in flight, then stop the model's executor."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._inflight and self._cond.wait(max(0.0, deadline - time.monotonic())):
                pass
        self.executor.close()
        if self._receiver:
            self._receiver.join(timeout)

    # -- the batching thread --
    def _prefix(self) -> int:
        """How many queued jobs, from the first, form one batch (same kind and key, at most max_batch rows)."""
        first, n, k = self._jobs[0], 0, 0
        for j in self._jobs:
            if j.kind != first.kind or j.key != first.key or (k and n + j.n > self.max_batch):
                break
            n, k = n + j.n, k + 1
        return k

    def _take(self) -> list[Job] | None:
        """The next batch to send (under the lock); None once closing with nothing left."""
        deadline = None
        while True:
            if not self._jobs:
                if self._closing:
                    return None
                self._cond.wait()
                continue
            k = self._prefix()
            rows = sum(self._jobs[i].n for i in range(k))
            busy = len(self._inflight)
            if busy == 0:  # the model is idle: send, unless announced requests may still join within max_delay
                now = time.perf_counter()
                deadline = deadline or now + self.max_delay_s
                if rows >= self.max_batch or not self._announced or self._closing or now >= deadline:
                    return self._pop(k, rows)
                self._cond.wait(deadline - now)
            elif busy < AHEAD and rows >= min(self.max_batch, self._inflight[-1][1]):
                return self._pop(k, rows)  # waits in the worker's socket: no idle gap
            else:
                self._cond.wait()  # woken by a new request or an answer

    def _pop(self, k: int, rows: int) -> list[Job]:
        self._rows -= rows
        return [self._jobs.popleft() for _ in range(k)]

    def _loop(self) -> None:
        while True:
            with self._cond:
                batch = self._take()
                waiting = len(self._jobs)
            if batch is None:
                return
            start = time.perf_counter()
            batch = [j for j in batch if not j.future.done()]  # timed-out (cancelled) requests are dropped
            m = self.metrics
            if m:
                m.pending.labels(*self.labels).set(waiting)
                for j in batch:
                    m.queue.labels(*self.labels).observe(start - j.enqueued)
            if not batch:
                continue
            first, payloads = batch[0], [j.payload for j in batch]
            if not self.pipelined:
                try:
                    outcomes = self.executor.run(first.kind, payloads, first.options)
                except Exception as e:  # noqa: BLE001 - every waiting request hears of it
                    outcomes = _failed(e, len(batch))
                self._finish(batch, outcomes, time.perf_counter() - start)
                continue
            with self._cond:
                self._inflight.append((batch, sum(j.n for j in batch)))
            try:
                self.executor.send(first.kind, payloads, first.options)
            except Exception as e:  # noqa: BLE001 - the worker is gone
                with self._cond:
                    self._inflight.remove(next(x for x in self._inflight if x[0] is batch))
                    self._cond.notify_all()
                self._finish(batch, _failed(e, len(batch)), 0.0)

    # -- the answers --
    def _receive(self) -> None:
        """Answers of the worker process, in the order of the batches sent."""
        while True:
            try:
                outcomes, seconds = self.executor.receive()
            except Exception as e:  # noqa: BLE001 - the worker is gone (or was stopped): fail what it held
                with self._cond:
                    lost = list(self._inflight)
                    self._inflight.clear()
                    self._cond.notify_all()
                for batch, _ in lost:
                    self._finish(batch, _failed(e, len(batch)), 0.0)
                return
            with self._cond:
                batch, _ = self._inflight.popleft()
                self._cond.notify_all()
            self._finish(batch, outcomes, seconds)

    def _finish(self, batch: list[Job], outcomes: list[tuple], seconds: float) -> None:
        m = self.metrics
        if m:
            m.compute.labels(*self.labels).observe(seconds)
            m.exec_count.labels(*self.labels).inc()
            m.count.labels(*self.labels).inc(sum(j.n for j in batch))
            m.batch.labels(*self.labels).observe(sum(j.n for j in batch))
        for o in outcomes:
            if o[0] != OK and o[1] >= 500:
                log.error("%s: inference failed: %s", self.name, o[2])
        try:
            batch[0].future.get_loop().call_soon_threadsafe(_settle, batch, outcomes)  # one wake-up per batch
        except RuntimeError:  # the event loop has closed: nobody waits for these any more
            pass


def _failed(e: BaseException, n: int) -> list[tuple]:
    return [(FAILED, 500, f"{type(e).__name__}: {e}")] * n


def _settle(batch: list[Job], outcomes: list[tuple]) -> None:
    """On the event loop: each job's outcome to its future (unless its request timed out meanwhile)."""
    for j, o in zip(batch, outcomes, strict=True):
        if j.future.done():
            continue
        if o[0] == OK:
            j.future.set_result(o[1])
        elif o[1] < 500:
            j.future.set_exception(BadRequest(o[2], o[1]))
        else:
            j.future.set_exception(InferenceFailed(o[2]))
