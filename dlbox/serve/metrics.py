"""Prometheus metrics of `dlbox serve`, named as Triton's (``nv_inference_*``) so its dashboards read them.

The mean batch size is ``nv_inference_count / nv_inference_exec_count`` (inferences over model executions),
as with Triton. Each server has its own registry (several servers may run in one process, e.g. in tests).
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # no *_created series: Triton has none either

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        mv = ["model", "version"]
        self.success = Counter("nv_inference_request_success", "inference requests answered", mv, registry=r)
        self.failure = Counter("nv_inference_request_failure", "inference requests failed, by HTTP status",
                               [*mv, "code"], registry=r)  # fmt: skip
        self.count = Counter("nv_inference_count", "inferences performed (a batch of n counts n)", mv, registry=r)
        self.exec_count = Counter("nv_inference_exec_count", "model executions (batches)", mv, registry=r)
        self.queue = Histogram("nv_inference_queue_duration_seconds", "time a request waited for its batch",
                               mv, buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.compute = Histogram("nv_inference_compute_infer_duration_seconds", "time of one model execution",
                                 mv, buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.request = Histogram("nv_inference_request_duration_seconds", "whole request, decode to answer",
                                 mv, buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.batch = Histogram("nv_inference_batch_size", "inferences per model execution", mv,
                               buckets=BATCH_BUCKETS, registry=r)  # fmt: skip
        self.pending = Gauge("nv_inference_pending_request_count", "requests waiting in the model's queue", mv,
                             registry=r)  # fmt: skip
        self.loaded = Gauge("nv_model_loaded", "1 when the model version is loaded and ready", mv, registry=r)
        self.http = Counter("dlbox_http_requests", "HTTP requests by route and status code",
                            ["method", "route", "code"], registry=r)  # fmt: skip

    def render(self) -> bytes:
        return generate_latest(self.registry)
