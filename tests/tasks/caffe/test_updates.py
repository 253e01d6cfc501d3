"""Caffe's six solver types: dlbox's optimisers follow BVLC Caffe's C++ updates step for step.

The reference below is a numpy transcription (float32, as Caffe's Dtype) of the CPU branch of
ComputeUpdateValue in BVLC Caffe's src/caffe/solvers/{sgd,nesterov,adagrad,rmsprop,adadelta,adam}_solver.cpp,
preceded by SGDSolver::Regularize (sgd_solver.cpp) and followed by Net::Update (w -= diff), with Caffe's
math_functions: caffe_cpu_axpby(N, a, X, b, Y) is Y = a X + b Y; caffe_powx, caffe_add, caffe_div,
caffe_add_scalar, caffe_mul elementwise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlbox.base.errors import UserError
from dlbox.convert.caffe.textformat import Msg
from dlbox.tasks.caffe.solver import Solver, read_solver
from dlbox.tasks.caffe.train import EXAMPLES
from dlbox.tasks.caffe.updates import TYPES, make_optimizer
from tests.conftest import run_main

f32 = np.float32


def axpby(a, x, b, y):
    return (f32(a) * x + f32(b) * y).astype(f32)


# --- the C++ transcribed: (diff, history blobs, solver param, local_rate, iter_) -> new diff ---------------
def sgd(diff, h, p, local_rate, it):
    h[0] = axpby(local_rate, diff, p["momentum"], h[0])  # caffe_cpu_axpby(local_rate, diff, momentum, history)
    return h[0].copy()  # caffe_copy(history -> diff)


def nesterov(diff, h, p, local_rate, it):
    update = h[0].copy()  # save history momentum for stepping back
    h[0] = axpby(local_rate, diff, p["momentum"], h[0])  # update history
    update = axpby(1 + p["momentum"], h[0], -p["momentum"], update)  # step back then over step
    return update


def adagrad(diff, h, p, local_rate, it):
    update = np.power(diff, 2).astype(f32)  # caffe_powx(diff, 2, update)
    h[0] = (update + h[0]).astype(f32)  # caffe_add(update, history, history)
    update = np.power(h[0], f32(0.5)).astype(f32)  # caffe_powx(history, 0.5, update)
    update = (update + f32(p["delta"])).astype(f32)  # caffe_add_scalar(delta, update)
    update = (diff / update).astype(f32)  # caffe_div(diff, update, update)
    return axpby(local_rate, update, 0, diff)  # caffe_cpu_axpby(local_rate, update, 0, diff)


def rmsprop(diff, h, p, local_rate, it):
    update = np.power(diff, 2).astype(f32)
    h[0] = axpby(1 - p["rms_decay"], update, p["rms_decay"], h[0])
    update = np.power(h[0], f32(0.5)).astype(f32)
    update = (update + f32(p["delta"])).astype(f32)
    update = (diff / update).astype(f32)
    return axpby(local_rate, update, 0, diff)


def adadelta(diff, h, p, local_rate, it):
    m, delta = p["momentum"], f32(p["delta"])
    update = np.power(diff, 2).astype(f32)  # square of gradient
    h[0] = axpby(1 - m, update, m, h[0])  # history of gradients
    temp = np.full_like(diff, delta)  # caffe_set(delta, temp)
    update = (temp + h[1]).astype(f32)  # caffe_add(temp, update history, update)
    temp = (temp + h[0]).astype(f32)  # caffe_add(temp, history, temp)
    update = (update / temp).astype(f32)  # caffe_div
    update = np.power(update, f32(0.5)).astype(f32)  # caffe_powx(0.5)
    diff = (diff * update).astype(f32)  # caffe_mul(diff, update, diff)
    update = np.power(diff, 2).astype(f32)  # square of update
    h[1] = axpby(1 - m, update, m, h[1])  # history of updates
    return (f32(local_rate) * diff).astype(f32)  # caffe_cpu_scale(local_rate, diff, diff)


def adam(diff, h, p, local_rate, it):
    b1, b2 = p["momentum"], p["momentum2"]
    t = it + 1
    correction = f32(math.sqrt(1 - b2**t) / (1 - b1**t))
    h[0] = axpby(1 - b1, diff, b1, h[0])  # m
    val_t = (diff * diff).astype(f32)  # caffe_mul(diff, diff, val_t)
    h[1] = axpby(1 - b2, val_t, b2, h[1])  # v
    val_t = np.power(h[1], f32(0.5)).astype(f32)
    val_t = (val_t + f32(p["delta"])).astype(f32)
    val_t = (h[0] / val_t).astype(f32)
    return (f32(local_rate) * correction * val_t).astype(f32)  # caffe_cpu_scale(local_rate*correction, val_t)


REFERENCE = {"SGD": sgd, "Nesterov": nesterov, "AdaGrad": adagrad, "RMSProp": rmsprop, "AdaDelta": adadelta, "Adam": adam}
PARAMS = {
    "SGD": {"base_lr": 0.1, "momentum": 0.9},
    "Nesterov": {"base_lr": 0.1, "momentum": 0.9},
    "AdaGrad": {"base_lr": 0.2, "momentum": 0.0, "delta": 1e-6},
    "RMSProp": {"base_lr": 0.05, "momentum": 0.0, "rms_decay": 0.9, "delta": 1e-6},
    "AdaDelta": {"base_lr": 1.0, "momentum": 0.95, "delta": 1e-6},
    "Adam": {"base_lr": 0.05, "momentum": 0.9, "momentum2": 0.999, "delta": 1e-2},  # a delta that shows where it goes
}
CURVATURE = np.array([0.5, 1.0, 2.0, 4.0, 0.25, 3.0], dtype=f32)  # the loss sum(c (w - target)^2 / 2)
TARGET = np.array([1.0, -2.0, 0.5, 0.0, 3.0, -1.0], dtype=f32)


def caffe_trajectory(kind, regularization, w0, lr_mults, decay_mults, weight_decay, rates):
    """Caffe's ApplyUpdate per iteration: for each parameter Regularize, ComputeUpdateValue, then Update."""
    p = PARAMS[kind]
    ws = [w.copy() for w in w0]
    hist = [[np.zeros_like(w), np.zeros_like(w)] for w in ws]
    out = []
    for it, rate in enumerate(rates):
        for i, w in enumerate(ws):
            diff = (CURVATURE * (w - TARGET)).astype(f32)
            local_decay = f32(weight_decay * decay_mults[i])
            if local_decay:
                reg = w if regularization == "L2" else np.sign(w).astype(f32)
                diff = (local_decay * reg + diff).astype(f32)  # caffe_axpy(local_decay, data|sign, diff)
            diff = REFERENCE[kind](diff, hist[i], p, f32(rate) * f32(lr_mults[i]), it)
            ws[i] = (w - diff).astype(f32)  # Blob::Update: data -= diff
        out.append([w.copy() for w in ws])
    return out


