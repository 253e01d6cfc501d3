"""Caffe's six solver types as torch optimizers, each with the arithmetic of its ComputeUpdateValue in BVLC
Caffe's src/caffe/solvers/<type>_solver.cpp.

Caffe's step for one parameter, in the order ``SGDSolver::ApplyUpdate`` runs it:
  1. Regularize: the gradient g gets local_decay x w (L2) or local_decay x sign(w) (L1) added, where
     local_decay = weight_decay x decay_mult (a group's ``weight_decay`` here);
  2. ComputeUpdateValue: the solver type turns g into an update u, scaled by local_rate = the policy's rate x
     lr_mult (a group's ``lr``, which the engine's scheduler moves);
  3. Net::Update: w -= u.
The histories are Caffe's too (SGD's holds lr x gradient, so a learning-rate change does not rescale the
momentum already gathered, unlike torch.optim.SGD; Adam's bias correction multiplies the learning rate,
with delta added to sqrt(v) uncorrected, unlike torch.optim.Adam).
"""

from __future__ import annotations

import inspect
import math

import torch

TYPES = ("SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam")


class CaffeOptimizer(torch.optim.Optimizer):
    """Steps 1 and 3 above; a subclass gives step 2 as ``update(g, state, group) -> u``. A parameter without a
    gradient is left alone (in Caffe it would not be in the TRAIN net's learnable parameters)."""

    def __init__(self, groups, **defaults):
        defaults.setdefault("weight_decay", 0.0)
        defaults.setdefault("regularization", "L2")
        super().__init__(groups, defaults)

    def update(self, g: torch.Tensor, state: dict, group: dict) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def _zeros(state: dict, key: str, like: torch.Tensor) -> torch.Tensor:
        if key not in state:
            state[key] = torch.zeros_like(like)
        return state[key]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if decay:
                    g = g.add(p if group["regularization"] == "L2" else torch.sign(p), alpha=decay)
                p.sub_(self.update(g, self.state[p], group))
        return loss


class CaffeSGD(CaffeOptimizer):
    """sgd_solver.cpp: history = local_rate x g + momentum x history; u = history."""

    def __init__(self, groups, lr: float, momentum: float = 0.0, **kw):
        super().__init__(groups, lr=lr, momentum=momentum, **kw)

    def update(self, g, state, group):
        history = self._zeros(state, "history", g)
        history.mul_(group["momentum"]).add_(g, alpha=group["lr"])
        return history


class CaffeNesterov(CaffeOptimizer):
    """nesterov_solver.cpp: old = history; history = local_rate x g + momentum x history;
    u = (1 + momentum) x history - momentum x old (step back, then over-step)."""

    def __init__(self, groups, lr: float, momentum: float = 0.0, **kw):
        super().__init__(groups, lr=lr, momentum=momentum, **kw)

    def update(self, g, state, group):
        m = group["momentum"]
        history = self._zeros(state, "history", g)
        old = history.clone()
        history.mul_(m).add_(g, alpha=group["lr"])
        return history * (1 + m) - old * m


class CaffeAdaGrad(CaffeOptimizer):
    """adagrad_solver.cpp: history += g^2; u = local_rate x g / (sqrt(history) + delta)."""

    def __init__(self, groups, lr: float, delta: float = 1e-8, **kw):
        super().__init__(groups, lr=lr, delta=delta, **kw)

    def update(self, g, state, group):
        history = self._zeros(state, "history", g)
        history.add_(g * g)
        return g / (history.sqrt() + group["delta"]) * group["lr"]


class CaffeRMSProp(CaffeOptimizer):
    """rmsprop_solver.cpp: history = (1 - rms_decay) x g^2 + rms_decay x history;
    u = local_rate x g / (sqrt(history) + delta)."""

    def __init__(self, groups, lr: float, rms_decay: float = 0.99, delta: float = 1e-8, **kw):
        super().__init__(groups, lr=lr, rms_decay=rms_decay, delta=delta, **kw)

    def update(self, g, state, group):
        d = group["rms_decay"]
        history = self._zeros(state, "history", g)
        history.mul_(d).add_(g * g, alpha=1 - d)
        return g / (history.sqrt() + group["delta"]) * group["lr"]


class CaffeAdaDelta(CaffeOptimizer):
    """adadelta_solver.cpp: history = (1 - momentum) x g^2 + momentum x history;
    g' = g x sqrt((update_history + delta) / (history + delta));
    update_history = (1 - momentum) x g'^2 + momentum x update_history; u = local_rate x g'
    (Caffe's AdaDelta keeps a learning rate: its examples use base_lr 1.0)."""

    def __init__(self, groups, lr: float, momentum: float = 0.0, delta: float = 1e-8, **kw):
        super().__init__(groups, lr=lr, momentum=momentum, delta=delta, **kw)

    def update(self, g, state, group):
        m, delta = group["momentum"], group["delta"]
        history = self._zeros(state, "history", g)
        updates = self._zeros(state, "update_history", g)
        history.mul_(m).add_(g * g, alpha=1 - m)
        g = g * ((updates + delta) / (history + delta)).sqrt()
        updates.mul_(m).add_(g * g, alpha=1 - m)
        return g * group["lr"]


class CaffeAdam(CaffeOptimizer):
    """adam_solver.cpp, with t = iteration + 1: m = (1 - beta1) x g + beta1 x m; v = (1 - beta2) x g^2 + beta2 x v;
    u = local_rate x sqrt(1 - beta2^t) / (1 - beta1^t) x m / (sqrt(v) + delta)
    (beta1 = momentum, beta2 = momentum2)."""

    def __init__(self, groups, lr: float, momentum: float = 0.9, momentum2: float = 0.999, delta: float = 1e-8, **kw):
        super().__init__(groups, lr=lr, momentum=momentum, momentum2=momentum2, delta=delta, **kw)

    def update(self, g, state, group):
        b1, b2 = group["momentum"], group["momentum2"]
        m, v = self._zeros(state, "m", g), self._zeros(state, "v", g)
        state["t"] = t = state.get("t", 0) + 1  # Caffe's iter_ + 1: every parameter steps every iteration
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).add_(g * g, alpha=1 - b2)
        correction = math.sqrt(1 - b2**t) / (1 - b1**t)
        return m / (v.sqrt() + group["delta"]) * (group["lr"] * correction)


CLASSES: dict[str, type[CaffeOptimizer]] = {
    "SGD": CaffeSGD, "Nesterov": CaffeNesterov, "AdaGrad": CaffeAdaGrad, "RMSProp": CaffeRMSProp,
    "AdaDelta": CaffeAdaDelta, "Adam": CaffeAdam,
}  # fmt: skip


def make_optimizer(solver, groups: list[dict]) -> CaffeOptimizer:
    """The optimiser of ``solver.type`` over ``groups`` (each with its lr and weight_decay), with the solver's
    hyperparameters; only those the type reads are passed (Caffe's other fields have no effect on it)."""
    cls = CLASSES[solver.type]
    every = {"momentum": solver.momentum, "momentum2": solver.momentum2, "delta": solver.delta,
             "rms_decay": solver.rms_decay}  # fmt: skip
    takes = inspect.signature(cls.__init__).parameters
    kw = {k: v for k, v in every.items() if k in takes}
    return cls(groups, lr=solver.base_lr, regularization=solver.regularization_type, **kw)
