"""TensorFlow checkpoints read without TensorFlow: the V2 tensor bundle and the V1 single-file format.

Both are LevelDB-style SSTables (blocks of prefix-compressed key/value entries, an index block, a 48-byte
footer ending in a magic number):

- V2 (``model.ckpt.index`` + ``model.ckpt.data-00000-of-00001``): the index maps each variable name to a
  ``BundleEntryProto`` (dtype, shape, shard, offset, size); the raw little-endian bytes sit in the data shard.
- V1 (one ``model.ckpt`` file, TF-Slim's 2016 checkpoints): key "" holds the metadata, every other key a
  ``SavedSlice`` (name, slice extents, a ``TensorProto`` with the values).

The protobuf messages are decoded by hand (a few fields each), so nothing but numpy is needed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dlbox.base.errors import UserError
from dlbox.convert.protowire import read_varint
from dlbox.models.weights import TF_FOOTER_SIZE, TF_TABLE_MAGIC, is_tf_checkpoint

TABLE_MAGIC = TF_TABLE_MAGIC
FOOTER_SIZE = TF_FOOTER_SIZE
# tensorflow/core/framework/types.proto -> numpy (DT_STRING and resource types are skipped: not weights)
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
          10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}  # fmt: skip
DT_BFLOAT16 = 14


class CorruptCheckpoint(UserError):
    pass


def _corrupt(path: Path, why: str) -> CorruptCheckpoint:
    return CorruptCheckpoint(f"{str(path)!r} is not a readable TensorFlow checkpoint: {why}",
                             "download or copy it again (it may be truncated)")  # fmt: skip


# --- protobuf wire format -----------------------------------------------------------------------------


def _fields(buf: bytes) -> dict[int, list]:
    """field number -> values (ints for varint/fixed, bytes for length-delimited)."""
    out: dict[int, list] = {}
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = read_varint(buf, pos)
        elif wire == 1:
            val, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            n, pos = read_varint(buf, pos)
            if pos + n > len(buf):
                raise IndexError("field runs past the end")
            val, pos = buf[pos : pos + n], pos + n
        elif wire == 5:
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unknown wire type {wire}")
        out.setdefault(num, []).append(val)
    return out


def _one(fields: dict[int, list], num: int, default=0):
    return fields[num][-1] if num in fields else default


def _shape(buf: bytes) -> tuple[int, ...]:
    """TensorShapeProto: repeated Dim (field 2) with size (field 1)."""
    return tuple(_one(_fields(d), 1) for d in _fields(buf).get(2, []))


# --- SSTable --------------------------------------------------------------------------------------------


class Table:
    """A LevelDB-format table held in memory; ``items()`` yields (key, value) in key order."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.path = data, path
        if len(data) < FOOTER_SIZE or struct.unpack("<Q", data[-8:])[0] != TABLE_MAGIC:
            raise _corrupt(path, "no table footer (truncated, or not a checkpoint file)")
        footer = data[-FOOTER_SIZE:]
        try:
            _, pos = read_varint(footer, 0)  # metaindex offset
            _, pos = read_varint(footer, pos)  # metaindex size
            off, pos = read_varint(footer, pos)
            size, _ = read_varint(footer, pos)
        except (IndexError, ValueError):
            raise _corrupt(path, "damaged table footer") from None
        self.index = (off, size)

    def _block(self, offset: int, size: int) -> bytes:
        if offset + size + 5 > len(self.data) - FOOTER_SIZE:
            raise _corrupt(self.path, "a block lies past the end of the file")
        kind = self.data[offset + size]
        raw = self.data[offset : offset + size]
        if kind == 0:
            return raw
        if kind == 1:
            return _snappy(raw, self.path)
        raise _corrupt(self.path, f"unknown block compression {kind}")

    def _entries(self, block: bytes) -> Iterator[tuple[bytes, bytes]]:
        try:
            restarts = struct.unpack("<I", block[-4:])[0]
            end = len(block) - 4 - 4 * restarts
            pos, key = 0, b""
            while pos < end:
                shared, pos = read_varint(block, pos)
                unshared, pos = read_varint(block, pos)
                vlen, pos = read_varint(block, pos)
                key = key[:shared] + block[pos : pos + unshared]
                pos += unshared
                yield key, block[pos : pos + vlen]
                pos += vlen
        except (IndexError, ValueError, struct.error):
            raise _corrupt(self.path, "damaged block") from None

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for _, handle in self._entries(self._block(*self.index)):
            try:
                off, pos = read_varint(handle, 0)
                size, _ = read_varint(handle, pos)
            except (IndexError, ValueError):
                raise _corrupt(self.path, "damaged block handle") from None
            yield from self._entries(self._block(off, size))


