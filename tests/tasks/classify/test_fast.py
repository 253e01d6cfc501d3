"""`--fast` in `dlbox classify train|predict`: the path `dlbox bench --auto` saved, used by the tasks.

The saved choices are written with fastpath's own ``save``, in the format ``auto`` writes, into a private
$DLBOX_HOME (running the whole --auto search on a torchvision model would take minutes on 2 cores)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dlbox.data.samples import write_sample
from dlbox.engine.metrics import read_jsonl
from dlbox.runtime import fastpath
from dlbox.runtime.paths import PathSpec
from tests.conftest import assert_user_error, dlbox_home, run_cli

MODEL = "resnet18"
TRAIN = ["--model", MODEL, "--img-size", "32", "--augment", "none", "--lr", "2e-3", "--batch-size", "16",
         "--val-split", "0.25", "--json"]  # fmt: skip


def save_choice(*, train: PathSpec | None = None, infer: PathSpec | None = None) -> None:
    """A choice as `dlbox bench --auto` saves it, for MODEL on this CPU, in the current $DLBOX_HOME."""

    def path(spec: PathSpec | None):
        if spec is None:
            return None
        return {**spec.to_dict(), "path": spec.label, "images_per_sec": 100.0, "step_ms": 10.0, "vs_baseline": 1.5,
                "parity": None}  # fmt: skip

    fastpath.save({
        "model": MODEL, "device": "cpu", "device_key": fastpath.device_key("cpu"), "device_name": "test CPU",
        "batch_size": 16, "image_size": 32, "infer": path(infer), "train": path(train), "threads": 2,
        "date": "2026-01-01T00:00:00+00:00", "versions": {},
    })  # fmt: skip


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory) -> Path:
    """Digits 0, 1 and 2, 40 scans each (30 train, 10 validation per class)."""
    root = tmp_path_factory.mktemp("fast-data")
    write_sample("digits", root / "all")
    for c in ("0", "1", "2"):
        (root / "small" / c).mkdir(parents=True)
        for f in sorted((root / "all" / c).iterdir())[:40]:
            shutil.copy(f, root / "small" / c / f.name)
    return root / "small"


@pytest.fixture(scope="module")
def fast_run(small_digits, tmp_path_factory) -> dict:
    """Train 2 epochs with --fast (saved training path: bf16 channels_last eager); then a newer choice (fp32
    NCHW) is saved and the run is resumed for a third epoch."""
    tmp = tmp_path_factory.mktemp("fast-run")
    with dlbox_home(tmp / "home"):
        save_choice(train=PathSpec(precision="bf16", channels_last=True))
        first = run_cli("classify", "train", "--data", small_digits, *TRAIN, "--epochs", "2", "--fast",
                        "--runs-dir", tmp / "runs", "--name", "fast")  # fmt: skip
        assert first.returncode == 0, first.stderr[-3000:]
        run_dir = Path(first.json()["run_dir"])
        config_after_first = yaml.safe_load((run_dir / "config.yaml").read_text())
        save_choice(train=PathSpec())
        resumed = run_cli("classify", "train", "--resume", run_dir, "--epochs", "3", "--json")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        # The reference: the same 2 epochs on the same data, in fp32 NCHW.
        fp32 = run_cli("classify", "train", "--data", small_digits, *TRAIN, "--epochs", "2",
                       "--runs-dir", tmp / "runs", "--name", "fp32")  # fmt: skip
        assert fp32.returncode == 0, fp32.stderr[-3000:]
    return {"first": first, "config": config_after_first, "resumed": resumed, "run_dir": run_dir, "fp32": fp32}


def test_fast_without_a_saved_choice_is_a_one_line_error(small_digits, tmp_path, monkeypatch):
    monkeypatch.setenv("DLBOX_HOME", str(tmp_path / "empty-home"))
    res = run_cli("classify", "train", "--data", small_digits, *TRAIN, "--epochs", "1", "--fast",
                  "--runs-dir", tmp_path / "runs")  # fmt: skip
    assert_user_error(res, f"no fast path is saved for {MODEL}", f"run `dlbox bench --auto --model {MODEL}` first")
    assert not (tmp_path / "runs").exists()  # refused before a run directory was made


def test_train_fast_uses_the_saved_precision_and_channels_last_and_learns(fast_run):
    cfg = fast_run["config"]
    assert (cfg["fast"], cfg["precision"], cfg["channels_last"], cfg["compile"]) == (True, "bf16", True, False)
    assert "fast path: bf16 channels_last eager (saved by `dlbox bench --auto`" in fast_run["first"].stderr
    assert "on cpu x1, bf16, 2 epochs" in fast_run["first"].stderr  # the engine ran it
    epochs = [r for r in read_jsonl(fast_run["run_dir"] / "metrics.jsonl") if r["epoch"] <= 2]
    assert epochs[1]["train/loss"] < epochs[0]["train/loss"]
    # The bar is the fp32 path on the same data and initial weights, not a number: bf16's rounding differs from
    # one CPU to the next (0.733 < 0.75 on AMD Zen 5). The first epoch's training loss is the comparison:
    # validation accuracy after 12 steps on 30 images rests on barely-moved BatchNorm statistics (seeds 0-2
    # here: bf16 0.87/0.47/0.93 against fp32 0.80/0.97/1.00), while the first-epoch losses agree closely
    # (bf16/fp32 ratios 0.97, 0.91, 1.06), so 25% is a wide margin.
    fp32 = [r for r in read_jsonl(Path(fast_run["fp32"].json()["run_dir"]) / "metrics.jsonl") if r["epoch"] <= 2]
    bf16_loss, fp32_loss = epochs[0]["train/loss"], fp32[0]["train/loss"]
    assert abs(bf16_loss - fp32_loss) <= 0.25 * fp32_loss, (bf16_loss, fp32_loss)


def test_resume_keeps_the_path_the_run_started_with(fast_run):
    """A newer `dlbox bench --auto` (here: fp32 NCHW) does not change a run half-way."""
    cfg = yaml.safe_load((fast_run["run_dir"] / "config.yaml").read_text())
    assert (cfg["precision"], cfg["channels_last"], cfg["epochs"]) == ("bf16", True, 3)
    assert "fast path: kept from the run (bf16" in fast_run["resumed"].stderr
    assert fast_run["resumed"].json()["epochs"] == 3


def test_predict_fast_int8_gives_the_same_top1_labels(fast_run, small_digits, tmp_path, monkeypatch):
    """The saved inference path is onnxruntime int8, calibrated on the images being predicted. Its logits are
    within the int8 tolerance of fp32's, so only near-ties may change their top-1 label: every image whose fp32
    top-1 probability is more than 0.2 above the second's must keep its label (nearly all of them here)."""
    monkeypatch.setenv("DLBOX_HOME", str(tmp_path / "home"))
    save_choice(infer=PathSpec("onnxruntime", "int8"))
    plain = run_cli("classify", "predict", fast_run["run_dir"], small_digits, "--topk", "2", "--json")
    fast = run_cli("classify", "predict", fast_run["run_dir"], small_digits, "--topk", "2", "--json", "--fast")
    assert plain.returncode == 0 and fast.returncode == 0, plain.stderr[-2000:] + fast.stderr[-2000:]
    assert "fast path: onnxruntime int8" in fast.stderr
    a, b = plain.json(), fast.json()  # the same output format, the same files in the same order
    assert [r["file"] for r in a] == [r["file"] for r in b] and len(a) == 120
    decisive = [(x, y) for x, y in zip(a, b, strict=True)
                if x["predictions"][0]["prob"] - x["predictions"][1]["prob"] > 0.2]  # fmt: skip
    assert len(decisive) >= 0.9 * len(a)
    assert [x["predictions"][0]["label"] for x, _ in decisive] == [y["predictions"][0]["label"] for _, y in decisive]


def test_predict_fast_without_a_saved_choice_is_a_one_line_error(fast_run, small_digits, tmp_path, monkeypatch):
    monkeypatch.setenv("DLBOX_HOME", str(tmp_path / "empty-home"))
    res = run_cli("classify", "predict", fast_run["run_dir"], small_digits / "0", "--fast")
    assert_user_error(res, f"no fast path is saved for {MODEL}", f"run `dlbox bench --auto --model {MODEL}` first")
