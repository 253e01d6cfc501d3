"""Dynamic batching: one worker thread per model coalesces queued requests into one model call.

The policy, as Triton's dynamic batcher with a twist for latency: the worker takes the first waiting request and
everything already queued behind it (up to ``max_batch``); it waits up to ``max_delay`` for more only while
other requests of this model are still being decoded (announced, not yet queued). So a lone client never waits,
and under load the requests that queue while the model computes form the next batch. Requests of one batch
share their kind (task-level ``predict`` or tensor-level ``infer``) and options (e.g. ``topk``); tensor inputs
also their non-batch shapes. The queue is bounded: ``submit`` raises ``QueueFull`` (the server answers 503).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger("dlbox.serve")
_STOP = object()


class QueueFull(Exception):
    pass


@dataclass
class Job:
    kind: str  # "predict" (payload: a Sample) or "infer" (payload: dict of arrays with n rows)
    payload: Any
    key: Any = None  # requests batch together only with equal keys
    n: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    future: cf.Future = field(default_factory=cf.Future)
    enqueued: float = 0.0


class Batcher:
    def __init__(self, predictor, max_batch: int = 16, max_delay_s: float = 0.002, max_queue: int = 256,
                 metrics=None, version: str = "1"):  # fmt: skip
        self.predictor = predictor
        self.max_batch, self.max_delay_s = max_batch, max_delay_s
        self.q: queue.Queue = queue.Queue(max_queue)
        self.metrics, self.labels = metrics, (predictor.name, version)
        self._announced = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"serve-{predictor.name}-{version}", daemon=True)
        self._thread.start()

    # -- request side (event loop) --
    def announce(self) -> None:
        """A request of this model is being decoded: the worker may wait for it to join the next batch."""
        with self._lock:
            self._announced += 1

    def withdraw(self) -> None:
        with self._lock:
            self._announced -= 1

    def submit(self, job: Job, withdraw: bool = False) -> cf.Future:
        """Queue ``job``; ``withdraw``: it is the last of an announced request (in one step, so that the worker
        never waits for a request that is already in the queue)."""
        job.enqueued = time.perf_counter()
        with self._lock:
            if withdraw:
                self._announced -= 1
            try:
                self.q.put_nowait(job)
            except queue.Full:
                raise QueueFull from None
        if self.metrics:
            self.metrics.pending.labels(*self.labels).set(self.q.qsize())
        return job.future

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop the worker."""
        self.q.put(_STOP)
        self._thread.join(timeout)

    # -- worker side --
    def _compatible(self, first: Job, other: Job, n: int) -> bool:
        return other.kind == first.kind and other.key == first.key and n + other.n <= self.max_batch

    def _loop(self) -> None:
        held = None
        while True:
            job = held if held is not None else self.q.get()
            held = None
            if job is _STOP:
                return
            batch, n = [job], job.n
            deadline = time.perf_counter() + self.max_delay_s
            while n < self.max_batch:
                try:
                    nxt = self.q.get_nowait()
                except queue.Empty:
                    with self._lock:
                        waiting = self._announced > 0
                    left = deadline - time.perf_counter()
                    if not waiting or left <= 0:
                        break
                    try:
                        nxt = self.q.get(timeout=min(left, 0.0005))
                    except queue.Empty:
                        continue
                if nxt is _STOP or not self._compatible(job, nxt, n):
                    held = nxt
                    break
                batch.append(nxt)
                n += nxt.n
            self._run(batch)

    def _run(self, batch: list[Job]) -> None:
        start = time.perf_counter()
        batch = [j for j in batch if j.future.set_running_or_notify_cancel()]  # timed-out requests are dropped
        m = self.metrics
        if m:
            m.pending.labels(*self.labels).set(self.q.qsize())
            for j in batch:
                m.queue.labels(*self.labels).observe(start - j.enqueued)
        if batch:
            self._execute(batch)

    def _call(self, batch: list[Job]) -> list[Any]:
        """One model call for the batch; its answers, one per job."""
        first = batch[0]
        if first.kind == "call":  # one request's samples together (a face pair to verify): never joined
            return [self.predictor.predict(first.payload, **first.options)]
        if first.kind == "predict":
            results = self.predictor.predict([j.payload for j in batch], **first.options)
            if len(results) != len(batch):
                raise RuntimeError(f"{self.predictor.name}: {len(results)} results for {len(batch)} inputs")
            return results
        names = list(first.payload)
        joined = {k: np.concatenate([j.payload[k] for j in batch]) if len(batch) > 1 else first.payload[k] for k in names}
        out = self.predictor.infer(joined)
        bounds = np.cumsum([0] + [j.n for j in batch])
        return [{k: v[bounds[i] : bounds[i + 1]] for k, v in out.items()} for i in range(len(batch))]

    def _execute(self, batch: list[Job]) -> None:
        start, m = time.perf_counter(), self.metrics
        try:
            results = self._call(batch)
        except BaseException as e:
            if len(batch) > 1 and _is_user_error(e):  # one bad input (a word not in the vocabulary...): alone
                for j in batch:  # each job again on its own, so that only the bad one fails
                    self._execute([j])
                return
            for j in batch:  # every waiting request hears of it; the worker goes on
                j.future.set_exception(e)
            if not _is_user_error(e):
                log.error("%s: inference failed: %s: %s", self.predictor.name, type(e).__name__, str(e)[:300])
            return
        finally:
            if m:
                n = sum(j.n for j in batch)
                m.compute.labels(*self.labels).observe(time.perf_counter() - start)
                m.exec_count.labels(*self.labels).inc()
                m.count.labels(*self.labels).inc(n)
                m.batch.labels(*self.labels).observe(n)
        for j, r in zip(batch, results, strict=True):
            j.future.set_result(r)


def _is_user_error(e: BaseException) -> bool:
    from dlbox.base.errors import UserError

    return isinstance(e, UserError)
