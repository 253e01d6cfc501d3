"""The protobuf wire format's base-128 varints, read by both foreign-format readers (Caffe's .caffemodel,
TensorFlow's tensor-bundle .index) without the protobuf runtime."""

from __future__ import annotations


class WireError(ValueError):
    """Bytes that are not valid protobuf wire format (truncated or corrupt)."""


def read_varint(buf, pos: int) -> tuple[int, int]:
    """(value, position after it) of the varint at ``buf[pos]``."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise WireError("varint too long")
