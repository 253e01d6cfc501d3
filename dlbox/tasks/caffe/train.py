"""`dlbox caffe train --solver solver.prototxt`: a Caffe solver run on the dlbox engine.

Reads top to bottom: solver -> data for the Data layers -> the TRAIN/TEST net (one module, phases switched by
train/eval mode) -> Caffe's per-parameter lr_mult/decay_mult and lr policy on the engine's optimiser and
scheduler -> the engine's loop (runs, resume, TensorBoard, checkpoints) -> the trained weights as a
.caffemodel that Caffe and OpenCV read.

How Caffe's iteration-based fields map onto the engine's epochs: max_iter becomes whole epochs (rounded up;
the lr policy still runs per iteration, so the schedule is Caffe's); the TEST net is evaluated over the whole
test set after every epoch (instead of test_iter batches every test_interval iterations); checkpoints are
written every epoch and every `snapshot` iterations (the engine's save_every), and the final weights also go
to RUN/<snapshot_prefix>_iter_<N>.caffemodel.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

from dlbox.engine import distributed
from dlbox.engine.progress import log
from dlbox.engine.trainer import fit
from dlbox.errors import UserError
from dlbox.hub.convert.caffe.net import CaffeNet, net_layers
from dlbox.hub.convert.caffe.wire import write_caffemodel
from dlbox.tasks.caffe.config import CaffeTrainConfig
from dlbox.tasks.caffe.solver import CaffeSGD, Solver, read_solver

EXAMPLES = Path(__file__).parent / "examples"
LENET_SOLVER = EXAMPLES / "lenet_solver.prototxt"


def load_data(data: str | None) -> tuple[TensorDataset, TensorDataset]:
    """(train, test) as raw pixels in [0, 255] (what a Caffe Data layer reads from its LMDB), labels int64."""
    from dlbox.data.digits import MEAN, STD, mnist_idx, sklearn_digits

    train, test = mnist_idx(data) if data else sklearn_digits()
    raw = [((ds.tensors[0] * STD + MEAN) * 255).clamp_(0, 255) for ds in (train, test)]
    return TensorDataset(raw[0], train.tensors[1]), TensorDataset(raw[1], test.tensors[1])


def data_batch_size(solver: Solver) -> int | None:
    for layer in net_layers(solver.net):
        if layer.get("type") == "Data" and layer.has("data_param"):
            phases = [r.get("phase") for r in layer.all("include")]
            if not phases or "TRAIN" in phases or 0 in phases:
                return int(layer.msg("data_param").get("batch_size", 0)) or None
    return None


class CaffeSolverTask:
    """The solver's net for the engine: the objective is the TRAIN net's weighted losses; every scalar output
    of the TEST net (accuracy, loss) is averaged over the test set."""

    name = "caffe"

    def __init__(self, cfg: CaffeTrainConfig, solver: Solver, train_set: TensorDataset, test_set: TensorDataset):
        self.cfg, self.solver = cfg, solver
        self.train_set, self.test_set = train_set, test_set
        sample = tuple(train_set.tensors[0].shape[1:])
        self.shapes = self._input_shapes(sample)
        probe = CaffeNet(solver.net, phases=("TRAIN", "TEST"), shapes=self.shapes)
        self.train_inputs, self.test_inputs = probe.inputs["TRAIN"], probe.inputs["TEST"]
        for phase, names in (("TRAIN", self.train_inputs), ("TEST", self.test_inputs)):
            if len(names) != 2:
                raise UserError(f"the {phase} net takes inputs {names}; dlbox feeds it (images, labels)",
                                "give the net one Data layer with tops data and label")  # fmt: skip
        outputs = [o for o in probe.outputs["TEST"] if probe.input_shapes["TEST"].get(o) is None]
        self.test_outputs = outputs
        accuracy = [s.tops[0] for s in probe.plans["TEST"] if s.type == "Accuracy"]
        self.best_metric = f"val/{accuracy[0]}" if accuracy else "val/loss"
        self.best_mode = "max" if accuracy else "min"
        self.net: CaffeNet | None = None

    def _input_shapes(self, sample: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        b = self.cfg.batch_size
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in net_layers(self.solver.net):
            if layer.get("type") in ("Data", "Input"):
                tops = [str(t) for t in layer.all("top")]
                if tops:
                    shapes[tops[0]] = (b, *sample)
                for t in tops[1:]:
                    shapes[t] = (b,)
        return shapes

    # --- the engine's Task protocol ---------------------------------------------------------------------
    def build_model(self) -> CaffeNet:
        self.net = CaffeNet(self.solver.net, phases=("TRAIN", "TEST"), shapes=self.shapes)
        return self.net

    def datasets(self):
        return self.train_set, self.test_set

    def configure_optimizers(self, model, steps_per_epoch: int):
        s = self.solver
        groups = [
            {"params": [p], "lr": s.base_lr * lr_mult, "weight_decay": s.weight_decay * decay_mult}
            for p, lr_mult, decay_mult in self.net.parameter_groups()
        ]
        if s.type == "Adam":
            opt = torch.optim.Adam(groups, lr=s.base_lr, betas=(s.momentum, s.momentum2), eps=s.delta)
        else:
            opt = CaffeSGD(groups, lr=s.base_lr, momentum=s.momentum, nesterov=s.type == "Nesterov")
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, s.lr_factor)

    def _sums(self, model, blobs, loss, y, outputs) -> dict[str, torch.Tensor]:
        n = y.shape[0]
        sums = {"count": n, "loss": loss.detach() * n}
        for name in outputs:
            value = blobs.get(name)
            if name != "loss" and value is not None and value.numel() == 1:
                sums[name] = value.detach().reshape(()) * n
        return sums

    def train_step(self, model, batch):
        x, y = batch  # x: (N, C, H, W) raw pixels, y: (N,)
        blobs = model(x, y)
        loss = self.net.loss(blobs)
        return loss, self._sums(model, blobs, loss, y, self.net.outputs["TRAIN"])

    def eval_step(self, model, batch):
        x, y = batch
        blobs = model(x, y)
        return self._sums(model, blobs, self.net.loss(blobs), y, self.test_outputs)


def plan(cfg: CaffeTrainConfig) -> tuple[CaffeTrainConfig, Solver, TensorDataset, TensorDataset, dict[str, Any]]:
    """The solver read and its iterations turned into the engine's epochs and batch size (saved in the run)."""
    solver = read_solver(cfg.solver)
    if cfg.max_iter:
        solver = dataclasses.replace(solver, max_iter=cfg.max_iter)
    train_set, test_set = load_data(cfg.data)
    batch = cfg.batch_size or data_batch_size(solver) or 64
    steps = math.ceil(len(train_set) / batch)
    epochs = cfg.epochs or math.ceil(solver.max_iter / steps)
    seed = cfg.seed if cfg.seed or solver.random_seed is None else solver.random_seed
    cfg = dataclasses.replace(cfg, batch_size=batch, epochs=epochs, max_iter=solver.max_iter, seed=seed,
                              solver=str(Path(cfg.solver).resolve()))  # fmt: skip
    if solver.snapshot and getattr(cfg, "save_every", 0) is None:
        # `snapshot: N`: a resumable checkpoint every N iterations, where the engine can write one mid-epoch.
        cfg = dataclasses.replace(cfg, save_every=solver.snapshot)
    mapping = {"max_iter": solver.max_iter, "batch_size": batch, "iterations_per_epoch": steps, "epochs": epochs,
               "iterations": epochs * steps, "lr_policy": solver.lr_policy, "type": solver.type}  # fmt: skip
    return cfg, solver, train_set, test_set, mapping


