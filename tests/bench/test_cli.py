"""`dlbox bench` as a user runs it: a tiny model for a few steps on the CPU; table, JSON, CSV, suite, published
comparison, auto. Two runs go through a real process (--json must leave stdout to the one document, whatever
the exporters print); the others call dlbox.cli.main in this process (imports cost seconds per process)."""

from __future__ import annotations

import csv

import pytest
import torch

from dlbox.bench import auto
from dlbox.bench.models import build
from dlbox.runtime import fastpath
from dlbox.runtime.parity import TOLERANCE
from dlbox.runtime.paths import BASELINE, PathSpec
from tests.conftest import assert_user_error, run_cli, run_main

TINY = ["bench", "--model", "tiny", "--batch-size", "4", "--steps", "2", "--warmup", "1", "--device", "cpu"]
ROW_KEYS = {"model", "mode", "batch_size", "precision", "backend", "images_per_sec", "step_ms", "peak_fraction",
            "step_ms_p10", "step_ms_p90", "vs_baseline", "status", "reason", "path"}  # fmt: skip


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One path (fp32 eager), training and inference, as JSON and CSV, in a real process."""
    out = tmp_path_factory.mktemp("single")
    res = run_cli(*TINY, "--json", "--save", out / "rows.csv")
    assert res.returncode == 0, res.stderr
    return res, out / "rows.csv"


@pytest.fixture(scope="module")
def suite():
    """Inference through every path of the suite, in a real process (exporters, quantizer, OpenVINO)."""
    res = run_cli(*TINY, "--suite", "--mode", "infer", "--json")
    assert res.returncode == 0, res.stderr
    return res.json()


def test_json_is_one_list_of_rows_with_the_documented_fields(single):
    rows = single[0].json()
    assert [r["mode"] for r in rows] == ["train", "infer"]
    for r in rows:
        assert ROW_KEYS <= set(r)
        assert r["status"] == "ok" and r["model"] == "tiny" and r["batch_size"] == 4
        assert r["images_per_sec"] > 0 and r["step_ms_p10"] <= r["step_ms"] <= r["step_ms_p90"]
        # images/sec = batch / median step; step_ms is rounded to 0.01 ms (a tiny model's step is ~0.3 ms)
        assert 4000 / (r["step_ms"] + 0.005) - 0.01 <= r["images_per_sec"] <= 4000 / (r["step_ms"] - 0.005) + 0.01
        assert 0 < r["peak_fraction"] < 1
    train, infer = rows
    assert train["gflop_per_image"] == pytest.approx(3 * infer["gflop_per_image"], rel=0.01)


def test_header_with_threads_cpu_and_versions_goes_to_stderr_with_json(single):
    err = single[0].stderr
    assert (
        "threads: intra-op" in err
        and "inter-op 2" in err
        and f"torch {torch.__version__.split('+')[0]}" in err
    )


def test_save_writes_the_rows_as_csv(single):
    with open(single[1], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["mode"] for r in rows] == ["train", "infer"]
    assert float(rows[1]["images_per_sec"]) == single[0].json()[1]["images_per_sec"]


def test_suite_goes_from_the_baseline_to_every_path_and_reports_skips_with_reasons(suite):
    paths = {r["path"] for r in suite}
    assert {"fp32 NCHW eager", "fp32 channels_last compile", "onnxruntime fp32", "onnxruntime int8",
            "openvino fp32", "openvino int8"} <= paths  # fmt: skip
    assert next(r for r in suite if r["path"] == "fp32 NCHW eager")["vs_baseline"] == 1.0
    for r in suite:
        if r["status"] == "ok":
            assert r["images_per_sec"] > 0 and r["vs_baseline"] > 0 and r["parity"]["ok"], r
        else:
            assert r["status"] == "skipped" and r["reason"], r


def test_human_output_is_a_markdown_table_in_the_old_platforms_format(capsys):
    res = run_main(capsys, *TINY, "--mode", "infer", "--precision", "fp32", "--channels-last")
    assert res.returncode == 0, res.stderr
    table = [ln for ln in res.stdout.splitlines() if ln.startswith("|")]
    assert table[0] == ("| model | batch | precision / backend | train img/s | infer img/s | step ms (train / infer) "
                        "| vs baseline (train / infer) | peak fraction (train / infer) |")  # fmt: skip
    assert table[1] == "|---|---|---|---|---|---|---|---|"
    assert len(table) == 3
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert cells[:4] == ["tiny", "4", "fp32 channels_last eager", "-"] and float(cells[4]) > 0
    assert "top-1 same as fp32 eager on 4/4 images" in res.stdout


def test_compare_published_shows_the_old_table_beside_this_machine(capsys):
    res = run_main(capsys, *TINY, "--mode", "infer", "--steps", "1", "--compare-published")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert (
        "| old platform (tf_cnn_benchmarks) | NVIDIA P100 | resnet50 | 64 | fp32 TensorFlow | 199.0 | 632.0 |"
        in lines
    )
    assert ("| old platform (tf_cnn_benchmarks) | 16-core Broadwell, TensorFlow with MKL | resnet50 | 32 | "
            "fp32 TensorFlow | 12.8 | 39.2 |") in lines  # fmt: skip
    assert any(
        ln.startswith("| this machine (dlbox) |") and "| tiny | 4 | fp32 NCHW eager | - |" in ln
        for ln in lines
    )


@pytest.fixture
def auto_run(capsys, tmp_path, monkeypatch):
    """--auto over four paths, one of them (bf16) held to an impossible tolerance so it must be rejected."""
    monkeypatch.setenv("DLBOX_HOME", str(tmp_path))
    plan = [(BASELINE, None), (PathSpec(channels_last=True), None), (PathSpec("onnxruntime", "fp32"), None),
            (PathSpec(precision="bf16", channels_last=True), None)]  # fmt: skip
    monkeypatch.setattr(auto, "suite_paths", lambda device, cpu: plan)
    monkeypatch.setitem(TOLERANCE, "bf16", 1e-9)
    res = run_main(capsys, *TINY, "--auto", "--json")
    assert res.returncode == 0, res.stderr
    return res


def test_auto_never_chooses_a_path_with_wrong_results(auto_run):
    out = auto_run.json()
    bf16 = [r for r in out["rows"] if r["path"] == "bf16 channels_last eager"]
    assert [r["status"] for r in bf16] == ["rejected"]  # checked, not timed, and not trained
    assert "wrong results: logits differ" in bf16[0]["reason"]
    assert "bf16" not in out["choice"]["infer"]["path"] and "bf16" not in out["choice"]["train"]["path"]


def test_auto_saves_the_fastest_passing_path_for_inference_and_training(auto_run):
    out = auto_run.json()
    for mode in ("infer", "train"):
        ok = [r for r in out["rows"] if r["mode"] == mode and r["status"] == "ok"]
        assert out["choice"][mode]["path"] == max(ok, key=lambda r: r["images_per_sec"])["path"]
    assert {r["backend"] for r in out["rows"] if r["mode"] == "train"} == {"torch"}
    saved = fastpath.load("tiny", "cpu")
    assert saved == out["choice"] and fastpath.load("resnet50", "cpu") is None
    assert f"fastest correct path for inference: {saved['infer']['path']}" in auto_run.stderr


def test_apply_runs_a_saved_choice_with_the_same_answers_as_eager():
    x = torch.randn(4, 3, 32, 32) + 2 * torch.randn(4, 3, 1, 1)
    with torch.no_grad():
        expected = build("tiny").eval()(x)  # (4, 10)
    for path, tol in (({"backend": "torch", "precision": "fp32", "channels_last": True}, 1e-3),
                      ({"backend": "onnxruntime", "precision": "int8"}, 1e-1)):  # fmt: skip
        predict = fastpath.apply(build("tiny"), {"infer": path, "train": None}, example=x)
        got = predict(x)
        assert (got - expected).abs().max() <= tol * expected.abs().max(), path
    trained = fastpath.apply(build("tiny"), {"infer": None, "train": {"channels_last": True}}, mode="train")
    assert trained.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert fastpath.engine_options({"train": {"precision": "bf16", "channels_last": True}}) == {
        "precision": "bf16",
        "channels_last": True,
    }


def test_corrupt_fastpath_file_is_a_user_error(tmp_path, monkeypatch):
    from dlbox.base.errors import UserError

    monkeypatch.setenv("DLBOX_HOME", str(tmp_path))
    (tmp_path / "fastpath.json").write_text("{not json")
    with pytest.raises(UserError, match="not a dlbox fast-path file"):
        fastpath.load("tiny", "cpu")


def test_unknown_model_is_a_user_error_with_a_hint(cli):
    assert_user_error(cli("bench", "--model", "resnet5"), "unknown model 'resnet5'", "resnet50")


def test_int8_in_eager_pytorch_is_a_user_error(capsys):
    assert_user_error(run_main(capsys, *TINY, "--precision", "int8"), "int8", "--backend onnxruntime")


def test_save_needs_a_csv_file_name(capsys, tmp_path):
    assert_user_error(run_main(capsys, *TINY, "--save", tmp_path / "rows.txt"), "CSV", ".csv")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_asking_for_a_gpu_on_a_machine_without_one_is_a_user_error(capsys):
    assert_user_error(
        run_main(capsys, *TINY[:-2], "--device", "cuda"), "asked for CUDA but none is available"
    )
