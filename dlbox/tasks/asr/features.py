"""80-dim Kaldi fbank through kaldi-native-fbank, CMVN, SpecAugment and speed perturbation.

The fbank options are the ones sherpa-onnx uses for WeNet CTC models (samples scaled to 16-bit range, no
dither, snip_edges false, 20 Hz .. Nyquist - 400 Hz), so an exported model sees in sherpa-onnx exactly the
features it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlbox.tasks.asr.audio import SAMPLE_RATE, resample

NUM_BINS = 80
FRAME_SHIFT_S = 0.01


def fbank_options():
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = False
    opts.mel_opts.num_bins = NUM_BINS
    opts.mel_opts.low_freq = 20.0
    opts.mel_opts.high_freq = -400.0
    return opts


def fbank(wave: np.ndarray) -> np.ndarray:
    """(T,) float32 in [-1, 1] at 16 kHz -> (frames, 80) log mel energies."""
    import kaldi_native_fbank as knf

    f = knf.OnlineFbank(fbank_options())
    # WeNet models (and so sherpa-onnx's reader of them) take samples in 16-bit range
    f.accept_waveform(SAMPLE_RATE, (wave * 32768.0).astype(np.float32))
    f.input_finished()
    n = f.num_frames_ready
    if n == 0:
        return np.zeros((0, NUM_BINS), dtype=np.float32)
    return np.stack([f.get_frame(i) for i in range(n)]).astype(np.float32)


@dataclass
class Cmvn:
    """Mean and inverse standard deviation per bin: ``(x - mean) * istd``."""

    mean: np.ndarray  # (80,)
    istd: np.ndarray  # (80,)

    @classmethod
    def identity(cls, dim: int = NUM_BINS) -> Cmvn:
        return cls(np.zeros(dim, np.float32), np.ones(dim, np.float32))

    @classmethod
    def compute(cls, feats: list[np.ndarray]) -> Cmvn:
        """Statistics over every frame of ``feats`` (Kaldi's compute-cmvn-stats, then variance normalisation)."""
        frames = sum(len(f) for f in feats)
        s = sum(f.sum(axis=0, dtype=np.float64) for f in feats)
        s2 = sum((f.astype(np.float64) ** 2).sum(axis=0) for f in feats)
        mean = s / frames
        var = np.maximum(s2 / frames - mean**2, 1e-10)
        return cls(mean.astype(np.float32), (1.0 / np.sqrt(var)).astype(np.float32))

    def apply(self, f: np.ndarray) -> np.ndarray:
        return ((f - self.mean) * self.istd).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "istd": self.istd.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Cmvn:
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["istd"], np.float32))


def speaker_cmvn(feats: dict[str, np.ndarray], spk2utt: dict[str, list[str]]) -> dict[str, Cmvn]:
    """Per-speaker statistics, as Kaldi's apply-cmvn with --utt2spk."""
    return {spk: Cmvn.compute([feats[u] for u in utts if u in feats]) for spk, utts in spk2utt.items()}


def speed_perturb(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (pitch moves with it, as Kaldi's/sox's speed): resample, keep the rate."""
    if factor == 1.0:
        return wave
    return resample(wave, int(round(SAMPLE_RATE * factor)), SAMPLE_RATE)


def spec_augment(feats, fill, generator, freq_masks: int = 2, freq_width: int = 10, time_masks: int = 2,
                 time_ratio: float = 0.05):  # fmt: skip
    """SpecAugment (Park et al. 2019) without time warping, on a (T, F) tensor of raw fbank; a new tensor.

    Masked values become ``fill`` (F,), the CMVN mean, i.e. 0 after normalisation. Masks are drawn from
    ``generator`` (the global RNG by default), which the engine restores on resume."""
    import torch

    x = feats.clone()
    t, f = x.shape
    for _ in range(freq_masks):
        w = int(torch.randint(0, freq_width + 1, (1,), generator=generator))
        start = int(torch.randint(0, max(f - w, 1), (1,), generator=generator))
        x[:, start : start + w] = fill[start : start + w]
    max_t = max(int(t * time_ratio), 1)
    for _ in range(time_masks):
        w = int(torch.randint(0, max_t + 1, (1,), generator=generator))
        start = int(torch.randint(0, max(t - w, 1), (1,), generator=generator))
        x[start : start + w, :] = fill
    return x
