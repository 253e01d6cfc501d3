"""A small Mandarin corpus spoken by espeak-ng, for tests and demos offline.

Short sentences over a fixed set of characters, several voices, speeds and pitches, white noise at a random
SNR, written as Kaldi data directories ``train/`` and ``test/``; no test sentence occurs in training. The
voice is espeak-ng's ``cmn-latn-pinyin``: plain ``cmn`` reads characters missing from its dictionary as
pinyin spelled out in English ("ling two" for 零), this one reads them as Mandarin.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dlbox.base.errors import UserError
from dlbox.tasks.asr.data import Utterance, write_data_dir

CHARS = "零一二三四五六七八九天人大小"
VOICE = "cmn-latn-pinyin"
VARIANTS = ("m1", "m3", "f2", "f4", "m7")


def espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise UserError("espeak-ng is not installed (the corpus generator speaks through it)",
                        "install it: apt-get install -y espeak-ng (the Makefile's test setup does)")  # fmt: skip
    return exe


def sentences(n: int, rng: random.Random, min_len: int, max_len: int, avoid: set[str] = frozenset()) -> list[str]:
    out: list[str] = []
    seen = set(avoid)
    while len(out) < n:
        s = "".join(rng.choice(CHARS) for _ in range(rng.randint(min_len, max_len)))
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def speak(text: str, variant: str, speed: int, pitch: int, path: Path) -> None:
    proc = subprocess.run([espeak(), "-v", f"{VOICE}+{variant}", "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
                          capture_output=True, timeout=60)  # fmt: skip
    if proc.returncode != 0 or not path.is_file():
        raise UserError(f"espeak-ng failed on {text!r}: {proc.stderr.decode(errors='replace').strip()[:100]}",
                        f"check that `espeak-ng -v {VOICE}` works here")  # fmt: skip


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    power = float(np.mean(wave**2)) or 1e-8
    noise = rng.standard_normal(len(wave)).astype(np.float32) * np.sqrt(power / 10 ** (snr_db / 10))
    return wave + noise


def make_corpus(out: str | Path, n_train: int = 240, n_test: int = 40, seed: int = 0, min_len: int = 3,
                max_len: int = 6, snr_db: tuple[float, float] = (10.0, 30.0), speeds: tuple[int, int] = (150, 230),
                workers: int = 4) -> dict:  # fmt: skip
    """Write ``out/train`` and ``out/test`` (Kaldi data directories) and their wavs under ``out/wav``; a summary.

    The wavs stay at espeak-ng's 22,050 Hz, so reading them exercises the resampler."""
    import soundfile as sf

    espeak()
    out = Path(out)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    train_s = sentences(n_train, rng, min_len, max_len)
    test_s = sentences(n_test, rng, min_len, max_len, avoid=set(train_s))
    jobs = []
    for split, texts in (("train", train_s), ("test", test_s)):
        for i, text in enumerate(texts):
            variant = rng.choice(VARIANTS)
            jobs.append((split, i, text, variant, rng.randint(*speeds), rng.randint(30, 70), rng.uniform(*snr_db)))
    wav_dir = out / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:

        def render(job):
            split, i, text, variant, speed, pitch, snr = job
            raw = Path(tmp) / f"{split}{i}.wav"
            speak(text, variant, speed, pitch, raw)
            return job, raw

        with ThreadPoolExecutor(workers) as pool:
            rendered = list(pool.map(render, jobs))
        utts: dict[str, list[Utterance]] = {"train": [], "test": []}
        durations = []
        for (split, i, text, variant, _speed, _pitch, snr), raw in rendered:
            wave, sr = sf.read(str(raw), dtype="float32")
            wave = add_noise(wave, snr, nrng)  # noise drawn in job order: the corpus depends on the seed only
            spk = f"espeak-{variant}"
            utt = f"{spk}-{split}{i:04d}"
            path = wav_dir / f"{utt}.wav"
            sf.write(str(path), np.clip(wave, -1, 1), sr, subtype="PCM_16")
            durations.append(len(wave) / sr)
            utts[split].append(Utterance(utt, str(path.resolve()), text, spk))
    for split, us in utts.items():
        write_data_dir(out / split, us)
    return {"out": str(out), "train": len(train_s), "test": len(test_s), "characters": CHARS,
            "hours": round(sum(durations) / 3600, 4), "voice": VOICE, "variants": list(VARIANTS)}  # fmt: skip
