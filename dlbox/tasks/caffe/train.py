"""`dlbox caffe train --solver solver.prototxt`: a Caffe solver run on the dlbox engine.

Reads top to bottom: solver -> data for the Data layers -> the TRAIN/TEST net (one module, phases switched by
train/eval mode) -> Caffe's per-parameter lr_mult/decay_mult and lr policy on the engine's optimiser and
scheduler -> the engine's loop (runs, resume, TensorBoard, checkpoints) -> the trained weights as a
.caffemodel that Caffe and OpenCV read.

How Caffe's iteration-based fields map onto the engine: training stops after exactly max_iter iterations
(the engine's max_steps, mid-epoch if need be; the lr policy runs per iteration, so the schedule is Caffe's);
the TEST net runs every test_interval iterations (the engine's eval_every, records of kind "eval" in
metrics.jsonl), at every epoch's end and at max_iter, over test_iter batches of the TEST layer's batch_size
(see test_subset); checkpoints are written every epoch, every `snapshot` iterations (the engine's
save_every) and at max_iter, and the final weights also go to RUN/<snapshot_prefix>_iter_<N>.caffemodel.
Not reproduced: the test before the first iteration (test_initialization).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from dlbox.base.errors import UserError
from dlbox.base.progress import log
from dlbox.convert.caffe.net import CaffeNet, net_layers
from dlbox.convert.caffe.wire import write_caffemodel
from dlbox.engine import distributed
from dlbox.engine.task import Task
from dlbox.engine.trainer import fit
from dlbox.tasks.caffe.config import CaffeTrainConfig
from dlbox.tasks.caffe.data import Source, digits, open_sources, resolve_mean_files, resolve_source
from dlbox.tasks.caffe.solver import Solver, read_solver
from dlbox.tasks.caffe.updates import make_optimizer

EXAMPLES = Path(__file__).parent / "examples"
LENET_SOLVER = EXAMPLES / "lenet_solver.prototxt"


def load_data(data: str | None) -> tuple[TensorDataset, TensorDataset]:
    """(train, test) of the built-in digits (or MNIST IDX files in ``data``) as raw pixels in [0, 255]."""
    return digits(data)


def load_sources(solver: Solver, data: str | None) -> tuple[Dataset, Dataset, list[Source]]:
    """The TRAIN and TEST Data layers' datasets: their LMDB sources, or the digits (see dlbox.tasks.caffe.data)."""
    bases = [Path(p).parent for p in (solver.net_path, solver.path) if p]
    resolve_mean_files(solver.net, bases)
    sources = [resolve_source(solver.net, phase, bases, data) for phase in ("TRAIN", "TEST")]
    train_set, test_set = open_sources(sources, data)
    return train_set, test_set, sources


def data_batch_size(solver: Solver) -> int | None:
    for layer in net_layers(solver.net):
        if layer.get("type") == "Data" and layer.has("data_param"):
            phases = [r.get("phase") for r in layer.all("include")]
            if not phases or "TRAIN" in phases or 0 in phases:
                return int(layer.msg("data_param").get("batch_size", 0)) or None
    return None


class CaffeSolverTask(Task):
    """The solver's net for the engine: the objective is the TRAIN net's weighted losses; every scalar output
    of the TEST net (accuracy, loss) is averaged over the test set."""

    name = "caffe"

    def __init__(self, cfg: CaffeTrainConfig, solver: Solver, train_set: Dataset, test_set: Dataset):
        self.cfg, self.solver = cfg, solver
        self.train_set, self.test_set = train_set, test_set
        sample = tuple(train_set[0][0].shape)  # (C, H, W) before transform_param
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
        opt = make_optimizer(s, groups)
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


def test_subset(test_set: Dataset, solver: Solver, test_batch: int | None) -> Dataset:
    """Caffe's test: test_iter batches of the TEST layer's batch_size. Their first test_iter x batch_size
    samples (Caffe's cursor runs on through the database between tests and wraps around at its end; here
    every test reads the same samples, all of them once when test_iter x batch_size covers the set)."""
    if not solver.test_iter or not test_batch:
        return test_set
    n = solver.test_iter[0] * test_batch
    return test_set if n >= len(test_set) else Subset(test_set, range(n))


def plan(cfg: CaffeTrainConfig) -> tuple[CaffeTrainConfig, Solver, Dataset, Dataset, dict[str, Any]]:
    """The solver read and its iterations given to the engine: max_iter as its max_steps (with enough epochs
    to reach it), test_interval as its eval_every, snapshot as its save_every (saved in the run)."""
    solver = read_solver(cfg.solver)
    given = cfg.max_iter or (cfg.max_steps if not cfg.resume else None)  # the engine's --max-steps: an alias
    if given:
        solver = dataclasses.replace(solver, max_iter=given)
    train_set, test_set, sources = load_sources(solver, cfg.data)
    test_set = test_subset(test_set, solver, sources[1].batch_size)
    batch = cfg.batch_size or data_batch_size(solver) or 64
    steps = math.ceil(len(train_set) / batch)
    max_steps = solver.max_iter
    epochs = cfg.epochs or math.ceil(max_steps / steps)
    if cfg.resume and cfg.max_steps and cfg.epochs == math.ceil(cfg.max_steps / steps):
        # Resumed with a new --max-iter: the saved epochs were the old max_iter's, not a limit of their own.
        epochs = math.ceil(max_steps / steps)
    seed = cfg.seed if cfg.seed or solver.random_seed is None else solver.random_seed
    cfg = dataclasses.replace(cfg, batch_size=batch, epochs=epochs, max_iter=solver.max_iter, seed=seed,
                              max_steps=max_steps, eval_every=cfg.eval_every or solver.test_interval or None,
                              solver=str(Path(cfg.solver).resolve()))  # fmt: skip
    if solver.snapshot and getattr(cfg, "save_every", 0) is None:
        # `snapshot: N`: a resumable checkpoint every N iterations, where the engine can write one mid-epoch.
        cfg = dataclasses.replace(cfg, save_every=solver.snapshot)
    mapping = {"max_iter": solver.max_iter, "batch_size": batch, "iterations_per_epoch": steps, "epochs": epochs,
               "iterations": min(max_steps, epochs * steps), "test_interval": cfg.eval_every,
               "test_samples": len(test_set), "lr_policy": solver.lr_policy, "type": solver.type,
               "data": {s.phase: s.path if s.kind == "lmdb" else f"digits:{s.path}" for s in sources}}  # fmt: skip
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
