"""KServe Open Inference Protocol v2 over HTTP: tensors in and out, JSON or the binary tensor data extension.

Binary extension (as KServe and Triton): the body is a JSON header of ``Inference-Header-Content-Length`` bytes
followed by the raw tensors, in the order of the inputs whose ``parameters.binary_data_size`` says how many bytes
are theirs (little-endian, row-major; BYTES elements each prefixed by a 4-byte little-endian length). An output is
answered in binary when it asks ``parameters.binary_data: true`` or the request asks
``parameters.binary_data_output: true``.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from dlbox.runtime.predictor import V2_DTYPES, TensorSpec

HEADER = "inference-header-content-length"
NP_TO_V2 = {np.dtype(v): k for k, v in V2_DTYPES.items() if k != "BYTES"}


class BadRequest(Exception):
    """A request the protocol refuses: ``status`` (4xx) and a message naming the problem."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _bytes_elements(raw: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise BadRequest("BYTES tensor: a truncated length prefix")
        (n,) = struct.unpack_from("<I", raw, i)
        out.append(raw[i + 4 : i + 4 + n])
        i += 4 + n
    if i != len(raw):
        raise BadRequest("BYTES tensor: the lengths overrun the data")
    return out


def _check_shape(spec: TensorSpec, shape: list[int]) -> None:
    if len(shape) != len(spec.shape) or any(want not in (-1, got) for want, got in zip(spec.shape, shape, strict=True)):
        raise BadRequest(f"input {spec.name!r}: shape {shape}, the model takes {list(spec.shape)} (-1: any)")


def parse_request(body: bytes, header_length: str | None, specs: list[TensorSpec]) -> tuple[dict, dict[str, np.ndarray]]:
    """The request's JSON and its inputs as arrays, each checked against the model's input specs."""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise BadRequest(f"{HEADER} is not a number") from None
        if not 0 <= n <= len(body):
            raise BadRequest(f"{HEADER} {n} is outside the body's {len(body)} bytes")
        head, binary = body[:n], body[n:]
    else:
        head, binary = body, b""
    try:
        req = json.loads(head)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"malformed JSON: {e}") from None
    if not isinstance(req, dict) or not isinstance(req.get("inputs"), list) or not req["inputs"]:
        raise BadRequest("the request needs a non-empty 'inputs' list")
    by_name = {s.name: s for s in specs}
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for item in req["inputs"]:
        if not isinstance(item, dict) or not {"name", "shape", "datatype"} <= set(item):
            raise BadRequest("each input needs 'name', 'shape' and 'datatype'")
        name, shape, dtype = item["name"], item["shape"], item["datatype"]
        if name not in by_name:
            raise BadRequest(f"unknown input {name!r}; the model takes {', '.join(by_name)}")
        spec = by_name[name]
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise BadRequest(f"input {name!r}: shape must be a list of non-negative integers")
        if dtype != spec.datatype:
            raise BadRequest(f"input {name!r}: datatype {dtype!r}, the model takes {spec.datatype}")
        _check_shape(spec, shape)
        count = int(np.prod(shape)) if shape else 1
        params = item.get("parameters") or {}
        if "binary_data_size" in params:
            size = params["binary_data_size"]
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise BadRequest(f"input {name!r}: binary_data_size {size} overruns the {len(binary)} binary bytes")
            raw = binary[offset : offset + size]
            offset += size
            if dtype == "BYTES":
                arr = np.array(_bytes_elements(raw), dtype=object)
            else:
                np_dtype = np.dtype(V2_DTYPES[dtype]).newbyteorder("<")
                if size != count * np_dtype.itemsize:
                    raise BadRequest(f"input {name!r}: {size} bytes, shape {shape} of {dtype} needs {count * np_dtype.itemsize}")
                arr = np.frombuffer(raw, dtype=np_dtype).astype(np_dtype.newbyteorder("="))
        elif "data" in item:
            try:
                if dtype == "BYTES":
                    arr = np.array([s.encode() if isinstance(s, str) else bytes(s) for s in np.ravel(item["data"])],
                                   dtype=object)  # fmt: skip
                else:
                    arr = np.asarray(item["data"], dtype=V2_DTYPES[dtype])
            except (ValueError, TypeError) as e:
                raise BadRequest(f"input {name!r}: data is not {dtype}: {e}") from None
        else:
            raise BadRequest(f"input {name!r} has neither 'data' nor parameters.binary_data_size")
        if arr.size != count:
            raise BadRequest(f"input {name!r}: {arr.size} values, shape {shape} needs {count}")
        arrays[name] = arr.reshape(shape)
    missing = [s.name for s in specs if s.name not in arrays]
    if missing:
        raise BadRequest(f"missing input(s): {', '.join(missing)}")
    if offset != len(binary):
        raise BadRequest(f"{len(binary) - offset} binary bytes belong to no input")
    batch = {a.shape[0] if a.ndim else None for a in arrays.values()}
    if len(batch) != 1 or None in batch:
        raise BadRequest("all inputs need the same first (batch) dimension")
    return req, arrays


def _datatype(arr: np.ndarray) -> str:
    return "BYTES" if arr.dtype == object else NP_TO_V2.get(arr.dtype, "FP32")


def encode_response(req: dict, outputs: dict[str, np.ndarray], model: str, version: str) -> tuple[bytes, dict[str, str]]:
    """(body, extra headers): JSON, or the JSON header plus binary outputs where the request asked for them."""
    wanted = req.get("outputs")
    names = [o["name"] for o in wanted if isinstance(o, dict) and "name" in o] if isinstance(wanted, list) else None
    if names:
        unknown = [n for n in names if n not in outputs]
        if unknown:
            raise BadRequest(f"unknown output(s) {', '.join(unknown)}; the model gives {', '.join(outputs)}")
    all_binary = bool((req.get("parameters") or {}).get("binary_data_output"))
    per_output = {o["name"]: bool((o.get("parameters") or {}).get("binary_data")) for o in wanted or [] if isinstance(o, dict)}
    items, blobs = [], []
    for name in names or list(outputs):
        arr = outputs[name]
        item: dict[str, Any] = {"name": name, "datatype": _datatype(arr), "shape": list(arr.shape)}
        if per_output.get(name, all_binary):
            if arr.dtype == object:
                raw = b"".join(struct.pack("<I", len(b)) + b for b in (x if isinstance(x, bytes) else str(x).encode()
                                                                        for x in arr.ravel()))  # fmt: skip
            else:
                raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
            item["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            flat = arr.ravel()
            item["data"] = [x.decode() if isinstance(x, bytes) else x for x in flat] if arr.dtype == object else flat.tolist()
        items.append(item)
    doc: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": items}
    if "id" in req:
        doc["id"] = req["id"]
    head = json.dumps(doc).encode()
    if not blobs:
        return head, {"content-type": "application/json"}
    return head + b"".join(blobs), {"content-type": "application/octet-stream", HEADER: str(len(head))}
