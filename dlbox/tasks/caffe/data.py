"""What a solver's Data layers read: Caffe's LMDB of Datum records, or the digits dlbox ships.

A Data layer's ``data_param { source backend }`` is resolved as Caffe resolves it (from the current
directory), then next to the net's prototxt (the source's path, then its last part: BVLC's
``examples/mnist/mnist_train_lmdb`` sits next to ``examples/mnist/lenet_train_test.prototxt``), or in the
folder given with --data. ``source: "digits:train"`` / ``"digits:test"`` (or no source) reads scikit-learn's
digits, or MNIST's IDX files when --data is a folder holding them. Records are raw pixels in [0, 255]
(C, H, W) as Caffe feeds them to its DataTransformer; transform_param runs in the net (DataTransform).
LevelDB is refused: its Python binding (plyvel) needs the leveldb C library.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from dlbox.base.errors import UserError
from dlbox.convert.caffe.net import included, net_layers
from dlbox.convert.caffe.textformat import Msg
from dlbox.convert.caffe.wire import decode
from dlbox.convert.protowire import WireError

BACKENDS = {0: "LEVELDB", 1: "LMDB", "LEVELDB": "LEVELDB", "LMDB": "LMDB"}


def decode_datum(value: bytes, where: str) -> tuple[np.ndarray, int]:
    """(pixels (C, H, W) float32 in Caffe's channel order, label) of one serialized Datum."""
    try:
        d = decode(value, "Datum")
    except WireError as e:
        raise UserError(f"{where} is not a Caffe Datum ({e})", "was the LMDB written by convert_imageset?") from None
    label = int((d.get("label") or [0])[-1])
    data = b"".join(d.get("data", []))
    if (d.get("encoded") or [0])[-1]:
        return _decode_image(data, where), label
    c, h, w = ((d.get(k) or [0])[-1] for k in ("channels", "height", "width"))
    if data:
        pixels = np.frombuffer(data, dtype=np.uint8).astype(np.float32)
    else:
        parts = d.get("float_data", [])
        pixels = np.concatenate([np.atleast_1d(np.asarray(p, np.float32)) for p in parts]) if parts else np.zeros(0, np.float32)
    if c * h * w == 0 or pixels.size != c * h * w:
        raise UserError(f"{where}: a Datum of {c}x{h}x{w} holds {pixels.size} values", "the LMDB may be corrupt")
    return pixels.reshape(c, h, w), label


def _decode_image(data: bytes, where: str) -> np.ndarray:
    """An encoded Datum (JPEG/PNG) as Caffe's DecodeDatumToCVMatNative gives it: gray stays one channel,
    colour is BGR (OpenCV's order, which Caffe models' mean_value follow)."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"{where}: the encoded image cannot be decoded ({e})", "rebuild the LMDB with `dlbox caffe convert-imageset`") from None
    if img.mode in ("L", "I;16", "I", "F"):
        return np.asarray(img.convert("L"), dtype=np.float32)[None]  # (1, H, W)
    rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
    return np.ascontiguousarray(rgb[..., ::-1].transpose(2, 0, 1))  # (3, H, W) BGR


class LmdbDataset(Dataset):
    """A Caffe LMDB (a folder with data.mdb) as (pixels (C, H, W) float32, label int64) items, in key order.
    The environment is opened lazily in each process (LMDB handles do not survive a fork)."""

    def __init__(self, path: str | Path, where: str):
        import lmdb

        self.path, self.where = str(path), where
        try:
            env = lmdb.open(self.path, readonly=True, lock=False, readahead=False, subdir=True, max_readers=256)
        except lmdb.Error as e:
            raise UserError(f"{where}: cannot open LMDB {self.path} ({str(e).splitlines()[0][:120]})",
                            "pass a folder written by convert_imageset (it holds data.mdb)") from None  # fmt: skip
        with env.begin() as txn:
            self.keys = list(txn.cursor().iternext(values=False))
        env.close()
        if not self.keys:
            raise UserError(f"{where}: LMDB {self.path} holds no records", "rebuild it with `dlbox caffe convert-imageset SOURCE OUT`")
        self._env = None
        first, _ = self._read(0)
        self.shape = tuple(first.shape)

    def __len__(self) -> int:
        return len(self.keys)

    def _read(self, i: int) -> tuple[np.ndarray, int]:
        if self._env is None:
            import lmdb

            self._env = lmdb.open(self.path, readonly=True, lock=False, readahead=False, subdir=True)
        with self._env.begin() as txn:
            value = txn.get(self.keys[i])
        key = self.keys[i].decode("utf-8", "replace")
        return decode_datum(value, f"{self.where}: record {key!r} of {self.path}")

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        pixels, label = self._read(i)
        if pixels.shape != self.shape:
            key = self.keys[i].decode("utf-8", "replace")
            raise UserError(f"{self.where}: record {key!r} of {self.path} is {pixels.shape}, the first is {self.shape}",
                            "make the LMDB with --resize-height/--resize-width so that every image has one size")  # fmt: skip
        return torch.from_numpy(pixels), torch.tensor(label, dtype=torch.int64)

    def __getstate__(self):  # DataLoader workers reopen the environment
        return {**self.__dict__, "_env": None}


@dataclass
class Source:
    phase: str
    layer: str
    kind: str  # "digits" or "lmdb"
    path: str | None = None  # the LMDB folder, or for digits: "train" or "test"
    batch_size: int | None = None


def data_layer(net: Msg, phase: str) -> Msg | None:
    for layer in net_layers(net):
        if layer.get("type") == "Data" and included(layer, phase):
            return layer
    return None


def _is_idx_folder(folder: Path) -> bool:
    return any((folder / n).is_file() for n in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                                                  "train-images.idx3-ubyte", "train-images.idx3-ubyte.gz"))  # fmt: skip


def _candidates(name: str, bases: list[Path]) -> list[Path]:
    """``name`` from the current directory (Caffe's way), then under each base folder, whole and last part."""
    raw = Path(name)
    out = [raw]
    if not raw.is_absolute():
        for base in bases:
            out += [base / raw, base / raw.name]
    return list(dict.fromkeys(out))


def resolve_source(net: Msg, phase: str, bases: list[Path], data: str | None) -> Source:
    """Where the ``phase`` net's Data layer reads from (refused in one line when it cannot be read)."""
    layer = data_layer(net, phase)
    split = "train" if phase == "TRAIN" else "test"
    if layer is None:
        return Source(phase, "", "digits", split)
    name = str(layer.get("name", "?"))
    where = f"layer {name!r} (Data, {phase})"
    p = layer.msg("data_param")
    batch = int(p.get("batch_size", 0)) or None
    source = str(p.get("source", ""))
    if source in ("digits:train", "digits:test"):
        split = source.split(":")[1]
    if not source or source.startswith("digits:") or (data and _is_idx_folder(Path(data))):
        return Source(phase, name, "digits", split, batch)
    backend = BACKENDS.get(p.get("backend", "LEVELDB"), str(p.get("backend")))
    folders = [Path(data)] if data else []
    found = next((c for c in _candidates(source, folders + bases) if c.is_dir() or c.is_file()), None)
    if backend == "LEVELDB" and not (found is not None and (found / "data.mdb").is_file()):
        raise UserError(f"{where} reads LevelDB {source!r}, which dlbox does not open (its Python binding, "
                        "plyvel, needs the leveldb C library)",
                        "convert it to LMDB (e.g. Caffe's convert_imageset --backend lmdb, or "
                        "`dlbox caffe convert-imageset IMAGES OUT.lmdb`) and set `backend: LMDB`")  # fmt: skip
    if backend != "LMDB" and backend != "LEVELDB":
        raise UserError(f"{where}: backend {backend!r} is unknown", "use backend: LMDB")
    if found is None:
        looked = ", ".join(str(c) for c in _candidates(source, folders + bases))
        raise UserError(f"{where}: source {source!r} not found (looked at {looked})",
                        f"make it with `dlbox caffe convert-imageset IMAGES {source}`, or pass --data FOLDER holding it")  # fmt: skip
    if not (found / "data.mdb").is_file():
        raise UserError(f"{where}: {found} is not an LMDB (no data.mdb in it)",
                        "pass the folder that convert_imageset wrote")  # fmt: skip
    return Source(phase, name, "lmdb", str(found.resolve()), batch)


def resolve_mean_files(net: Msg, bases: list[Path]) -> None:
    """transform_param's mean_file made absolute (found from the current directory or next to the net)."""
    for layer in net_layers(net):
        t = layer.msg("transform_param")
        name = t.get("mean_file")
        if layer.get("type") != "Data" or not name:
            continue
        found = next((c for c in _candidates(str(name), bases) if c.is_file()), None)
        if found is None:
            raise UserError(f"layer {layer.get('name', '?')!r} (Data): mean_file {name!r} not found",
                            "give its path from the current directory or next to the prototxt")  # fmt: skip
        t.fields["mean_file"] = [str(found.resolve())]


def digits(data: str | None) -> tuple[TensorDataset, TensorDataset]:
    """(train, test) as raw pixels in [0, 255] (what a Caffe Data layer reads from its LMDB), labels int64."""
    from dlbox.data.digits import MEAN, STD, mnist_idx, sklearn_digits

    train, test = mnist_idx(data) if data else sklearn_digits()
    raw = [((ds.tensors[0] * STD + MEAN) * 255).clamp_(0, 255) for ds in (train, test)]
    return TensorDataset(raw[0], train.tensors[1]), TensorDataset(raw[1], test.tensors[1])


def open_sources(sources: list[Source], data: str | None) -> list[Dataset]:
    """A dataset per source; the digits (or MNIST's IDX files in --data) are read once for both phases."""
    builtin = digits(data) if any(s.kind == "digits" for s in sources) else None
    return [LmdbDataset(s.path, f"layer {s.layer!r} (Data, {s.phase})") if s.kind == "lmdb"
            else builtin[0 if s.path == "train" else 1] for s in sources]  # fmt: skip