def _snappy(src: bytes, path: Path) -> bytes:
    """Raw snappy decompression (LevelDB's block compression 1)."""
    try:
        n, pos = read_varint(src, 0)
        out = bytearray()
        while pos < len(src):
            tag = src[pos]
            pos += 1
            kind = tag & 3
            if kind == 0:  # literal
                ln = tag >> 2
                if ln >= 60:
                    extra = ln - 59
                    ln = int.from_bytes(src[pos : pos + extra], "little")
                    pos += extra
                ln += 1
                out += src[pos : pos + ln]
                pos += ln
                continue
            if kind == 1:
                ln, off = 4 + ((tag >> 2) & 7), ((tag >> 5) << 8) | src[pos]
                pos += 1
            elif kind == 2:
                ln, off = (tag >> 2) + 1, int.from_bytes(src[pos : pos + 2], "little")
                pos += 2
            else:
                ln, off = (tag >> 2) + 1, int.from_bytes(src[pos : pos + 4], "little")
                pos += 4
            if off == 0 or off > len(out):
                raise ValueError("bad copy offset")
            for _ in range(ln):  # copies may overlap their own output
                out.append(out[-off])
        if len(out) != n:
            raise ValueError("wrong decompressed length")
        return bytes(out)
    except (IndexError, ValueError):
        raise _corrupt(path, "damaged compressed block") from None


# --- the two formats ------------------------------------------------------------------------------------


def resolve(path: str | Path) -> tuple[str, Path]:
    """``("v2", prefix)`` or ``("v1", file)`` for a checkpoint given by prefix, .index, .data-* or a folder."""
    p = Path(path)
    if p.is_dir():
        found = sorted(p.rglob("*.index")) or sorted(f for f in p.rglob("*.ckpt") if f.is_file())
        if not found:
            raise UserError(f"no TensorFlow checkpoint (*.index or *.ckpt) in {str(p)!r}")
        return resolve(found[0].with_suffix("") if found[0].suffix == ".index" else found[0])
    name = p.name
    if name.endswith(".index"):
        p = p.with_name(name[: -len(".index")])
    elif ".data-" in name:
        p = p.with_name(name.split(".data-")[0])
    if p.with_name(p.name + ".index").is_file():
        return "v2", p
    if p.is_file():
        return "v1", p
    raise UserError(f"TensorFlow checkpoint {str(path)!r} does not exist",
                    "pass the prefix (model.ckpt), its .index file, or a V1 .ckpt file")  # fmt: skip


def is_checkpoint(path: str | Path) -> bool:
    """True when ``path`` names a TensorFlow checkpoint (V2 prefix/.index/.data, or a V1 table file)."""
    return is_tf_checkpoint(path)


def _read_v2(prefix: Path) -> dict[str, np.ndarray]:
    index = prefix.with_name(prefix.name + ".index")
    table = Table(index.read_bytes(), index)
    entries: dict[str, dict] = {}
    shards = 1
    for key, value in table.items():
        try:
            f = _fields(value)
        except (IndexError, ValueError):
            raise _corrupt(index, f"damaged entry for {key!r}") from None
        if key == b"":  # BundleHeaderProto
            shards = _one(f, 1, 1)
            if _one(f, 2) != 0:
                raise UserError(f"{str(index)!r} is a big-endian checkpoint", "convert it on a little-endian machine")
            continue
        if 7 in f:
            raise UserError(f"{str(index)!r}: variable {key.decode()!r} is partitioned", "save it unpartitioned")
        entries[key.decode()] = {"dtype": _one(f, 1), "shape": _shape(_one(f, 2, b"")), "shard": _one(f, 3),
                                 "offset": _one(f, 4), "size": _one(f, 5)}  # fmt: skip
    out: dict[str, np.ndarray] = {}
    handles: dict[int, object] = {}
    try:
        for name, e in entries.items():
            dtype = DTYPES.get(e["dtype"])
            if dtype is None and e["dtype"] != DT_BFLOAT16:
                continue  # strings, resources: not weights
            shard = prefix.with_name(f"{prefix.name}.data-{e['shard']:05d}-of-{shards:05d}")
            if e["shard"] not in handles:
                if not shard.is_file():
                    raise UserError(f"the data file {str(shard)!r} of checkpoint {str(prefix)!r} is missing",
                                    "keep the .index and .data-* files together")  # fmt: skip
                handles[e["shard"]] = open(shard, "rb")  # noqa: SIM115 - closed below
            fh = handles[e["shard"]]
            fh.seek(e["offset"])
            raw = fh.read(e["size"])
            if len(raw) != e["size"]:
                raise _corrupt(shard, f"{name!r} lies past the end of the data file")
            out[name] = _decode(raw, e["dtype"], e["shape"], shard, name)
    finally:
        for fh in handles.values():
            fh.close()
    return out


