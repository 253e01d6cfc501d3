"""The on-disk feature cache: exact features, computed once, never stale, repaired when corrupt, safe to race."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from dlbox.tasks.asr import features
from dlbox.tasks.asr.data import Utterance, read_data_dir, write_data_dir
from dlbox.tasks.asr.featcache import FeatureCache, compute
from dlbox.tasks.asr.train import AsrTask, load_features
from tests.conftest import assert_user_error, run_main
from tests.tasks.asr.conftest import train_cfg


@pytest.fixture
def fbank_calls(monkeypatch) -> list[int]:
    """Counts features.fbank calls (every computation of features goes through it)."""
    calls = []
    real = features.fbank

    def counting(wave):
        calls.append(len(wave))
        return real(wave)

    monkeypatch.setattr(features, "fbank", counting)
    return calls


@pytest.fixture
def small(corpus, tmp_path):
    """Six utterances of the corpus, their wavs copied (so a test may rewrite them)."""
    utts = []
    for u in read_data_dir(corpus / "train").utts[:6]:
        shutil.copy(u.wav, tmp_path / f"{u.utt}.wav")
        utts.append(Utterance(u.utt, str(tmp_path / f"{u.utt}.wav"), u.text, u.spk))
    return read_data_dir(write_data_dir(tmp_path / "small", utts))


def test_cached_features_equal_on_the_fly_ones_and_a_later_run_computes_none(small, tmp_path, fbank_calls):
    fresh = load_features(small, False, "fbank")
    assert len(fbank_calls) == 6
    first = FeatureCache(tmp_path / "cache")
    cold = load_features(small, False, "fbank", cache=first)
    assert len(fbank_calls) == 12 and first.stats()["computed"] == 6 and first.hits == 0
    later = FeatureCache(tmp_path / "cache")  # a later run: a new process would see just these files
    warm = load_features(small, False, "fbank", cache=later)
    assert len(fbank_calls) == 12 and (later.hits, later.computed) == (6, 0)
    for u in small.utts:
        assert warm[u.utt].dtype == np.float32
        assert np.array_equal(fresh[u.utt], cold[u.utt]) and np.array_equal(fresh[u.utt], warm[u.utt])
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 6


def test_a_training_run_with_feature_cache_reuses_train_dev_and_speed_perturbed_features(small, tmp_path, fbank_calls):
    opts = {"data": str(small.path), "dev": str(small.path), "speed_perturb": True,
            "feature_cache": str(tmp_path / "cache"), "d_model": 32, "layers": 1, "heads": 2}  # fmt: skip
    first = AsrTask(train_cfg(small.path, tmp_path / "runs", **opts))
    # train (6), dev (the same files and keys: read back), x0.9 and x1.1 (keys of their own): 18 computed
    assert len(fbank_calls) == 18 and first.cache.stats()["computed"] == 18 and first.cache.hits == 6
    second = AsrTask(train_cfg(small.path, tmp_path / "runs", **opts))
    assert len(fbank_calls) == 18 and second.cache.hits == 24
    for a, b in zip(first.train_set.items, second.train_set.items, strict=True):
        assert np.array_equal(first.train_set.feats[a[0].utt], second.train_set.feats[b[0].utt])
    assert np.array_equal(first.cmvn.mean, second.cmvn.mean)


def test_a_rewritten_wav_invalidates_its_entry(small, tmp_path, fbank_calls):
    cache = FeatureCache(tmp_path / "cache")
    load_features(small, False, "fbank", cache=cache)
    target, other = small.utts[0], small.utts[1]
    time.sleep(0.05)  # file times tick in jiffies: a rewrite in the same few ms as the first write looks unchanged
    shutil.copy(other.wav, target.wav)  # other audio under the same path
    calls = len(fbank_calls)
    later = FeatureCache(tmp_path / "cache")
    got = load_features(small, False, "fbank", cache=later)
    assert len(fbank_calls) == calls + 1 and (later.computed, later.hits) == (1, 5)
    assert np.array_equal(got[target.utt], compute(other))
    assert FeatureCache(tmp_path / "cache").key(Utterance("p", f"cat {target.wav} |", "", "s")) is None  # pipes bypass


def test_a_corrupt_entry_is_recomputed_with_one_note(small, tmp_path, fbank_calls, capsys):
    cache = FeatureCache(tmp_path / "cache")
    ref = load_features(small, False, "fbank", cache=cache)
    entries = [cache.path(cache.key(u)) for u in small.utts[:3]]
    entries[0].write_bytes(b"not a numpy file")
    entries[1].write_bytes(entries[1].read_bytes()[:200])  # truncated mid-data
    np.save(entries[2], np.zeros((4, 3), np.float64))  # loads, but not (frames, 80) float32
    capsys.readouterr()
    calls = len(fbank_calls)
    later = FeatureCache(tmp_path / "cache")
    got = load_features(small, False, "fbank", cache=later)
    assert len(fbank_calls) == calls + 3 and later.repaired == 3 and later.hits == 3
    notes = [ln for ln in capsys.readouterr().err.splitlines() if "corrupt" in ln]
    assert len(notes) == 1 and str(entries[0]) in notes[0]
    assert all(np.array_equal(ref[u.utt], got[u.utt]) for u in small.utts)
    again = FeatureCache(tmp_path / "cache")
    load_features(small, False, "fbank", cache=again)
    assert again.hits == 6  # rewritten whole


def test_concurrent_writers_of_the_same_entries_leave_whole_files(small, tmp_path):
    """DataLoader workers and DDP ranks may compute one key at once: the atomic rename keeps one whole file."""
    ref = {u.utt: compute(u) for u in small.utts}
    caches = [FeatureCache(tmp_path / "cache") for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: load_features(small, False, "fbank", cache=c), caches))
    assert all(np.array_equal(r[u], ref[u]) for r in results for u in ref)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.suffix != ".npy"]  # no temp files left
    check = FeatureCache(tmp_path / "cache")
    load_features(small, False, "fbank", cache=check)
    assert check.hits == 6


def test_a_feature_cache_that_is_a_file_is_one_line(small, tmp_path, capsys):
    (tmp_path / "cache").write_text("")
    res = run_main(capsys, "asr", "train", "--data", small.path, "--feature-cache", tmp_path / "cache",
                   "--runs-dir", tmp_path / "runs")  # fmt: skip
    assert_user_error(res, "is a file, not a folder")

