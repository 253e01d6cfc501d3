"""Handwritten digits: scikit-learn's bundled scans (offline default) or real MNIST IDX files.

scikit-learn ships 1,797 real 8x8 scans (UCI optdigits). We upsample them to 20x20 and pad to 28x28,
the way MNIST centres a 20x20 digit in a 28x28 frame, so MNIST-shaped models (LeNet-5) take them as is.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from dlbox.base.errors import UserError

MEAN, STD = 0.1307, 0.3081  # MNIST's; the upsampled digits are close enough and it keeps both paths alike


def _normalise(images: torch.Tensor) -> torch.Tensor:
    return (images - MEAN) / STD


def sklearn_digits(test_fraction: float = 0.2, seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """(train, test) as tensors (N, 1, 28, 28) float32 normalised, labels int64; a fixed stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)  # (1797, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False).clamp_(0, 1)
    x = F.pad(x, (4, 4, 4, 4))  # (1797, 1, 28, 28)
    y = torch.from_numpy(d.target.astype(np.int64))
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=test_fraction, stratify=d.target, random_state=seed
    )
    x = _normalise(x)
    return (
        TensorDataset(x[idx_train], y[idx_train]),
        TensorDataset(x[idx_test], y[idx_test]),
    )


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzipped or not."""
    path = Path(path)
    try:
        with _open(path) as f:
            zero, dtype_code, ndim = struct.unpack(">HBB", f.read(4))
            if zero != 0 or dtype_code != 0x08:
                raise UserError(f"{path} is not an IDX file of unsigned bytes", "pass MNIST's *-idx?-ubyte files")
            shape = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
            data = np.frombuffer(f.read(), dtype=np.uint8)
    except (OSError, EOFError, struct.error) as e:
        raise UserError(f"cannot read {path}: {e}", "re-download the MNIST files") from None
    if data.size != int(np.prod(shape)):
        raise UserError(f"{path} is truncated: {data.size} bytes for shape {shape}", "re-download the file")
    return data.reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise UserError(
        f"{folder} has no {stem}[.gz]",
        "put MNIST's train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
        "t10k-labels-idx1-ubyte (gzipped or not) in that folder",
    )


def mnist_idx(folder: str | Path) -> tuple[TensorDataset, TensorDataset]:
    """(train, test) from the four MNIST IDX files in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--data {str(folder)!r} is not a folder", "pass the folder holding MNIST's IDX files")
    out = []
    for split in ("train", "t10k"):
        images = read_idx(_find(folder, f"{split}-images-idx3-ubyte"))
        labels = read_idx(_find(folder, f"{split}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UserError(f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match", "extract the MNIST files again (they may be truncated)")
        x = _normalise(torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1))
        if x.shape[-2:] != (28, 28):
            x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
        out.append(TensorDataset(x, torch.from_numpy(labels.astype(np.int64))))
    return out[0], out[1]


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write an unsigned-byte IDX file (gzipped when the name ends in .gz); used to make MNIST-format data."""
    path = Path(path)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)
