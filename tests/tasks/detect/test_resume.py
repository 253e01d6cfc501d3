"""Resume after an interruption: the run continues from its last checkpoint with the same optimizer state."""

from __future__ import annotations

import dataclasses
import signal

import pytest
import torch

from dlbox.engine import checkpoint
from dlbox.engine.metrics import read_jsonl
from dlbox.engine.signals import Interrupted
from dlbox.engine.trainer import fit
from dlbox.tasks.detect.train import DetectConfig, DetectTask


class InterruptedAfter(DetectTask):
    """Sends itself SIGINT (as Ctrl-C or a kill would) after ``n`` optimizer steps."""

    def __init__(self, cfg, n: int):
        super().__init__(cfg)
        self.n, self.steps = n, 0

    def on_step_end(self, model):
        self.steps += 1
        if self.steps == self.n:
            signal.raise_signal(signal.SIGINT)


def _cfg(data, runs, name, **kw) -> DetectConfig:
    return DetectConfig(data=str(data), epochs=2, img_size=96, batch_size=4, threads=1, device="cpu", deterministic=True,
                        runs_dir=str(runs), name=name, tb_images=0, **kw)  # fmt: skip


def test_interrupted_run_resumes_with_the_same_optimizer_state_and_ends_as_the_uninterrupted_one(tiny_det, tmp_path):
    reference = fit(DetectTask(_cfg(tiny_det, tmp_path, "full")), _cfg(tiny_det, tmp_path, "full"))
    cfg = _cfg(tiny_det, tmp_path, "cut")
    with pytest.raises(Interrupted):
        fit(InterruptedAfter(cfg, 5), cfg)  # 4 steps per epoch: stopped in the middle of epoch 2
    run = tmp_path / "detect" / "cut"
    saved = checkpoint.load(run / "checkpoints" / "last.pt")
    assert (saved["epoch"], saved["batch_in_epoch"], saved["global_step"]) == (1, 1, 5)
    moments = saved["optimizer"]["state"]
    assert moments and all(s["step"] == 5 for s in moments.values())  # AdamW's moments after 5 steps

    seen: dict = {}

    class Resumed(DetectTask):
        def configure_optimizers(self, model, steps_per_epoch):
            opt, sched = super().configure_optimizers(model, steps_per_epoch)
            seen["optimizer"] = opt
            return opt, sched

        def on_epoch_start(self, model, epoch):
            if "state" not in seen:  # the engine has loaded the checkpoint by now
                seen["state"] = {k: {n: t.clone() if torch.is_tensor(t) else t for n, t in v.items()}
                                 for k, v in seen["optimizer"].state_dict()["state"].items()}  # fmt: skip

    resumed_cfg = dataclasses.replace(cfg, resume=str(run))
    result = fit(Resumed(resumed_cfg), resumed_cfg)
    assert seen["state"].keys() == moments.keys()
    for k, s in moments.items():
        for n, t in s.items():
            assert torch.equal(torch.as_tensor(seen["state"][k][n]), torch.as_tensor(t)), (k, n)
    # Continuing from the checkpoint gives exactly the weights of the run that was never interrupted.
    assert result.weights_digest == reference.weights_digest
    assert [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")] == [1, 2]