@pytest.mark.parametrize("regularization", ["L2", "L1"])
@pytest.mark.parametrize("kind", TYPES)
def test_parameter_trajectory_is_caffes(kind, regularization):
    """Two parameters (lr_mult 1 / decay_mult 1 and lr_mult 2 / decay_mult 0), six iterations under the step
    policy (the rate halves every 2 iterations), weight decay 0.01 added to the gradient as Caffe adds it."""
    p = PARAMS[kind]
    solver = Solver(path="s", net=Msg(), max_iter=6, type=kind, lr_policy="step", gamma=0.5, stepsize=2,
                    weight_decay=0.01, regularization_type=regularization, **p)  # fmt: skip
    w0 = [np.linspace(-1, 2, 6, dtype=f32), np.linspace(3, -1, 6, dtype=f32)]
    lr_mults, decay_mults = [1.0, 2.0], [1.0, 0.0]
    ws = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in w0]
    groups = [{"params": [w], "lr": solver.base_lr * lm, "weight_decay": solver.weight_decay * dm}
              for w, lm, dm in zip(ws, lr_mults, decay_mults, strict=True)]  # fmt: skip
    opt = make_optimizer(solver, groups)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, solver.lr_factor)
    c, t = torch.from_numpy(CURVATURE), torch.from_numpy(TARGET)
    rates = [solver.base_lr * solver.lr_factor(it) for it in range(6)]
    expected = caffe_trajectory(kind, regularization, w0, lr_mults, decay_mults, 0.01, rates)
    for it in range(6):
        opt.zero_grad()
        sum((c * (w - t) ** 2 / 2).sum() for w in ws).backward()
        opt.step()
        sched.step()
        for w, ref in zip(ws, expected[it], strict=True):
            np.testing.assert_allclose(w.detach().numpy(), ref, rtol=2e-6, atol=1e-6, err_msg=f"{kind} iteration {it}")
    moved = np.abs(ws[0].detach().numpy() - w0[0]).max()
    assert moved > 1e-2  # the trajectory is not trivially the start


