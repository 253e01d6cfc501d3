"""A Caffe SolverParameter (solver.prototxt): its fields and Caffe's learning-rate policies (the six solver
types' updates are in dlbox.tasks.caffe.updates).

Read without caffe.proto compiled (dlbox.convert.caffe.textformat). Fields that change the arithmetic
are honoured; fields about Caffe's own console, devices or file formats are accepted and ignored (listed in
IGNORED); anything else is refused by name rather than silently trained differently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from dlbox.base.errors import UserError
from dlbox.convert.caffe.textformat import Msg, parse_file
from dlbox.tasks.caffe.updates import TYPES

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")
SUPPORTED = {
    "net", "net_param", "train_net", "base_lr", "lr_policy", "gamma", "power", "stepsize", "stepvalue", "momentum",
    "momentum2", "delta", "rms_decay", "weight_decay", "regularization_type", "max_iter", "test_interval", "test_iter",
    "snapshot", "snapshot_prefix", "random_seed", "type", "solver_type", "iter_size",
}  # fmt: skip
# Caffe's console, devices and file formats: no effect on what is learned here.
IGNORED = {
    "display", "average_loss", "solver_mode", "device_id", "debug_info", "test_compute_loss", "test_initialization",
    "snapshot_after_train", "snapshot_format", "snapshot_diff", "layer_wise_reduce", "weights", "train_state",
}  # fmt: skip
# The old `solver_type` enum (by number or name), upgraded to `type` as Caffe's UpgradeSolverType does.
_V1_TYPES = {0: "SGD", 1: "Nesterov", 2: "AdaGrad", 3: "RMSProp", 4: "AdaDelta", 5: "Adam"}
_V1_TYPES.update({name.upper(): name for name in _V1_TYPES.values()})


@dataclass
class Solver:
    path: str
    net: Msg
    base_lr: float
    lr_policy: str = "fixed"
    gamma: float = 0.0
    power: float = 0.0
    stepsize: int = 0
    stepvalue: list[int] = field(default_factory=list)
    momentum: float = 0.0
    momentum2: float = 0.999
    delta: float = 1e-8
    rms_decay: float = 0.99
    weight_decay: float = 0.0
    regularization_type: str = "L2"
    max_iter: int = 0
    test_interval: int = 0
    test_iter: list[int] = field(default_factory=list)
    snapshot: int = 0
    snapshot_prefix: str = ""
    random_seed: int | None = None
    type: str = "SGD"
    net_path: str | None = None  # the net's prototxt (None for net_param)

    def lr_factor(self, it: int) -> float:
        """base_lr x this = the learning rate at iteration ``it`` (Caffe's SGDSolver::GetLearningRate)."""
        p = self.lr_policy
        if p == "fixed":
            return 1.0
        if p == "step":
            return self.gamma ** (it // self.stepsize)
        if p == "exp":
            return self.gamma**it
        if p == "inv":
            return (1 + self.gamma * it) ** (-self.power)
        if p == "multistep":
            return self.gamma ** sum(1 for s in self.stepvalue if it >= s)
        if p == "poly":
            return max(0.0, 1 - it / self.max_iter) ** self.power
        return 1 / (1 + math.exp(-self.gamma * (it - self.stepsize)))  # sigmoid


def _need(solver: Msg, key: str, where: str, policy: str):
    if not solver.has(key):
        raise UserError(f"{where}: lr_policy {policy!r} needs {key}", f"add `{key}: ...` to the solver")
    return solver.get(key)


def _solver_type(s: Msg, where: str) -> str:
    if s.has("type") and s.has("solver_type"):
        raise UserError(f"{where}: both `type` and the old `solver_type` are given", "keep `type` only")
    old = s.get("solver_type", "SGD")
    kind = s.get("type") if s.has("type") else _V1_TYPES.get(old.upper() if isinstance(old, str) else old, old)
    if kind not in TYPES:
        raise UserError(f"{where}: solver type {kind!r} is unknown", f"use one of {', '.join(TYPES)}")
    return str(kind)


def read_solver(path: str | Path) -> Solver:
    p = Path(path)
    s = parse_file(p)
    where = str(p)
    if s.has("layer") or s.has("layers"):
        raise UserError(f"{where} is a net definition, not a solver", "pass the solver.prototxt whose `net:` names it")
    unknown = sorted(k for k in s.fields if k not in SUPPORTED | IGNORED)
    if unknown:
        raise UserError(f"{where}: solver field {unknown[0]!r} is not supported by dlbox's Caffe solver",
                        f"supported: {', '.join(sorted(SUPPORTED))}")  # fmt: skip
    found = None
    if s.has("net_param"):
        net = s.msg("net_param")
    else:
        net_file = s.get("net") or s.get("train_net")
        if not net_file:
            raise UserError(f"{where} names no net", "add `net: \"train_val.prototxt\"` (or net_param { ... })")
        # Caffe resolves paths from the directory it runs in; a path next to the solver is tried first.
        candidates = [p.parent / net_file, Path(net_file)]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise UserError(f"{where}: net {net_file!r} not found", f"looked in {p.parent} and the current directory")
        net = parse_file(found)
    policy = str(s.get("lr_policy", "fixed"))
    if policy not in POLICIES:
        raise UserError(f"{where}: lr_policy {policy!r} is unknown", f"use one of {', '.join(POLICIES)}")
    kind = _solver_type(s, where)
    regularization = str(s.get("regularization_type", "L2"))
    if regularization not in ("L2", "L1"):
        raise UserError(f"{where}: regularization_type {regularization!r} is unknown", "use \"L2\" or \"L1\"")
    if int(s.get("iter_size", 1)) != 1:
        raise UserError(f"{where}: iter_size {s.get('iter_size')} (gradient accumulation) is not supported",
                        "use iter_size: 1 with a larger batch_size")  # fmt: skip
    if not s.has("base_lr"):
        raise UserError(f"{where}: base_lr is required", "add e.g. 'base_lr: 0.01' to the solver")
    solver = Solver(
        path=where, net=net, base_lr=float(s.get("base_lr")), lr_policy=policy, type=kind,
        gamma=float(s.get("gamma", 0.0)), power=float(s.get("power", 0.0)), stepsize=int(s.get("stepsize", 0)),
        stepvalue=[int(v) for v in s.all("stepvalue")], momentum=float(s.get("momentum", 0.0)),
        momentum2=float(s.get("momentum2", 0.999)), delta=float(s.get("delta", 1e-8)),
        rms_decay=float(s.get("rms_decay", 0.99)), regularization_type=regularization,
        weight_decay=float(s.get("weight_decay", 0.0)), max_iter=int(s.get("max_iter", 0)),
        test_interval=int(s.get("test_interval", 0)), test_iter=[int(v) for v in s.all("test_iter")],
        snapshot=int(s.get("snapshot", 0)), snapshot_prefix=str(s.get("snapshot_prefix", "")),
        random_seed=int(s.get("random_seed")) if s.has("random_seed") and int(s.get("random_seed")) >= 0 else None,
        net_path=str(found) if found is not None else None,
    )  # fmt: skip
    needs = {"step": ("gamma", "stepsize"), "exp": ("gamma",), "inv": ("gamma", "power"), "multistep": ("gamma", "stepvalue"),
             "poly": ("power",), "sigmoid": ("gamma", "stepsize")}.get(policy, ())  # fmt: skip
    for key in needs:
        _need(s, key, where, policy)
    if policy == "step" and solver.stepsize < 1:
        raise UserError(f"{where}: stepsize must be at least 1, got {solver.stepsize}", "e.g. 'stepsize: 5000'")
    # The constructors' sanity checks of sgd_solvers.hpp.
    if kind in ("AdaGrad", "RMSProp") and solver.momentum != 0:
        raise UserError(f"{where}: momentum cannot be used with {kind} (momentum: {solver.momentum})",
                        "remove `momentum` from the solver")  # fmt: skip
    if kind == "RMSProp" and not 0 <= solver.rms_decay < 1:
        raise UserError(f"{where}: rms_decay should lie in [0, 1), got {solver.rms_decay}", "e.g. 'rms_decay: 0.98'")
    if solver.max_iter < 1:
        raise UserError(f"{where}: max_iter must be at least 1", "add `max_iter: N` (iterations to train)")
    return solver
