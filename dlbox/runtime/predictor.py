"""The contract between a task's inference code and anything that serves it (``dlbox serve``, notebooks).

Each task's ``inference.py`` offers ``predictor(source, name=None) -> Predictor`` for anything it can load
(a run directory, a checkpoint, an export written by ``dlbox.runtime.export``, ``hub:NAME``). A server only
talks to this protocol: it never needs to know a task's preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

# KServe Open Inference Protocol v2 datatypes <-> numpy
V2_DTYPES = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "BYTES": np.object_,
}  # fmt: skip


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor: v2 name, datatype (``FP32``...) and shape, ``-1`` for a free axis (the batch)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass
class Sample:
    """One decoded request input (an image array, a waveform, a word...), with what postprocessing needs
    (the original image size, the sample rate)."""

    data: Any
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Predictor(Protocol):
    name: str  # the model's name (a run's or file's name unless given)
    task: str  # "classify", "detect", "face", "asr", "text", "caffe"
    meta: dict[str, Any]  # the export's metadata (classes, input facts, preprocessing, versions)
    inputs: list[TensorSpec]  # tensor-level inputs (v2 /infer), batch axis -1
    outputs: list[TensorSpec]

    def decode(self, payload: bytes, content_type: str | None = None, **options: Any) -> Sample:
        """One raw request body (image, WAV, word) -> a sample; a bad payload raises ``UserError``."""

    def predict(self, samples: list[Sample], **options: Any) -> list[dict[str, Any]]:
        """Batched: one JSON-able dict per sample, the same as the CLI's ``predict --json`` gives for it."""

    def infer(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Tensor level (v2 /infer): a batch of inputs -> a batch of outputs."""
