"""Training on the generated corpus: a CER bar on unseen sentences, exact resume, clear errors."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from dlbox.engine import checkpoint
from dlbox.engine.signals import Interrupted
from dlbox.engine.trainer import fit
from dlbox.tasks.asr.data import read_data_dir, write_data_dir
from dlbox.tasks.asr.evaluate import evaluate
from dlbox.tasks.asr.train import AsrTask
from tests.conftest import assert_user_error, run_main
from tests.tasks.asr.conftest import train_cfg

# Held-out CER (greedy, best epoch) of conftest.TRAIN (12 epochs, batch 8, lr 3e-3, 1 thread) from scratch on
# the corpus (seed 0), measured on this project's 2-core VM for training seeds 0, 1, 2, with batches bucketed
# by duration: 0.087, 0.064, 0.069 (the last epoch: 0.098, 0.081, 0.087; random batches gave 0.069, 0.064,
# 0.087). The bar is about 3x the worst, for other CPUs' numerics; an untrained or broken model scores ~1.0
# (every run sat at 1.0 for its first 2-3 epochs).
CER_BAR = 0.25


def test_a_model_trained_from_scratch_transcribes_unseen_sentences(trained, corpus):
    assert trained["dev_cer"] is not None and trained["dev_cer"] <= CER_BAR, trained
    run = Path(trained["run_dir"])
    assert (run / "tokens.txt").read_text().startswith("<blank> 0\n<unk> 1\n")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "epoch" in r]
    assert len(epochs) == 12 and all("val/cer" in r for r in epochs)  # dev CER every epoch (TensorBoard too)
    r = evaluate(trained["run_dir"], str(corpus / "test"), worst=3, threads=1)
    c = r["cer"]
    assert c["rate"] <= CER_BAR and r["utterances"] == 40 and r["out_of_vocabulary"] == 0
    assert c["rate"] == pytest.approx((c["substitutions"] + c["deletions"] + c["insertions"]) / c["reference_length"])
    assert len(r["worst"]) == 3 and r["worst"][0]["errors"] >= r["worst"][-1]["errors"]


class StopAfter(AsrTask):
    """Sends SIGTERM to this process after ``n`` optimiser steps: the engine saves last.pt mid-epoch and stops."""

    def __init__(self, cfg, n: int):
        super().__init__(cfg)
        self.n = n

    def on_step_end(self, model):
        self.n -= 1
        if self.n == 0:
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_run_interrupted_mid_epoch_and_resumed_ends_with_the_weights_of_an_uninterrupted_one(corpus, tmp_path):
    small = write_data_dir(tmp_path / "small", read_data_dir(corpus / "train").utts[:32])
    opts = {"data": str(small), "dev": None, "epochs": 2, "batch_size": 8, "d_model": 32, "layers": 1, "heads": 2}
    full_cfg = train_cfg(corpus, tmp_path / "runs", name="full", **opts)
    full = fit(AsrTask(full_cfg), full_cfg)
    cfg = train_cfg(corpus, tmp_path / "runs", name="cut", **opts)
    with pytest.raises(Interrupted) as e:
        fit(StopAfter(cfg, 6), cfg)  # 4 steps per epoch: stops in epoch 2, SpecAugment draws included
    saved = checkpoint.load(Path(e.value.run_dir) / "checkpoints" / "last.pt")
    assert (saved["epoch"], saved["batch_in_epoch"]) == (1, 2)  # saved mid-epoch 2, after 2 of its 4 batches
    resumed_cfg = train_cfg(corpus, tmp_path / "runs", resume=e.value.run_dir, **opts)
    resumed = fit(AsrTask(resumed_cfg), resumed_cfg)
    assert resumed.run_dir == e.value.run_dir
    assert resumed.weights_digest == full.weights_digest


def test_bad_training_input_is_one_line(corpus, tmp_path, capsys):
    assert_user_error(run_main(capsys, "asr", "train", "--data", tmp_path / "nope"), "does not exist")
    assert_user_error(run_main(capsys, "asr", "train"), "--data is required")
    assert_user_error(run_main(capsys, "asr", "train", "--data", corpus / "train", "--d-model", "30", "--heads", "4"),
                      "not a multiple of --heads")  # fmt: skip
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "wav.scp").write_text("u1 /nonexistent.wav\n")
    (bad / "text").write_text("u1 一\n")
    assert_user_error(run_main(capsys, "asr", "train", "--data", bad, "--runs-dir", tmp_path / "runs"), "does not exist")


def test_evaluate_counts_reference_characters_outside_the_vocabulary(trained, corpus, tmp_path):
    u = read_data_dir(corpus / "test").utts[0]
    d = write_data_dir(tmp_path / "oov", [type(u)(u.utt, u.wav, u.text + "山水", u.spk)])  # 山, 水: never trained
    r = evaluate(trained["run_dir"], str(d), threads=1)
    assert r["out_of_vocabulary"] == 2 and r["cer"]["deletions"] >= 2


def padding(batches: list[list[int]]) -> float:
    """The fraction of a padded batch's frames that are padding, over all batches."""
    return 1 - sum(sum(b) for b in batches) / sum(len(b) * max(b) for b in batches)


def test_training_batches_hold_utterances_of_similar_duration(corpus, tmp_path):
    """The task gives the engine each utterance's frames (sample_lengths): batches padded far less than random ones."""
    import torch

    seen: list[list[int]] = []

    class Recording(AsrTask):
        def collate_fn(self, batch):
            seen.append([len(x) for x, _ in batch])
            return super().collate_fn(batch)

    small = write_data_dir(tmp_path / "small", read_data_dir(corpus / "train").utts[:64])
    cfg = train_cfg(corpus, tmp_path / "runs", data=str(small), dev=None, epochs=1, batch_size=8, d_model=32,
                    layers=1, heads=2)  # fmt: skip
    task = Recording(cfg)
    fit(task, cfg)
    lengths = [len(task.train_set.feats[u.utt]) for u, _ in task.train_set.items]
    binned = task.sample_lengths(task.train_set)
    assert all(0.95 * n <= b <= 1.05 * n for n, b in zip(lengths, binned, strict=True))  # frames, in 10% bins
    assert sorted(n for b in seen for n in b) == sorted(lengths)  # every utterance once, in batches of 8
    assert [len(b) for b in seen] == [8] * 8
    g = torch.Generator().manual_seed(0)
    shuffled = [[lengths[i] for i in torch.randperm(64, generator=g).tolist()] for _ in range(20)]
    random = sum(padding([s[i : i + 8] for i in range(0, 64, 8)]) for s in shuffled) / 20
    # measured here: 9% of the bucketed batches' frames are padding, 30% of random batches' (mean of 20)
    assert padding(seen) < random / 2, (padding(seen), random)
