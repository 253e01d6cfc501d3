"""The engine contract: the order in which fit calls a task's hooks, and a misspelled hook failing loudly."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from dlbox.engine.config import EngineConfig
from dlbox.engine.task import HOOKS, Task
from dlbox.engine.trainer import fit


class Recorder(Task):
    """A linear model on 8 samples (2 steps an epoch at batch 4), every hook noting its call."""

    name = "hooks"
    best_metric = "val/accuracy"

    def __init__(self):
        self.calls: list[str] = []
        g = torch.Generator().manual_seed(0)
        x = torch.randn(12, 3, generator=g)
        self.data = TensorDataset(x[:8], (x[:8, 0] > 0).long()), TensorDataset(x[8:], (x[8:, 0] > 0).long())

    def build_model(self):
        self.calls.append("build_model")
        return nn.Linear(3, 2)

    def datasets(self):
        self.calls.append("datasets")
        return self.data

    def sample_lengths(self, dataset):
        self.calls.append("sample_lengths")
        return None

    def configure_optimizers(self, model, steps_per_epoch):
        self.calls.append(f"configure_optimizers({steps_per_epoch})")
        return torch.optim.SGD(model.parameters(), lr=0.1), None

    def load_state_dict(self, state):
        self.calls.append(f"load_state_dict({state['marker']})")

    def on_epoch_start(self, model, epoch):
        assert model.training
        self.calls.append(f"on_epoch_start({epoch})")

    def train_step(self, model, batch):
        self.calls.append("train_step")
        x, y = batch
        loss = nn.functional.cross_entropy(model(x), y)
        return loss, {"loss": loss.detach() * len(y), "count": len(y)}

    def on_step_end(self, model):
        self.calls.append("on_step_end")

    def before_evaluate(self, model, ctx):
        self.calls.append("before_evaluate")

    def eval_model(self, model):
        self.calls.append("eval_model")
        return model

    def evaluate(self, model, loader, ctx, cfg):
        self.calls.append("evaluate")
        return super().evaluate(model, loader, ctx, cfg)  # the default: eval_step per batch

    def eval_step(self, model, batch):
        self.calls.append("eval_step")
        x, y = batch
        return {"accuracy": (model(x).argmax(1) == y).sum(), "count": len(y)}

    def state_dict(self):
        self.calls.append("state_dict")
        return {"marker": "m"}


def config(tmp_path, **kw) -> EngineConfig:
    kw = {"epochs": 2, "tracker": "none", **kw}
    return EngineConfig(batch_size=4, seed=0, deterministic=True, threads=1, monitor_interval=0,
                        runs_dir=str(tmp_path), name="r", **kw)  # fmt: skip


def test_fit_calls_the_hooks_in_the_documented_order(tmp_path):
    task = Recorder()
    fit(task, config(tmp_path))
    step = ["train_step", "on_step_end"]
    validation = ["before_evaluate", "eval_model", "evaluate", "eval_step"]  # 4 samples at batch 4: one batch
    epoch = lambda e: [f"on_epoch_start({e})", *step, *step, *validation, "state_dict"]  # noqa: E731
    assert task.calls == ["build_model", "datasets", "sample_lengths", "configure_optimizers(2)", *epoch(0), *epoch(1)]

    resumed = Recorder()
    fit(resumed, config(tmp_path, resume=f"{tmp_path}/hooks/r", epochs=3))
    assert resumed.calls[:5] == ["build_model", "datasets", "sample_lengths", "configure_optimizers(2)",
                                 "load_state_dict(m)"]  # fmt: skip
    assert resumed.calls[5:] == epoch(2)


@pytest.mark.parametrize("name", ["on_epoch_begin", "on_step_ends", "eval_steps", "before_evaluation"])
def test_a_misspelled_hook_fails_when_the_class_is_defined(name):
    with pytest.raises(TypeError, match=f"{name} is not an engine hook"):
        type("Bad", (Task,), {name: lambda self, *a: None})


def test_private_helpers_and_every_known_hook_are_accepted():
    type("Good", (Task,), {"_on_epoch_begin": lambda self: None, "predict_loader": lambda self: None,
                           **{h: lambda self, *a: None for h in HOOKS}})  # fmt: skip


def test_a_task_that_is_not_a_task_subclass_is_refused(tmp_path):
    class Duck:
        name, best_metric = "duck", "val/loss"

    with pytest.raises(TypeError, match="must subclass dlbox.engine.task.Task"):
        fit(Duck(), config(tmp_path))


class Noting:
    """A tracker that notes its calls (registered under the name "noting")."""

    calls: list = []

    def start(self, run_dir, cfg, resumed):
        Noting.calls.append(("start", resumed))

    def log_params(self, params):
        Noting.calls.append(("params", params["batch_size"]))

    def log_metrics(self, record, step):
        Noting.calls.append(("metrics", step, "val/accuracy" in record))

    def log_artifact(self, path):
        Noting.calls.append(("artifact", path.name))

    def finish(self, status):
        Noting.calls.append(("finish", status))


def test_trackers_named_by_the_option_get_the_run_and_none_writes_no_events(tmp_path, monkeypatch):
    from dlbox.engine import tracking

    monkeypatch.setitem(tracking.TRACKERS, "noting", Noting)
    Noting.calls = []
    fit(Recorder(), config(tmp_path / "a", tracker="noting"))
    assert Noting.calls[:4] == [("start", None), ("params", 4), ("metrics", 2, True), ("metrics", 4, True)]
    artifacts = {c[1] for c in Noting.calls[4:-1] if c[0] == "artifact"}
    assert {"config.yaml", "metrics.jsonl"} <= artifacts and len(artifacts) == len(Noting.calls) - 5
    assert Noting.calls[-1] == ("finish", "finished")
    assert not (tmp_path / "a" / "hooks" / "r" / "tensorboard").exists()  # "noting" only: no TensorBoard
    Noting.calls = []
    fit(Recorder(), config(tmp_path / "a", tracker="tensorboard,noting", resume=f"{tmp_path}/a/hooks/r", epochs=3))
    assert Noting.calls[0] == ("start", 4) and Noting.calls[-1] == ("finish", "finished")
    assert any((tmp_path / "a" / "hooks" / "r" / "tensorboard").iterdir())


@pytest.mark.parametrize("spec", ["tensorbored", "tensorboard,tensorboard"])
def test_a_bad_tracker_is_one_user_error(spec):
    from dlbox.base.errors import UserError

    with pytest.raises(UserError, match="--tracker"):
        EngineConfig(tracker=spec).validate()
