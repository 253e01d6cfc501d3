"""Caffe's solver fields on the engine: lr policies, the SGD update, lr_mult/decay_mult, refused fields."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from dlbox.base.errors import UserError
from dlbox.convert.caffe.textformat import Msg
from dlbox.tasks.caffe.solver import Solver, read_solver
from dlbox.tasks.caffe.updates import CaffeSGD
from tests.conftest import assert_user_error, run_main

NETS = Path(__file__).parent / "nets"


def solver(**kw) -> Solver:
    return Solver(path="s", net=Msg(), base_lr=0.1, max_iter=100, **kw)


@pytest.mark.parametrize(
    "policy, kw, expected",
    [
        ("fixed", {}, lambda it: 1.0),
        ("step", {"gamma": 0.1, "stepsize": 30}, lambda it: 0.1 ** (it // 30)),
        ("multistep", {"gamma": 0.5, "stepvalue": [10, 50]}, lambda it: 0.5 ** ((it >= 10) + (it >= 50))),
        ("inv", {"gamma": 1e-4, "power": 0.75}, lambda it: (1 + 1e-4 * it) ** -0.75),
        ("poly", {"power": 2.0}, lambda it: (1 - it / 100) ** 2),
        ("exp", {"gamma": 0.99}, lambda it: 0.99**it),
        ("sigmoid", {"gamma": -0.1, "stepsize": 40}, lambda it: 1 / (1 + math.exp(0.1 * (it - 40)))),
    ],
)
def test_lr_policy_is_caffes_formula(policy, kw, expected):
    s = solver(lr_policy=policy, **kw)
    for it in (0, 9, 10, 29, 30, 49, 50, 99):
        assert s.lr_factor(it) == pytest.approx(expected(it), rel=1e-12), (policy, it)


def test_sgd_history_holds_lr_times_gradient():
    """v = m v + lr (g + wd w); w -= v. After an lr change the old momentum keeps its old lr."""
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = CaffeSGD([{"params": [w], "weight_decay": 0.1}], lr=0.5, momentum=0.9)
    ref_w, v = 1.0, 0.0
    for lr in (0.5, 0.5, 0.05):
        opt.param_groups[0]["lr"] = lr
        w.grad = 2.0 * w.detach().clone()  # d(w^2)/dw
        v = 0.9 * v + lr * (2.0 * ref_w + 0.1 * ref_w)
        ref_w -= v
        opt.step()
        assert w.item() == pytest.approx(ref_w, rel=1e-6)


def test_lr_and_decay_multipliers_make_parameter_groups():
    from dlbox.tasks.caffe.config import CaffeTrainConfig
    from dlbox.tasks.caffe.train import CaffeSolverTask, load_data

    s = read_solver(NETS / "tiny_solver.prototxt")
    task = CaffeSolverTask(CaffeTrainConfig(solver="x", batch_size=8), s, *load_data(None))
    model = task.build_model()
    opt, sched = task.configure_optimizers(model, 23)
    by_param = {id(g["params"][0]): g for g in opt.param_groups}
    conv = model.modules_["conv1"]
    assert by_param[id(conv.weight)]["lr"] == pytest.approx(0.05) and by_param[id(conv.weight)]["weight_decay"] == 5e-4
    assert by_param[id(conv.bias)]["lr"] == pytest.approx(0.1) and by_param[id(conv.bias)]["weight_decay"] == 0
    for _ in range(20):
        opt.step()
        sched.step()
    assert by_param[id(conv.bias)]["lr"] == pytest.approx(0.05)  # step policy: gamma 0.5 at iteration 20


def test_unsupported_solver_field_is_refused_by_name(tmp_path, capsys):
    text = (NETS / "tiny_solver.prototxt").read_text() + "clip_gradients: 10\n"
    (tmp_path / "s.prototxt").write_text(text)
    (tmp_path / "tiny_train_test.prototxt").write_text((NETS / "tiny_train_test.prototxt").read_text())
    assert_user_error(run_main(capsys, "caffe", "train", "--solver", tmp_path / "s.prototxt"), "'clip_gradients'")


def test_policy_without_its_fields_is_refused(tmp_path):
    (tmp_path / "n.prototxt").write_text('name: "n"')
    (tmp_path / "s.prototxt").write_text('net: "n.prototxt" base_lr: 0.1 lr_policy: "step" gamma: 0.1 max_iter: 10')
    with pytest.raises(UserError, match="needs stepsize"):
        read_solver(tmp_path / "s.prototxt")
