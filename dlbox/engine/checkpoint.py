"""Checkpoints: atomic writes, safe loads (weights_only=True), clear errors for bad files."""

from __future__ import annotations

import os
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

from dlbox.base.errors import CheckpointError
from dlbox.base.fileio import atomic_write

FORMAT = "dlbox.checkpoint"
VERSION = 1


def save(state: dict[str, Any], path: str | Path, keep_previous: bool = False) -> None:
    """Write ``state`` atomically. With ``keep_previous`` the file being replaced becomes ``<name>.prev.pt``."""
    path = Path(path)
    state = {"format": FORMAT, "version": VERSION, **state}

    def write(tmp: str) -> None:
        # Through a Python file object, so a full disk surfaces as OSError(ENOSPC), not torch's RuntimeError.
        with open(tmp, "wb") as f:
            torch.save(state, f)
        if keep_previous and path.exists():
            os.replace(path, previous_of(path))

    atomic_write(path, write)


def copy(src: str | Path, dst: str | Path) -> None:
    """``dst`` becomes a copy of the checkpoint ``src``, atomically: a hard link where the file system has them
    (best.pt is last.pt at the epoch it improved, and a link costs no disk), else a byte copy. Safe because
    checkpoints are never changed in place: the next save renames a new file over last.pt, and the link keeps
    the old contents."""
    src, dst = Path(src), Path(dst)

    def write(tmp: str) -> None:
        os.unlink(tmp)
        try:
            os.link(src, tmp)
        except OSError:  # no hard links here (some network and FUSE file systems): copy the bytes
            shutil.copyfile(src, tmp)

    atomic_write(dst, write)


def previous_of(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".prev" + path.suffix)


# What a file that is not a PyTorch file is, by its first bytes (named in the error instead of torch's).
MAGIC = [(b"RIFF", "a WAV/RIFF audio file"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
         (b"\x93NUMPY", "a NumPy .npy array"), (b"\x08\x01\x12", "an ONNX model"), (b"ID3", "an MP3 file"),
         (b"fLaC", "a FLAC file"), (b"\x1f\x8b", "a gzip archive"), (b"%PDF", "a PDF")]  # fmt: skip


def sniff(path: str | Path) -> str | None:
    """What the file at ``path`` looks like when it is plainly not a PyTorch file (zip or pickle), else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    if not head:
        return "an empty file"
    if head.startswith(b"PK") or head[:1] == b"\x80":  # torch's zip format, or a legacy pickle
        return None
    for magic, what in MAGIC:
        if head.startswith(magic):
            return what
    if b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return None


def read_torch_file(path: str | Path, what: str = "checkpoint", map_location: str | torch.device = "cpu",
                    hint: str = "train again or use another file") -> Any:
    """``torch.load(path, weights_only=True)`` with every way it fails on a damaged or foreign file (truncated
    zip, short read, garbage, a text or WAV file, a pickle of objects) as one CheckpointError line naming the
    file; ``what`` names it ("checkpoint", "weights")."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{what} {str(path)!r} is a folder, not a file", "pass the file (e.g. checkpoints/last.pt)")
    if not path.is_file():
        raise CheckpointError(f"{what} {str(path)!r} does not exist", "check the path or run directory")
    kind = sniff(path)
    if kind is not None:
        raise CheckpointError(f"{what} {str(path)!r} is {kind}, not a PyTorch file", hint)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" not in str(e).lower():  # garbage the unpickler cannot read (an unknown opcode), a cut file
            raise _Damaged(f"{what} {str(path)!r} is truncated, corrupt or not a PyTorch file", hint) from None
        raise CheckpointError(
            f"{what} {str(path)!r} holds objects that are not plain tensors and values; refused for safety "
            f"({str(e).splitlines()[0][:100]})",
            "load only files you trust; convert them to a state dict or safetensors",
        ) from None
    except MemoryError:
        raise CheckpointError(f"{what} {str(path)!r} is corrupt (it asks for more memory than there is)", hint) from None
    except (zipfile.BadZipFile, EOFError, RuntimeError, OSError, ValueError, KeyError, IndexError, TypeError,
            AttributeError, UnicodeDecodeError, OverflowError, ImportError) as e:  # fmt: skip
        # torch fails on a damaged file in many ways: RuntimeError from its zip reader, OSError(EINVAL) from a
        # short read, KeyError/IndexError from the unpickler reading garbage
        msg = "it ends early" if isinstance(e, OSError) else (str(e).splitlines() or [""])[0] or type(e).__name__
        raise _Damaged(f"{what} {str(path)!r} is truncated or corrupt ({msg[:120]})", hint) from None


class _Damaged(CheckpointError):
    pass


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a dlbox checkpoint; truncated, foreign or unsafe files raise CheckpointError."""
    path = Path(path)
    if not path.is_file() and not path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist", "check the path or run directory")
    prev = previous_of(path)
    fallback = f"; the previous good checkpoint is kept at {prev}" if prev.is_file() else ""
    hint = f"resume from the previous one with --resume {prev}" if fallback else "train again or use another file"
    try:
        state = read_torch_file(path, "checkpoint", map_location, hint)
    except _Damaged as e:
        raise CheckpointError(f"{e.message}{fallback}", e.hint) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not a dlbox checkpoint",
            "pass a run directory or checkpoints/last.pt of a dlbox run; plain weights go to --weights",
        )
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{str(path)!r} was written by a newer dlbox", "upgrade dlbox")
    return state


def resolve(path_or_run: str | Path, name: str = "last.pt") -> Path:
    """A checkpoint file, or ``RUN_DIR/checkpoints/<name>`` for a run directory."""
    p = Path(path_or_run)
    if p.is_dir():
        candidate = p / "checkpoints" / name
        if not candidate.is_file():
            raise CheckpointError(
                f"{str(p)!r} has no checkpoints/{name}", "pass a dlbox run directory (runs/<task>/<name>)"
            )
        return candidate
    if not p.exists():
        raise CheckpointError(f"{str(p)!r} does not exist", "pass a run directory or a checkpoint file")
    return p


def run_dir_of(checkpoint_path: Path) -> Path:
    return checkpoint_path.resolve().parent.parent


def saved_config(path_or_run: str | Path) -> dict[str, Any]:
    """The resolved config of the run being resumed (its config.yaml, else the checkpoint's own copy)."""
    import yaml

    ckpt = resolve(path_or_run)
    cfg_file = run_dir_of(ckpt) / "config.yaml"
    if cfg_file.is_file():
        return yaml.safe_load(cfg_file.read_text()) or {}
    return dict(load(ckpt).get("config", {}))
