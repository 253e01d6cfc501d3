"""Shared fixtures: the espeak-ng corpus (generated once per session) and one model trained on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# One thread: these models are small enough that a second one gains little, and two threads on a CPU
# shared with other work slowed training tenfold here (OpenMP barriers waiting for a preempted thread).
# The model every test shares (and the bar test_train holds it to): see test_train.py for the measured CERs.
TRAIN = {"epochs": 12, "batch_size": 8, "lr": 3e-3, "d_model": 144, "layers": 2, "seed": 0}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """240 training and 40 test utterances (sentences not in training) over 14 characters, 5 voices."""
    from dlbox.tasks.asr.synth import make_corpus

    # CI installs espeak-ng (Makefile); its absence must fail loudly, not skip.
    assert shutil.which("espeak-ng"), "espeak-ng is missing: apt-get install -y espeak-ng (the Makefile's test setup does)"
    out = tmp_path_factory.mktemp("asr") / "synth"
    make_corpus(out, n_train=240, n_test=40, seed=0)
    return out


def train_cfg(corpus: Path, runs: Path, **over):
    from dlbox.config import from_dict
    from dlbox.tasks.asr.config import AsrConfig

    cfg = {"data": str(corpus / "train"), "dev": str(corpus / "test"), "device": "cpu", "deterministic": True,
           "runs_dir": str(runs), "threads": 1, **TRAIN, **over}  # fmt: skip
    return from_dict(AsrConfig, cfg)


@pytest.fixture(scope="session")
def trained(corpus, tmp_path_factory) -> dict:
    """`dlbox asr train` (the Python entry point) on the corpus: the summary, with run_dir."""
    import torch

    from dlbox.tasks.asr.train import train

    threads = torch.get_num_threads()
    try:
        return train(train_cfg(corpus, tmp_path_factory.mktemp("runs"), name="shared"))
    finally:
        torch.set_num_threads(threads)  # the engine set 1 for this process: leave later tests theirs


@pytest.fixture(scope="session")
def exported(trained) -> dict:
    from dlbox.tasks.asr.export import export

    return export(trained["run_dir"])


@pytest.fixture(autouse=True)
def _keep_threads():
    """Training here runs on one thread (the engine sets it for the process): give later tests theirs back."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