def _decode(raw: bytes, dt: int, shape: tuple[int, ...], path: Path, name: str) -> np.ndarray:
    if dt == DT_BFLOAT16:  # widen to float32: bfloat16 is the top half of a float32
        arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        arr = np.frombuffer(raw, np.dtype(DTYPES[dt]).newbyteorder("<"))
    if arr.size != int(np.prod(shape)):
        raise _corrupt(path, f"{name!r} has {arr.size} values for shape {shape}")
    return arr.reshape(shape).copy()


def _tensor_values(buf: bytes, dt: int, count: int, path: Path, name: str) -> np.ndarray:
    """The values of a TensorProto: tensor_content (4) or the typed repeated fields (packed or not). V1
    slices leave the proto's dtype unset: ``dt`` comes from the tensor's metadata."""
    f = _fields(buf)
    dt = _one(f, 1) or dt
    if 4 in f:
        return _decode(b"".join(f[4]), dt, (count,), path, name)
    if dt == 1 and 5 in f:  # float_val
        return np.frombuffer(b"".join(f[5]), "<f4").copy()
    if dt == 2 and 6 in f:  # double_val
        return np.frombuffer(b"".join(f[6]), "<f8").copy()
    varint_field = {3: 7, 4: 7, 5: 7, 6: 7, 9: 10, 10: 11, 19: 13}.get(dt)
    if varint_field is not None:
        vals: list[int] = []
        for v in f.get(varint_field, []):
            if isinstance(v, bytes):  # packed
                pos = 0
                while pos < len(v):
                    x, pos = read_varint(v, pos)
                    vals.append(x)
            else:
                vals.append(v)
        if dt == 19:
            return np.array(vals, np.uint16).view(np.float16)
        arr = np.array(vals, np.uint64).astype(np.int64)
        return arr.astype(DTYPES[dt])
    if count == 0:
        return np.zeros(0, DTYPES.get(dt, np.float32))
    raise _corrupt(path, f"{name!r}: unsupported tensor encoding (dtype {dt})")


def _extents(buf: bytes, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """TensorSliceProto -> numpy index; a missing length means the whole dimension."""
    ext = _fields(buf).get(1, [])
    if not ext:
        return tuple(slice(None) for _ in shape)
    out = []
    for dim, e in zip(shape, ext, strict=False):
        f = _fields(e)
        start = _one(f, 1)
        out.append(slice(start, start + _one(f, 2)) if 2 in f else slice(0, dim))
    return tuple(out)


def _read_v1(path: Path) -> dict[str, np.ndarray]:
    table = Table(path.read_bytes(), path)
    metas: dict[str, tuple[tuple[int, ...], int]] = {}
    out: dict[str, np.ndarray] = {}
    try:
        for key, value in table.items():
            f = _fields(value)
            if key == b"":  # SavedTensorSlices.meta -> SavedSliceMeta per tensor
                for t in _fields(_one(f, 1, b"")).get(1, []):
                    tf_ = _fields(t)
                    metas[_one(tf_, 1, b"").decode()] = (_shape(_one(tf_, 2, b"")), _one(tf_, 3))
                continue
            saved = _fields(_one(f, 2, b""))  # SavedSlice: name 1, slice 2, data 3
            name = _one(saved, 1, b"").decode()
            if name not in metas:
                raise _corrupt(path, f"slice of unknown tensor {name!r}")
            shape, dt = metas[name]
            if dt not in DTYPES:
                continue
            if name not in out:
                out[name] = np.zeros(shape, DTYPES[dt])
            idx = _extents(_one(saved, 2, b""), shape)
            target = out[name][idx]
            values = _tensor_values(_one(saved, 3, b""), dt, target.size, path, name)
            if values.size != target.size:
                raise _corrupt(path, f"{name!r} has {values.size} values for a slice of {target.size}")
            out[name][idx] = values.reshape(target.shape)
    except (IndexError, ValueError) as e:
        raise _corrupt(path, f"damaged entry ({e})") from None
    return out


def variable_names(path: str | Path) -> list[str]:
    """The variable names of a checkpoint, without reading the values (V2: the index; V1: its metadata)."""
    fmt, p = resolve(path)
    f = p.with_name(p.name + ".index") if fmt == "v2" else p
    table = Table(f.read_bytes(), f)
    if fmt == "v2":
        return [k.decode() for k, _ in table.items() if k]
    for key, value in table.items():
        if key == b"":
            metas = _fields(_one(_fields(value), 1, b"")).get(1, [])
            return [_one(_fields(t), 1, b"").decode() for t in metas]
    raise _corrupt(p, "no metadata entry")


def read_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Every numeric variable of a TensorFlow checkpoint (V1 or V2), by its TF name (e.g. ``a/b/weights``)."""
    fmt, p = resolve(path)
    return _read_v2(p) if fmt == "v2" else _read_v1(p)
