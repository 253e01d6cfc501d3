"""Audio in: any sample rate and channel count -> 16 kHz mono float32 in [-1, 1].

soundfile (libsndfile) reads the file, soxr resamples (not torchaudio, whose releases no longer follow torch's).
An empty file or one that is not audio is one clear line naming the file.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np

from dlbox.base.errors import UserError, not_found

SAMPLE_RATE = 16000


def resample(wave: np.ndarray, sr: int, to: int = SAMPLE_RATE) -> np.ndarray:
    """(T,) float32 at ``sr`` -> (T',) at ``to`` (soxr, high quality)."""
    if sr == to:
        return wave.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(wave, sr, to, quality="HQ").astype(np.float32, copy=False)


def _read(source, name: str, start: float = 0.0, end: float | None = None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        with sf.SoundFile(source) as f:
            sr = f.samplerate
            first = int(round(start * sr))
            f.seek(min(first, f.frames))
            count = -1 if end is None else max(int(round(end * sr)) - first, 0)
            data = f.read(count, dtype="float32", always_2d=True)  # (T, C)
    except sf.LibsndfileError as e:
        raise UserError(f"{name} is not audio soundfile can read ({str(e).split(':')[-1].strip()[:80]})",
                        "use WAV, FLAC or OGG files (convert others with ffmpeg or sox)") from None  # fmt: skip
    except RuntimeError as e:
        raise UserError(f"{name} is not audio soundfile can read ({str(e)[:80]})", "use WAV, FLAC or OGG files") from None
    return data, sr


def check_wav_header(path: str | Path) -> None:
    """A RIFF/WAVE file whose header promises more audio than the file holds (cut short by a failed copy or
    download) is refused: libsndfile would report the promised length and read what is there, silently.
    Other formats, and streamed WAVs whose header leaves the size open (0 or 0xFFFFFFFF), pass."""
    import struct

    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return
            fmt = None
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return  # no data chunk: libsndfile says what is wrong
                cid, n = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    body = f.read(n + (n & 1))
                    if len(body) >= 16:
                        fmt = struct.unpack("<HHIIH", body[:14])  # format, channels, rate, byte rate, block align
                    continue
                if cid == b"data":
                    if n in (0, 0xFFFFFFFF):
                        return
                    held = size - f.tell()
                    if held < n and fmt and fmt[3]:
                        raise UserError(f"{p} is cut short: its WAV header promises {n / fmt[3]:.2f} s, the file "
                                        f"holds {max(held, 0) / fmt[3]:.2f} s",
                                        "copy or record it again, or remove it from the data")  # fmt: skip
                    if held < n:
                        raise UserError(f"{p} is cut short: its WAV header promises {n} bytes of audio, the file "
                                        f"holds {max(held, 0)}", "copy or record it again, or remove it from the data")  # fmt: skip
                    return
                f.seek(n + (n & 1), 1)
    except OSError:
        return  # unreadable: the reader says so


def load(wav: str, start: float = 0.0, end: float | None = None, allow_pipes: bool = False) -> np.ndarray:
    """A ``wav.scp`` value (a path, or a pipeline ending in '|' when allowed) -> (T,) float32 at 16 kHz mono."""
    name = wav
    if wav.rstrip().endswith("|"):
        if not allow_pipes:
            raise UserError(f"{wav[:60]!r} is a shell command; refused", "pass --allow-pipes if you trust this data")
        proc = subprocess.run(wav.rstrip()[:-1], shell=True, capture_output=True, timeout=600)  # noqa: S602 (opted in)
        if proc.returncode != 0:
            raise UserError(f"the wav.scp command {wav[:60]!r} failed ({proc.stderr.decode(errors='replace').strip()[:100]})")
        source = io.BytesIO(proc.stdout)
    else:
        p = Path(wav)
        if not p.is_file():
            raise UserError(f"audio file {wav!r} {not_found(p)}", "check the path in wav.scp (relative paths are from the current directory)")
        if p.stat().st_size == 0:
            raise UserError(f"{wav} is an empty file", "re-record or remove it from the data")
        check_wav_header(p)
        source = str(p)
    data, sr = _read(source, name, start, end)
    if data.shape[0] == 0:
        raise UserError(f"{name} holds no samples", "re-record or remove it from the data")
    return resample(data.mean(axis=1), sr)


def info(wav: str) -> tuple[float, int, int]:
    """(duration in seconds, sample rate, channels) without decoding; for statistics."""
    import soundfile as sf

    check_wav_header(wav)
    try:
        i = sf.info(wav)
    except (sf.LibsndfileError, RuntimeError):
        raise UserError(f"{wav} is not audio soundfile can read", "use WAV, FLAC or OGG files") from None
    return i.frames / i.samplerate, i.samplerate, i.channels


def save(path: str | Path, wave: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """16-bit PCM WAV (what sherpa-onnx's examples and Kaldi's tools read)."""
    import soundfile as sf

    sf.write(str(path), np.clip(wave, -1, 1), sr, subtype="PCM_16")


def duration_stats(durations: list[float]) -> dict[str, float]:
    d = np.asarray(durations, dtype=np.float64)
    if not len(d):
        return {"utterances": 0, "hours": 0.0}
    return {"utterances": int(len(d)), "hours": round(float(d.sum()) / 3600, 4), "mean_s": round(float(d.mean()), 3),
            "min_s": round(float(d.min()), 3), "max_s": round(float(d.max()), 3),
            "p50_s": round(float(np.percentile(d, 50)), 3), "p95_s": round(float(np.percentile(d, 95)), 3)}  # fmt: skip
