"""Every fast path against fp32 eager on a fixed batch of a fixed-seed model; unavailable paths are skips.

The model is the tiny CNN (seed 0) on a fixed batch of 8 synthetic 32x32 images; the logit tolerance of each
path (relative to the largest fp32 logit) is ``dlbox.runtime.parity.TOLERANCE`` for its precision:
fp32 1e-3, fp16 1e-2, bf16 5e-2, int8 1e-1.
"""

from __future__ import annotations

import sys

import pytest
import torch

from dlbox.base.errors import UserError
from dlbox.bench.runner import Bench, BenchConfig
from dlbox.runtime import paths
from dlbox.runtime.parity import TOLERANCE, parity
from dlbox.runtime.paths import PathSpec

FAST_PATHS = [
    PathSpec(channels_last=True),
    PathSpec(precision="bf16"),
    PathSpec(precision="bf16", channels_last=True),
    PathSpec(precision="fp16", channels_last=True),
    PathSpec(channels_last=True, compile=True),
    PathSpec(precision="bf16", channels_last=True, compile=True),
    PathSpec("onnxruntime", "fp32"),
    PathSpec("onnxruntime", "int8"),
]
OPENVINO_PATHS = [PathSpec("openvino", "fp32"), PathSpec("openvino", "int8")]


@pytest.fixture(scope="module")
def bench():
    with Bench(BenchConfig(model="tiny", batch_size=8, steps=1, warmup=1, device="cpu")) as b:
        yield b


def _assert_same_answers(bench: Bench, spec: PathSpec) -> None:
    row = bench.run(spec, "infer", check=True, timed=False)
    assert row["status"] == "ok", row["reason"]
    p = row["parity"]
    assert p["top1_same"] == p["images"] == 8, p  # the same class as fp32 eager on every image
    assert p["max_rel_diff"] <= TOLERANCE[spec.precision], p
    assert p["ok"]


def test_the_fixed_batch_spreads_over_several_classes(bench):
    # otherwise "same top-1" would be true of any path that returns the bias
    assert len(set(bench.reference().argmax(1).tolist())) >= 3


@pytest.mark.parametrize("spec", FAST_PATHS, ids=lambda s: s.label.replace(" ", "-"))
def test_fast_path_gives_the_same_top1_as_fp32_eager_within_its_tolerance(bench, spec):
    _assert_same_answers(bench, spec)


@pytest.mark.parametrize("spec", OPENVINO_PATHS, ids=lambda s: s.label.replace(" ", "-"))
def test_openvino_path_gives_the_same_top1_as_fp32_eager_within_its_tolerance(bench, spec):
    pytest.importorskip("openvino", reason="openvino is optional (pip install openvino)")
    _assert_same_answers(bench, spec)


def test_openvino_bf16_runs_where_the_cpu_has_bf16_and_is_skipped_with_the_reason_elsewhere(bench):
    ov = pytest.importorskip("openvino", reason="openvino is optional (pip install openvino)")
    spec = PathSpec("openvino", "bf16")
    if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        _assert_same_answers(bench, spec)
    else:
        row = bench.run(spec, "infer", check=True, timed=False)
        assert row["status"] == "skipped" and "no BF16 capability" in row["reason"]


def test_missing_openvino_is_a_skipped_row_saying_not_installed(bench, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ImportError
    row = bench.run(PathSpec("openvino", "fp32"), "infer")
    assert row["status"] == "skipped" and "openvino is not installed" in row["reason"]
    assert row["images_per_sec"] is None


def test_missing_cxx_compiler_skips_torch_compile_with_the_reason(bench, monkeypatch):
    monkeypatch.setattr(paths, "cxx_compiler", lambda: None)
    row = bench.run(PathSpec(compile=True), "infer")
    assert row["status"] == "skipped" and "needs a C++ compiler" in row["reason"]


def test_failing_compilation_is_a_skipped_row_not_a_crash(bench, monkeypatch):
    def broken(model, freeze):
        def call(x):
            raise RuntimeError("inductor: C++ compile error")

        return call

    monkeypatch.setattr(paths, "_compile", broken)
    row = bench.run(PathSpec(channels_last=True, compile=True), "train")
    assert row["status"] == "skipped"
    assert row["reason"] == "torch.compile failed: RuntimeError: inductor: C++ compile error"


def test_compiled_training_steps_run_and_are_timed(bench):
    row = bench.run(PathSpec(channels_last=True, compile=True), "train")
    assert row["status"] == "ok", row["reason"]
    assert row["images_per_sec"] > 0 and row["first_step_s"] > 0


def test_exported_backends_are_inference_only(bench):
    row = bench.run(PathSpec("onnxruntime", "fp32"), "train")
    assert row["status"] == "skipped" and "inference only" in row["reason"]


@pytest.mark.parametrize(("spec", "fragment"), [
    (PathSpec(precision="int8"), "--backend onnxruntime or --backend openvino"),
    (PathSpec("onnxruntime", "bf16"), "fp32 and int8"),
    (PathSpec("openvino", "fp32", compile=True), "apply to --backend torch"),
])  # fmt: skip
def test_impossible_combinations_are_user_errors(spec, fragment):
    with pytest.raises(UserError) as e:
        spec.validate()
    assert fragment in str(e.value)


def test_parity_rejects_logits_beyond_the_tolerance():
    ref = torch.tensor([[4.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    near = ref + 0.03  # 0.75% of the largest logit
    assert parity(ref, near, 1e-2)["ok"]
    far = parity(ref, ref + torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 0.0]]), 1e-2)
    assert not far["ok"] and "logits differ by 12.50%" in far["reason"]


def test_parity_rejects_non_finite_logits():
    ref = torch.tensor([[4.0, 1.0]])
    assert not parity(ref, torch.tensor([[float("nan"), 1.0]]), 0.1)["ok"]
