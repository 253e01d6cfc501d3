"""The metadata every dlbox export carries, under one key (docs/export.md): ``ExportMeta`` (schema 1)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from dlbox import __version__

SCHEMA_VERSION = 1
META_KEY = "dlbox"  # ONNX metadata_props key and OpenVINO rt_info key
TORCHSCRIPT_META = "dlbox.json"  # TorchScript _extra_files name
LEGACY_KEYS = ("dlbox_face",)  # face exports before schema 1 kept their metadata here
OPSET = 17
TOLERANCE = 1e-4  # parity: max |export - eager| over every output element (fp32)


@dataclass
class InputFacts:
    """One input of the exported graph: name, shape (-1 for a free axis, axis 0 is the batch when dynamic),
    numpy dtype, axis layout (``NCHW``, ``NTC``...), and for images the square input size and normalisation."""

    name: str
    shape: list[int]
    dtype: str = "float32"
    layout: str = ""
    size: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None


@dataclass
class ExportMeta:
    """What is stored under the ``dlbox`` key of every export (schema ``SCHEMA_VERSION``).

    ``preprocessing``: how raw data becomes the inputs (task-specific, e.g. ``{"resize": "letterbox",
    "scale": 1/255}``); ``extra``: the task's other facts (thresholds, hyperparameters, architecture).
    ``outputs``: ``[{"name", "shape", "dtype"}]``; ``weights_sha256``: see ``weights_sha256``."""

    task: str
    model_name: str
    inputs: list[InputFacts]
    outputs: list[dict[str, Any]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    dynamic_batch: bool = True
    format: str = ""
    weights_sha256: str = ""
    dlbox_version: str = __version__
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExportMeta:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["inputs"] = [i if isinstance(i, InputFacts) else InputFacts(**i) for i in d.get("inputs", [])]
        return cls(**d)


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def image_input(name: str, size: int, mean=None, std=None, batch: int = -1) -> InputFacts:
    """An (N, 3, S, S) float32 image input."""
    return InputFacts(name, [batch, 3, size, size], "float32", "NCHW", size,
                      None if mean is None else [float(v) for v in mean],
                      None if std is None else [float(v) for v in std])  # fmt: skip
