"""A loss that becomes NaN or infinite stops the run with one line and exit 1; the last finite checkpoint stays,
and nothing of the diverged state is saved (issue 21)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from dlbox.engine import checkpoint
from dlbox.engine.config import EngineConfig
from dlbox.engine.metrics import read_jsonl
from dlbox.engine.task import Task
from dlbox.engine.trainer import Diverged, fit
from tests.conftest import run_main

NETS = Path(__file__).parents[1] / "tasks" / "caffe" / "nets"


class PoisonedAt(Task):
    """A BatchNorm MLP on 8 samples (2 steps an epoch at batch 4) whose loss is ``poison`` from step ``at`` on."""

    name = "poisoned"
    best_metric = "val/accuracy"

    def __init__(self, at: int, poison: float):
        self.at, self.poison, self.steps = at, poison, 0
        g = torch.Generator().manual_seed(0)
        x = torch.randn(12, 3, generator=g)
        self.data = TensorDataset(x[:8], (x[:8, 0] > 0).long()), TensorDataset(x[8:], (x[8:, 0] > 0).long())

    def build_model(self):
        return nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))

    def datasets(self):
        return self.data

    def configure_optimizers(self, model, steps_per_epoch):
        return torch.optim.SGD(model.parameters(), lr=0.1), None

    def train_step(self, model, batch):
        self.steps += 1
        x, y = batch
        loss = nn.functional.cross_entropy(model(x), y)
        if self.steps >= self.at:
            loss = loss * self.poison
        return loss, {"loss": loss.detach() * len(y), "count": len(y)}

    def eval_step(self, model, batch):
        x, y = batch
        return {"accuracy": (model(x).argmax(1) == y).sum(), "count": len(y)}


@pytest.mark.parametrize("poison", [math.nan, math.inf], ids=["nan", "inf"])
def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_finite_checkpoint(tmp_path, poison):
    cfg = EngineConfig(epochs=4, batch_size=4, seed=0, deterministic=True, threads=1, monitor_interval=0,
                       runs_dir=str(tmp_path), name="r", tracker="none")  # fmt: skip
    with pytest.raises(Diverged, match="loss was NaN or infinite at step 3") as e:
        fit(PoisonedAt(3, poison), cfg)
    assert e.value.exit_code == 1 and "\n" not in str(e.value)
    ckpts = tmp_path / "poisoned" / "r" / "checkpoints"
    last = checkpoint.load(ckpts / "last.pt")
    assert last["global_step"] == 2 and last["epoch"] == 1  # the end of epoch 1, before the poisoned step 3
    assert all(torch.isfinite(t).all() for t in last["model"].values() if t.is_floating_point())
    assert checkpoint.load(ckpts / "best.pt")["global_step"] == 2  # best.pt: epoch 1's, not the diverged one
    assert not (ckpts / "last.prev.pt").exists() or checkpoint.load(ckpts / "last.prev.pt")["global_step"] < 2
    assert [r["epoch"] for r in read_jsonl(tmp_path / "poisoned" / "r" / "metrics.jsonl")] == [1]


def test_a_caffe_solver_whose_lr_explodes_exits_1_with_one_line_and_no_caffemodel(capsys, tmp_path):
    solver = (NETS / "tiny_solver.prototxt").read_text().replace("base_lr: 0.05", "base_lr: 1e30")
    (tmp_path / "solver.prototxt").write_text(solver.replace('net: "', f'net: "{NETS}/'))
    res = run_main(capsys, "caffe", "train", "--solver", tmp_path / "solver.prototxt", "--runs-dir", tmp_path / "runs",
                   "--max-iter", "2", "--deterministic", "--threads", "1", "--json")  # fmt: skip
    assert res.returncode == 1 and res.stdout == ""
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "diverged" in lines[0] and "Traceback" not in res.stderr, res.stderr
    assert not list((tmp_path / "runs").rglob("*.caffemodel")) and not list((tmp_path / "runs").rglob("best.pt"))
