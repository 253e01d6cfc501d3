"""Features: our fbank + CMVN equal kaldi-native-fbank called directly; SpecAugment masks; speed perturbation."""

from __future__ import annotations

import kaldi_native_fbank as knf
import numpy as np
import torch

from dlbox.tasks.asr import audio, features
from dlbox.tasks.asr.data import read_data_dir


def reference_fbank(wave: np.ndarray) -> np.ndarray:
    """kaldi-native-fbank with sherpa-onnx's options for WeNet models, written out here independently."""
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0
    opts.frame_opts.snip_edges = False
    opts.frame_opts.samp_freq = 16000
    opts.mel_opts.num_bins = 80
    opts.mel_opts.low_freq = 20
    opts.mel_opts.high_freq = -400
    f = knf.OnlineFbank(opts)
    f.accept_waveform(16000, (wave * 32768).tolist())
    f.input_finished()
    return np.array([f.get_frame(i) for i in range(f.num_frames_ready)])


def test_fbank_and_global_cmvn_equal_kaldi_native_fbank_called_directly(corpus):
    utts = read_data_dir(corpus / "train").utts[:20]
    waves = [audio.load(u.wav) for u in utts]
    ours = [features.fbank(w) for w in waves]
    ref = [reference_fbank(w) for w in waves]
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape and a.shape[1] == 80
        assert np.abs(a - b).max() < 1e-4
    cmvn = features.Cmvn.compute(ours)
    frames = np.concatenate(ref)
    mean, std = frames.mean(axis=0), frames.std(axis=0)
    np.testing.assert_allclose(cmvn.mean, mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cmvn.istd, 1 / std, rtol=1e-3)
    normed = np.concatenate([cmvn.apply(f) for f in ours])
    np.testing.assert_allclose(normed.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(normed.std(axis=0), 1, atol=1e-3)


def test_fbank_has_one_frame_per_10_ms():
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    assert features.fbank(wave).shape == (100, 80)


def test_spec_augment_masks_with_the_cmvn_mean_and_leaves_the_input_alone():
    x = torch.randn(200, 80)
    fill = torch.full((80,), 7.0)
    torch.manual_seed(0)
    y = features.spec_augment(x, fill, generator=None, freq_masks=2, freq_width=10, time_masks=2, time_ratio=0.05)
    masked = y == 7.0
    assert masked.any() and not (x == 7.0).any()
    assert (y[~masked] == x[~masked]).all()
    torch.manual_seed(0)
    assert torch.equal(features.spec_augment(x, fill, generator=None), y)  # drawn from the (checkpointed) global RNG


def test_speed_perturbation_changes_the_duration_by_the_factor():
    wave = np.zeros(16000, np.float32)
    assert abs(len(features.speed_perturb(wave, 1.1)) - 16000 / 1.1) < 2
    assert abs(len(features.speed_perturb(wave, 0.9)) - 16000 / 0.9) < 2
