"""Fbank features cached on disk: each utterance's features are computed once and read back by later runs
(as lhotse and icefall store them), instead of decoding, resampling and filtering the audio every run.

An entry's key is a SHA-256 over everything that determines the features: the audio file (real path, size,
modification and change times in ns), the segment (start, end), the speed-perturbation factor, the fbank
options, the sample rate, the feature code's version and the versions of kaldi-native-fbank and soxr. A
rewritten wav or a changed option makes another key, so stale features are never read (the old entry stays
unused; delete the folder to reclaim the space). What is stored is the raw fbank after resampling and speed
perturbation, before CMVN and SpecAugment (those are applied per epoch, so the cache serves any --cmvn).

Entries are ``.npy`` files ((frames, 80) float32) read with ``allow_pickle=False``, written through
``atomic_write`` (a temporary file renamed over the entry), so DataLoader workers or DDP ranks writing the same
key concurrently leave one whole file. An entry that does not load as (frames, 80) float32 is recomputed and
rewritten, with one note per process. ``wav.scp`` pipes bypass the cache: their audio is known only by running
the command.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from dlbox.base.errors import UserError
from dlbox.base.fileio import WriteError, atomic_write
from dlbox.base.outputs import check_output
from dlbox.base.progress import log
from dlbox.tasks.asr import audio, features
from dlbox.tasks.asr.data import Utterance

# Bump when features.fbank or audio.load change what they compute (scaling, resampler quality, mixing).
FORMAT = 1


def compute(u: Utterance, allow_pipes: bool = False, speed: float = 1.0) -> np.ndarray:
    """(frames, 80) fbank of one utterance: load (16 kHz mono), speed-perturb, fbank; no cache."""
    wave = audio.load(u.wav, u.start, u.end, allow_pipes=allow_pipes)
    return features.fbank(features.speed_perturb(wave, speed))


def _recipe() -> str:
    """What besides the audio determines the features (computed once per process)."""
    import kaldi_native_fbank as knf
    import soxr

    return json.dumps({"format": FORMAT, "sample_rate": audio.SAMPLE_RATE, "fbank": str(features.fbank_options()),
                       "knf": getattr(knf, "__version__", "?"), "soxr": getattr(soxr, "__version__", "?")})  # fmt: skip


class FeatureCache:
    """A folder of cached fbank features; ``get`` returns an utterance's, computing and storing it if needed.

    Counts what happened in ``hits``, ``computed`` and ``repaired`` (corrupt entries recomputed)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        check_output(self.root, "dir", "--feature-cache")  # a file there, a read-only place: one line
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create the feature cache {str(root)!r} ({e.strerror})", "pass a writable folder") from None
        if not os.access(self.root, os.W_OK):
            raise UserError(f"the feature cache {str(root)!r} is not writable", "pass a writable folder")
        self.recipe = _recipe()
        self.hits = self.computed = self.repaired = 0
        self.writable = True

    def key(self, u: Utterance, speed: float = 1.0) -> str | None:
        """The entry's name, or None where the cache cannot know the audio (a pipe, a missing file)."""
        if u.is_pipe:
            return None
        try:
            path = os.path.realpath(u.wav)
            st = os.stat(path)
        except OSError:
            return None  # audio.load names the problem
        what = json.dumps([path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, u.start, u.end, speed, self.recipe])
        return hashlib.sha256(what.encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"  # 256 subfolders: a 100k-utterance corpus stays listable

    def get(self, u: Utterance, allow_pipes: bool = False, speed: float = 1.0) -> np.ndarray:
        key = self.key(u, speed)
        if key is None:
            return compute(u, allow_pipes, speed)
        entry = self.path(key)
        if entry.is_file():
            feats = self._read(entry)
            if feats is not None:
                self.hits += 1
                return feats
            if not self.repaired:
                log(f"asr: feature cache entry {entry} is corrupt; recomputing it (and any other corrupt entry, "
                    "without a further note)")  # fmt: skip
            self.repaired += 1
        feats = compute(u, allow_pipes, speed)
        self.computed += 1
        self._write(entry, feats)
        return feats

    @staticmethod
    def _read(entry: Path) -> np.ndarray | None:
        try:
            feats = np.load(entry, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None
        if not isinstance(feats, np.ndarray) or feats.dtype != np.float32 or feats.ndim != 2 \
                or feats.shape[1] != features.NUM_BINS:  # fmt: skip
            return None
        return feats

    def _write(self, entry: Path, feats: np.ndarray) -> None:
        if not self.writable:
            return

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, feats, allow_pickle=False)

        try:
            atomic_write(entry, write, durable=False)  # a bad entry is recomputed: no fsync each
        except WriteError as e:  # a full disk stops the caching, not the training
            log(f"asr: {e.message}; continuing without caching features")
            self.writable = False

    def stats(self) -> dict[str, int | str]:
        return {"dir": str(self.root), "hits": self.hits, "computed": self.computed, "repaired": self.repaired}