def train_worker(cfg: CaffeTrainConfig) -> dict[str, Any] | None:
    cfg, solver, train_set, test_set, mapping = plan(cfg)
    task = CaffeSolverTask(cfg, solver, train_set, test_set)
    result = fit(task, cfg)
    if result is None:
        return None
    from dlbox.engine import checkpoint

    # The final weights as Caffe writes them after training (snapshot_after_train).
    state = checkpoint.load(Path(result.run_dir) / "checkpoints" / "last.pt")
    net = CaffeNet(solver.net, phases=("TRAIN", "TEST"), shapes=task.shapes)
    net.load_state_dict(state["model"])
    prefix = Path(solver.snapshot_prefix).name if solver.snapshot_prefix else net.net_name
    caffemodel = Path(result.run_dir) / f"{prefix}_iter_{state['global_step']}.caffemodel"
    write_caffemodel(caffemodel, net.net_name, net.caffe_layers())
    log(f"wrote {caffemodel}")
    test = {k[4:]: v for k, v in result.last.items() if k.startswith("val/")}
    return {
        "run_dir": result.run_dir, "solver": cfg.solver, "test": test, "best": result.best,
        "caffemodel": str(caffemodel), "seconds": round(result.seconds, 2),
        "images_per_sec": round(result.images_per_sec, 1), "processes": result.world_size, **mapping,
    }  # fmt: skip


def train(cfg: CaffeTrainConfig) -> dict[str, Any] | None:
    """Run the solver (in the processes ``cfg`` asks for); returns the summary on rank 0."""
    return distributed.run(cfg, train_worker, cfg)