def write_solver(tmp_path, text: str):
    (tmp_path / "n.prototxt").write_text('name: "n"')
    (tmp_path / "s.prototxt").write_text('net: "n.prototxt" base_lr: 0.1 max_iter: 10 ' + text)
    return tmp_path / "s.prototxt"


@pytest.mark.parametrize("old, new", [("NESTEROV", "Nesterov"), ("1", "Nesterov"), ("ADADELTA", "AdaDelta"), ("5", "Adam")])
def test_old_solver_type_enum_is_upgraded(tmp_path, old, new):
    assert read_solver(write_solver(tmp_path, f"solver_type: {old}")).type == new


@pytest.mark.parametrize(
    "text, message",
    [('type: "AdaGrad" momentum: 0.9', "momentum cannot be used with AdaGrad"),
     ('type: "RMSProp" rms_decay: 1.0', "rms_decay should lie in"),
     ('type: "Adagrad"', "solver type 'Adagrad' is unknown"),
     ('type: "SGD" solver_type: SGD', "both `type` and the old `solver_type`"),
     ('regularization_type: "L3"', "regularization_type 'L3' is unknown")],
)  # fmt: skip
def test_solver_settings_caffe_refuses_are_refused(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        read_solver(write_solver(tmp_path, text))


# Caffe's examples/mnist/lenet_solver_adam.prototxt, and lenet_solver.prototxt with the old enum for Nesterov.
LENET = {
    "Adam": 'type: "Adam" base_lr: 0.001 momentum: 0.9 momentum2: 0.999 delta: 1e-8 lr_policy: "fixed"',
    "Nesterov": "solver_type: NESTEROV base_lr: 0.01 momentum: 0.9 weight_decay: 0.0005 "
    'lr_policy: "inv" gamma: 0.0001 power: 0.75',
}


# Test accuracy after 46 iterations (two epochs of the digits), measured on seeds 0-4:
# Adam 0.953, 0.950, 0.936, 0.936, 0.961; Nesterov 0.953, 0.889, 0.892, 0.900, 0.936 (chance: 0.10).
@pytest.mark.parametrize("kind, bar", [("Adam", 0.88), ("Nesterov", 0.83)])
def test_lenet_learns_the_digits_with(capsys, tmp_path, kind, bar):
    (tmp_path / "lenet_train_test.prototxt").write_text((EXAMPLES / "lenet_train_test.prototxt").read_text())
    (tmp_path / "solver.prototxt").write_text(f'net: "lenet_train_test.prototxt" {LENET[kind]} max_iter: 46 '
                                              "test_iter: 4 test_interval: 23")  # fmt: skip
    res = run_main(capsys, "caffe", "train", "--solver", tmp_path / "solver.prototxt", "--runs-dir", tmp_path,
                   "--deterministic", "--threads", "1", "--monitor-interval", "0", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    r = res.json()
    assert r["type"] == kind and r["iterations"] == 46
    assert r["test"]["accuracy"] >= bar
