"""The .caffemodel file: a binary NetParameter (protobuf wire format), read and written without protobuf.

Only the fields weights need are decoded (layer names, types and blobs); everything else in the file (the
layer parameters a caffemodel repeats from its prototxt) is skipped by wire type. The encoder writes the
same subset, which OpenCV and BVLC Caffe read as a normal caffemodel.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from dlbox.base.errors import UserError, not_found
from dlbox.convert.protowire import WireError, read_varint

# message -> field number -> (name, kind). Field numbers are caffe.proto's.
SCHEMA: dict[str, dict[int, tuple[str, str]]] = {
    "NetParameter": {1: ("name", "string"), 100: ("layer", "LayerParameter"), 2: ("layers", "V1LayerParameter")},
    "LayerParameter": {1: ("name", "string"), 2: ("type", "string"), 3: ("bottom", "string"), 4: ("top", "string"),
                       7: ("blobs", "BlobProto")},
    # Old caffemodels (before 2015): `layers` with an enum type; only names and blobs are needed.
    "V1LayerParameter": {4: ("name", "string"), 5: ("type", "int"), 6: ("blobs", "BlobProto")},
    "BlobProto": {1: ("num", "int"), 2: ("channels", "int"), 3: ("height", "int"), 4: ("width", "int"),
                  5: ("data", "float"), 7: ("shape", "BlobShape"), 8: ("double_data", "double")},
    "BlobShape": {1: ("dim", "int")},
    # One record of a Data layer's LMDB: raw uint8 pixels (C, H, W), float_data instead, or an encoded image.
    "Datum": {1: ("channels", "int"), 2: ("height", "int"), 3: ("width", "int"), 4: ("data", "bytes"),
              5: ("label", "int"), 6: ("float_data", "float"), 7: ("encoded", "int")},
}  # fmt: skip


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def decode(buf: bytes | memoryview, message: str = "NetParameter") -> dict[str, list]:
    """Decode ``buf`` as ``message``: field name -> list of values; numbers as numpy arrays for packed floats."""
    buf = memoryview(buf)
    schema = SCHEMA[message]
    out: dict[str, list] = {}
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        name, kind = schema.get(number, (None, None))
        if wire == 0:
            value, pos = read_varint(buf, pos)
            if name:
                out.setdefault(name, []).append(_signed(value))
        elif wire == 1:
            if pos + 8 > len(buf):
                raise WireError("truncated 64-bit field")
            if kind == "double":
                out.setdefault(name, []).append(struct.unpack_from("<d", buf, pos)[0])
            pos += 8
        elif wire == 5:
            if pos + 4 > len(buf):
                raise WireError("truncated 32-bit field")
            if kind == "float":
                out.setdefault(name, []).append(struct.unpack_from("<f", buf, pos)[0])
            pos += 4
        elif wire == 2:
            size, pos = read_varint(buf, pos)
            if pos + size > len(buf):
                raise WireError(f"field {number} runs past the end of the data ({size} bytes)")
            chunk = buf[pos : pos + size]
            pos += size
            if name is None:
                continue
            if kind == "bytes":
                out.setdefault(name, []).append(bytes(chunk))
            elif kind == "string":
                out.setdefault(name, []).append(bytes(chunk).decode("utf-8", "replace"))
            elif kind == "float":  # packed
                if size % 4:
                    raise WireError("packed floats of a size not divisible by 4")
                out.setdefault(name, []).append(np.frombuffer(chunk, dtype="<f4").copy())
            elif kind == "double":
                out.setdefault(name, []).append(np.frombuffer(chunk, dtype="<f8").copy())
            elif kind == "int":  # packed varints
                p, values = 0, []
                while p < len(chunk):
                    v, p = read_varint(chunk, p)
                    values.append(_signed(v))
                out.setdefault(name, []).extend(values)
            else:
                out.setdefault(name, []).append(decode(chunk, kind))
        else:
            raise WireError(f"unsupported wire type {wire} for field {number}")
    return out


def blob_array(blob: dict[str, list]) -> np.ndarray:
    """A BlobProto as a float32 array of its shape (the 4-D num/channels/height/width form of old files too)."""
    parts = blob.get("data") or blob.get("double_data") or []
    data = np.concatenate([np.atleast_1d(np.asarray(p, dtype=np.float32)) for p in parts]) if parts else np.zeros(0, np.float32)
    if blob.get("shape"):
        shape = tuple(blob["shape"][-1].get("dim", []))
    else:
        shape = tuple(blob.get(k, [1])[-1] for k in ("num", "channels", "height", "width"))
    if int(np.prod(shape)) != data.size:
        raise WireError(f"a blob of shape {shape} holds {data.size} values")
    return data.reshape(shape)


def read_caffemodel(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Layer name -> its blobs (float32 arrays), in file order."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{str(p)!r} {not_found(p)}", "pass the path of a .caffemodel file")
    try:
        net = decode(p.read_bytes())
        layers = net.get("layer", []) + net.get("layers", [])
        weights = {}
        for layer in layers:
            name = (layer.get("name") or [""])[-1]
            weights[name] = [blob_array(b) for b in layer.get("blobs", [])]
    except (WireError, UnicodeDecodeError) as e:
        raise UserError(f"{p} is not a valid .caffemodel ({e})", "the file may be truncated or not Caffe weights") from None
    if not layers:
        raise UserError(f"{p} holds no layers", "is it a .caffemodel (binary), not a .prototxt or a .solverstate?")
    return weights


# --- encoding ------------------------------------------------------------------------------------------
def _enc_varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _enc_varint(number << 3 | 2) + _enc_varint(len(payload)) + payload


def encode_blob(array: np.ndarray) -> bytes:
    a = np.ascontiguousarray(array, dtype="<f4")
    shape = b"".join(_enc_varint(int(d)) for d in a.shape)
    return _field(7, _field(1, shape)) + _field(5, a.tobytes())


def encode_net(name: str, layers: list[tuple[str, str, list[np.ndarray]]]) -> bytes:
    """A NetParameter with one LayerParameter (name, type, blobs) per entry."""
    body = _field(1, name.encode())
    for lname, ltype, blobs in layers:
        layer = _field(1, lname.encode()) + _field(2, ltype.encode()) + b"".join(_field(7, encode_blob(b)) for b in blobs)
        body += _field(100, layer)
    return body


def encode_datum(label: int, pixels: np.ndarray | None = None, encoded: bytes | None = None) -> bytes:
    """A Datum of ``pixels`` (uint8, (C, H, W)) or of an ``encoded`` image file's bytes, as Caffe's
    convert_imageset writes them."""
    body = b""
    if pixels is not None:
        c, h, w = pixels.shape
        body = b"".join(_enc_varint(n << 3) + _enc_varint(int(v)) for n, v in ((1, c), (2, h), (3, w)))
        body += _field(4, np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    else:
        body = _field(4, encoded or b"")
    body += _enc_varint(5 << 3) + _enc_varint(int(label))
    if encoded is not None:
        body += _enc_varint(7 << 3) + _enc_varint(1)
    return body


def read_blobproto(path: str | Path) -> np.ndarray:
    """A binaryproto file (a BlobProto: what Caffe's compute_image_mean writes as mean_file)."""
    try:
        return blob_array(decode(Path(path).read_bytes(), "BlobProto"))
    except (OSError, WireError) as e:
        raise UserError(f"cannot read {path} as a Caffe binaryproto ({e})", "pass the mean.binaryproto that "
                        "compute_image_mean wrote") from None  # fmt: skip


def write_caffemodel(path: str | Path, name: str, layers: list[tuple[str, str, list[np.ndarray]]]) -> None:
    from dlbox.base.fileio import atomic_write

    data = encode_net(name, layers)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
