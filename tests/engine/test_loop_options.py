"""The loop's step-based options on a tiny sequence task: --max-steps, --eval-every, and length-bucketed batches
(a task with ``sample_lengths``), each resumable bit for bit."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from dlbox.engine import checkpoint
from dlbox.engine.config import EngineConfig
from dlbox.engine.metrics import read_jsonl
from dlbox.engine.task import Task
from dlbox.engine.trainer import fit


class Sequences(Dataset):
    """Sequences of 2..40 random frames of 4 features; the label is the sign of the first feature's mean."""

    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.items = [torch.randn(int(torch.randint(2, 41, (1,), generator=g)), 4, generator=g) for _ in range(n)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        x = self.items[i]
        return x, int(x[:, 0].mean() > 0)


class SequenceTask(Task):
    name = "seq"
    best_metric = "val/accuracy"

    def __init__(self, bucketed: bool):
        self.padded_frames = 0
        if bucketed:
            self.sample_lengths = lambda ds: [len(x) for x in ds.items]

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))

    def datasets(self):
        return Sequences(90, seed=1), Sequences(30, seed=2)

    def configure_optimizers(self, model, steps_per_epoch):
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), None

    def collate_fn(self, items):
        xs, ys = zip(*items, strict=True)
        lens = torch.tensor([len(x) for x in xs])  # (B,)
        x = nn.utils.rnn.pad_sequence(list(xs), batch_first=True)  # (B, T, 4)
        self.padded_frames += int(lens.max()) * len(xs) - int(lens.sum())
        return x, lens, torch.tensor(ys)

    def _logits(self, model, x, lens):
        mask = (torch.arange(x.shape[1])[None] < lens[:, None]).unsqueeze(-1)  # (B, T, 1)
        return model((x * mask).sum(1) / lens[:, None])  # mean over the real frames -> (B, 2)

    def train_step(self, model, batch):
        x, lens, y = batch
        loss = nn.functional.cross_entropy(self._logits(model, x, lens), y)
        return loss, {"loss": loss.detach() * len(y), "count": len(y)}

    def eval_step(self, model, batch):
        x, lens, y = batch
        hits = (self._logits(model, x, lens).argmax(1) == y).sum()
        return {"accuracy": hits, "count": len(y)}


def config(tmp_path, name: str, **kw) -> EngineConfig:
    return EngineConfig(epochs=3, batch_size=8, seed=0, deterministic=True, threads=1, monitor_interval=0,
                        runs_dir=str(tmp_path), name=name, **kw)  # fmt: skip


def weights(run_dir) -> dict[str, torch.Tensor]:
    return checkpoint.load(f"{run_dir}/checkpoints/last.pt")["model"]


@pytest.fixture(scope="module", params=[True, False], ids=["bucketed", "plain"])
def reference(request, tmp_path_factory):
    """3 uninterrupted epochs (12 steps each) with validation every 5 steps."""
    tmp = tmp_path_factory.mktemp("seq")
    task = SequenceTask(bucketed=request.param)
    return request.param, tmp, fit(task, config(tmp, "ref", eval_every=5)), task


def test_max_steps_stops_mid_epoch_and_a_resume_with_more_steps_equals_the_uninterrupted_run(reference):
    bucketed, tmp, ref, _ = reference
    cut = fit(SequenceTask(bucketed), config(tmp, "cut", max_steps=17, eval_every=5))
    saved = checkpoint.load(f"{cut.run_dir}/checkpoints/last.pt")
    assert (saved["global_step"], saved["epoch"], saved["batch_in_epoch"]) == (17, 1, 5)  # 12 steps an epoch
    fit(SequenceTask(bucketed), config(tmp, "cut", resume=cut.run_dir, eval_every=5))
    for key, value in weights(ref.run_dir).items():
        assert torch.equal(value, weights(cut.run_dir)[key]), key
    # The same validation records at the same steps, the partial epoch's included.
    evals = [(r["step"], r["val/accuracy"]) for r in read_jsonl(f"{ref.run_dir}/metrics.jsonl", kind="eval")]
    assert evals == [(r["step"], r["val/accuracy"]) for r in read_jsonl(f"{cut.run_dir}/metrics.jsonl", kind="eval")]


def test_a_run_resumed_at_its_max_steps_trains_no_further(reference, tmp_path):
    bucketed, *_ = reference
    cut = fit(SequenceTask(bucketed), config(tmp_path, "cut", max_steps=12))
    before = weights(cut.run_dir)
    again = fit(SequenceTask(bucketed), config(tmp_path, "cut", resume=cut.run_dir, max_steps=12))
    assert again.weights_digest == cut.weights_digest
    assert all(torch.equal(v, weights(cut.run_dir)[k]) for k, v in before.items())


def test_eval_every_validates_between_epoch_ends(reference):
    _, _, ref, _ = reference
    evals = read_jsonl(f"{ref.run_dir}/metrics.jsonl", kind="eval")
    assert [r["step"] for r in evals] == [5, 10, 15, 20, 25, 30, 35]  # 12, 24 and 36 are epochs' ends
    assert all(0 <= r["val/accuracy"] <= 1 for r in evals)
    epochs = read_jsonl(f"{ref.run_dir}/metrics.jsonl")
    # Final accuracy on seeds 0-4 (30 samples): bucketed 0.80-0.97, plain 0.87-0.97; the bar is below both.
    assert [r["step"] for r in epochs] == [12, 24, 36] and epochs[-1]["val/accuracy"] > 0.7


def test_a_task_with_sample_lengths_gets_batches_of_similar_length(tmp_path):
    padded = {}
    for bucketed in (True, False):
        task = SequenceTask(bucketed)
        fit(task, dataclasses.replace(config(tmp_path, str(bucketed)), epochs=1))
        padded[bucketed] = task.padded_frames
    assert padded[True] < 0.5 * padded[False], padded
