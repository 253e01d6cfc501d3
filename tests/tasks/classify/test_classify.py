"""Image classification end to end on the embedded samples: learning, fine-tuning, BatchNorm, export, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from dlbox.data.samples import write_sample
from dlbox.engine.metrics import read_jsonl
from tests.conftest import assert_user_error, run_cli


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "digits"
    write_sample("digits", out)
    return out


@pytest.fixture(scope="module")
def googlenet_run(digits, tmp_path_factory) -> dict:
    """GoogLeNet (Inception v1) from scratch on the digits sample: the demo's recipe, without --img-size (the
    32 px scans are trained at their own size)."""
    runs = tmp_path_factory.mktemp("runs")
    res = run_cli("classify", "train", "--data", digits, "--model", "googlenet", "--epochs", "6",
                  "--lr", "2e-3", "--augment", "none", "--runs-dir", runs, "--name", "g", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return {**res.json(), "stderr": res.stderr}


def test_from_scratch_the_input_size_is_the_datas_own(googlenet_run):
    """Not 224: blowing 32 px digits up 49-fold took 18 minutes for nothing."""
    first = googlenet_run["stderr"].splitlines()[0]
    assert first.startswith("input size 32 px: the data's median image side is 32 px"), first
    state = torch.load(Path(googlenet_run["run_dir"]) / "checkpoints" / "best.pt", weights_only=True)
    assert state["task_state"]["img_size"] == 32


def test_googlenet_from_scratch_on_digits_reaches_95_percent(googlenet_run):
    assert googlenet_run["val_top1"] >= 0.95
    assert googlenet_run["val_top5"] >= googlenet_run["val_top1"]
    assert set(googlenet_run) >= {"val_top1", "val_top5", "run_dir", "images_per_sec"}


def test_resnet18_from_scratch_on_shapes_reaches_90_percent(tmp_path):
    write_sample("shapes", tmp_path / "shapes", n_per_class=300)
    res = run_cli("classify", "train", "--data", tmp_path / "shapes", "--model", "resnet18", "--img-size", "32",
                  "--epochs", "7", "--lr", "2e-3", "--augment", "none", "--runs-dir", tmp_path / "runs", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.json()["val_top1"] >= 0.90


def test_evaluate_reports_per_class_metrics_confusion_matrix_and_misses(googlenet_run, digits):
    res = run_cli("classify", "evaluate", googlenet_run["run_dir"], "--data", digits, "--json")
    assert res.returncode == 0, res.stderr
    r = res.json()
    assert abs(r["top1"] - googlenet_run["val_top1"]) < 1e-9  # the same images and weights as in training
    assert set(r["per_class"]) == {str(i) for i in range(10)}
    assert sum(sum(row) for row in r["confusion_matrix"]) == r["images"]
    out = Path(r["out_dir"])
    assert (out / "confusion_matrix.png").stat().st_size > 0
    assert (out / "confusion_matrix.csv").read_text().startswith("true \\ predicted,0,1")
    misses = (out / "misclassified.csv").read_text().splitlines()
    assert len(misses) - 1 == len(r["misclassified"]) == round(r["images"] * (1 - r["top1"]))


def test_reload_and_predict_gives_identical_probabilities(googlenet_run, digits):
    images = [str(p) for p in sorted((digits / "7").iterdir())[:4]]
    first = run_cli("classify", "predict", googlenet_run["run_dir"], *images, "--json").json()
    second = run_cli("classify", "predict", googlenet_run["run_dir"] + "/checkpoints/best.pt", *images, "--json").json()
    assert first == second
    assert first[0]["predictions"][0]["label"] == "7"
    assert abs(sum(p["prob"] for p in first[0]["predictions"])) <= 1.0 + 1e-6


def test_onnx_export_matches_pytorch_and_predict_accepts_it(googlenet_run, digits, tmp_path):
    res = run_cli("classify", "export", googlenet_run["run_dir"], "--format", "onnx", "--dynamic-batch",
                  "--out", tmp_path / "m.onnx", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.json()["max_abs_diff"] <= 1e-4
    images = [str(p) for p in sorted((digits / "3").iterdir())[:5]]
    torch_preds = run_cli("classify", "predict", googlenet_run["run_dir"], *images, "--json").json()
    onnx_preds = run_cli("classify", "predict", tmp_path / "m.onnx", *images, "--json").json()
    for a, b in zip(torch_preds, onnx_preds, strict=True):
        assert [p["label"] for p in a["predictions"]] == [p["label"] for p in b["predictions"]]
        for pa, pb in zip(a["predictions"], b["predictions"], strict=True):
            assert abs(pa["prob"] - pb["prob"]) <= 1e-4


def test_torchscript_export_matches_pytorch(googlenet_run, tmp_path):
    res = run_cli("classify", "export", googlenet_run["run_dir"], "--format", "torchscript", "--out", tmp_path / "m.pt", "--json")
    assert res.returncode == 0, res.stderr
    assert res.json()["max_abs_diff"] <= 1e-4


def _digit_subset(src: Path, dst: Path, classes: list[str], per_class: int | None = None) -> Path:
    for c in classes:
        (dst / c).mkdir(parents=True)
        for f in sorted((src / c).iterdir())[:per_class]:
            shutil.copy(f, dst / c / f.name)
    return dst


def _epochs_to_reach(run_dir: str, target: float) -> int:
    for rec in read_jsonl(Path(run_dir) / "metrics.jsonl"):
        if rec["val/top1"] >= target:
            return rec["epoch"]
    return 10**6


def test_fine_tuning_reaches_the_target_in_fewer_epochs_than_from_scratch(digits, tmp_path):
    """Features learnt on digits 0-4 carry over to 5-9: with 20 training images a class (and 20 for
    validation), the fine-tuned model passes 75% by epoch 2-3, from scratch only by epoch 4-5 (measured
    over seeds: fine-tuned 0.72/0.78/0.86 after epochs 1-3, from scratch 0.34/0.43/0.60)."""
    first = _digit_subset(digits, tmp_path / "first", ["0", "1", "2", "3", "4"])
    second = _digit_subset(digits, tmp_path / "second", ["5", "6", "7", "8", "9"], per_class=40)
    common = ["--model", "resnet18", "--img-size", "32", "--augment", "none", "--runs-dir", tmp_path / "runs", "--json"]
    base = run_cli("classify", "train", "--data", first, "--epochs", "4", *common)
    assert base.returncode == 0, base.stderr[-2000:]
    weights = Path(base.json()["run_dir"]) / "checkpoints" / "best.pt"
    small = ["--data", second, "--val-split", "0.5", "--epochs", "4"]
    tuned = run_cli("classify", "train", *small, "--weights", weights, "--fine-tune", *common)
    scratch = run_cli("classify", "train", *small, *common)
    assert tuned.returncode == 0 and scratch.returncode == 0, tuned.stderr[-2000:] + scratch.stderr[-2000:]
    target = 0.75
    assert _epochs_to_reach(tuned.json()["run_dir"], target) < _epochs_to_reach(scratch.json()["run_dir"], target)


def _batch_and_running_stats_accuracy(run_dir: str, data: Path) -> tuple[float, float]:
    """Accuracy on the training images with BatchNorm using batch statistics (as in training, dropout off)
    and with its running statistics (eval mode, what inference and export use)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    from dlbox.data.images import load_image_splits
    from dlbox.tasks.classify.inference import load_classifier

    clf = load_classifier(run_dir)
    ds, _, _ = load_image_splits(str(data), val_split=0.0)
    ds.transform = clf.transform()
    x = torch.stack([ds[i][0] for i in range(len(ds))])  # (30, 3, H, W)
    y = torch.tensor([ds[i][1] for i in range(len(ds))])
    model = clf.model.eval()
    with torch.no_grad():
        running = (model(x).argmax(1) == y).float().mean().item()
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                m.train()
        batch = (model(x).argmax(1) == y).float().mean().item()
    return batch, running


@pytest.fixture(scope="module")
def thirty_images(digits, tmp_path_factory) -> Path:
    """30 training images, 2 classes (15 scans each of 0 and 1): the old demo's small-data case."""
    dst = tmp_path_factory.mktemp("thirty")
    for c in ("0", "1"):
        (dst / c).mkdir()
        for f in sorted((digits / c).iterdir())[:15]:
            shutil.copy(f, dst / c / f.name)
    return dst


@pytest.mark.parametrize("recalibrate", [False, True], ids=["trap", "recalibrated"])
def test_small_data_batchnorm_eval_mode_matches_train_mode_only_with_the_fix(thirty_images, tmp_path, recalibrate):
    # --bn-momentum 0.001 is TensorFlow's default decay of 0.999: in 48 steps the running averages barely move.
    args = ["classify", "train", "--data", thirty_images, "--model", "googlenet", "--img-size", "32", "--epochs", "12",
            "--batch-size", "8", "--val-split", "0", "--augment", "none", "--bn-momentum", "0.001",
            "--runs-dir", tmp_path, "--json"]  # fmt: skip
    if recalibrate:
        args.append("--recalibrate-bn")
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr[-2000:]
    batch_acc, running_acc = _batch_and_running_stats_accuracy(res.json()["run_dir"], thirty_images)
    assert batch_acc >= 0.9  # the network did learn the 30 images
    if recalibrate:
        assert abs(batch_acc - running_acc) <= 0.05
    else:
        assert batch_acc - running_acc > 0.05  # the trap is real, so the recalibrated case tests a fix


def test_models_lists_torchvision_classifiers_with_published_figures():
    res = run_cli("classify", "models", "--json")
    rows = {r["name"]: r for r in res.json()}
    assert rows["googlenet"]["top1"] == pytest.approx(69.778) and rows["resnet50"]["params_m"] == pytest.approx(25.56)
    assert {"vit_b_16", "efficientnet_b0", "mobilenet_v3_large", "convnext_tiny", "inception_v3"} <= set(rows)


def test_1001_class_background_checkpoint_loses_the_background_row(tmp_path):
    from dlbox.tasks.classify.models import build, create

    ref = create("resnet18", 1000)
    state = ref.state_dict()
    state["fc.weight"] = torch.cat([torch.full((1, 512), 9.0), state["fc.weight"]])  # row 0 = background
    state["fc.bias"] = torch.cat([torch.tensor([9.0]), state["fc.bias"]])
    torch.save(state, tmp_path / "slim.pth")
    model, _ = build("resnet18", 1000, str(tmp_path / "slim.pth"))
    assert torch.equal(model.fc.weight, ref.state_dict()["fc.weight"])  # ImageNet class i is output i


def test_safetensors_weights_load(tmp_path):
    from safetensors.torch import save_file

    from dlbox.tasks.classify.models import build, create

    ref = create("resnet18", 3)
    save_file(ref.state_dict(), str(tmp_path / "w.safetensors"))
    model, _ = build("resnet18", 3, str(tmp_path / "w.safetensors"))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values(), strict=True))


def test_weights_of_another_architecture_are_a_clear_error(googlenet_run, digits, tmp_path):
    res = run_cli("classify", "train", "--data", digits, "--model", "resnet18", "--weights", googlenet_run["run_dir"],
                  "--runs-dir", tmp_path)  # fmt: skip
    assert_user_error(res, "does not fit", "--model")


def test_class_count_mismatch_asks_for_fine_tune(tmp_path, digits):
    from dlbox.tasks.classify.models import create

    torch.save(create("resnet18", 1000).state_dict(), tmp_path / "imagenet.pth")
    res = run_cli("classify", "train", "--data", digits, "--weights", tmp_path / "imagenet.pth", "--runs-dir", tmp_path)
    assert_user_error(res, "1000 classes", "--fine-tune")


def test_wrong_data_path_is_a_clear_error(tmp_path):
    assert_user_error(run_cli("classify", "train", "--data", tmp_path / "missing", "--runs-dir", tmp_path), "missing")


def test_single_class_is_a_clear_error(tmp_path, digits):
    shutil.copytree(digits / "1", tmp_path / "one" / "1")
    assert_user_error(run_cli("classify", "train", "--data", tmp_path / "one", "--runs-dir", tmp_path), "class")


def test_empty_class_folder_is_a_clear_error(tmp_path, digits):
    shutil.copytree(digits / "1", tmp_path / "d" / "1")
    shutil.copytree(digits / "2", tmp_path / "d" / "2")
    (tmp_path / "d" / "3").mkdir()
    assert_user_error(run_cli("classify", "train", "--data", tmp_path / "d", "--runs-dir", tmp_path), "'3'")


def test_unknown_model_names_the_near_match(digits, tmp_path):
    line = assert_user_error(run_cli("classify", "train", "--data", digits, "--model", "resnet81", "--runs-dir", tmp_path))
    assert "resnet18" in line


def test_a_detection_checkpoint_is_not_taken_for_a_classifier(tmp_path):
    from dlbox.engine import checkpoint

    checkpoint.save({"task": "env-test", "model": {}, "task_state": None}, tmp_path / "r" / "checkpoints" / "best.pt")
    assert_user_error(run_cli("classify", "predict", tmp_path / "r", tmp_path), "not a classifier")


def test_predict_csv_output(googlenet_run, digits):
    res = run_cli("classify", "predict", googlenet_run["run_dir"], digits / "5", "--topk", "2", "--csv")
    lines = res.stdout.strip().splitlines()
    assert lines[0] == "file,rank,label,prob" and len(lines) == 1 + 2 * len(list((digits / "5").iterdir()))



def test_every_export_loads_through_the_one_loader_and_predictor_answers_as_predict_json(googlenet_run, digits, tmp_path):
    """ONNX and TorchScript exports (any batch size) through `load_exported`, and `predictor()` of the run and of
    each export against `classify predict --json`; an export with the metadata dlbox wrote before its schema."""
    import json as _json

    import numpy as np
    import onnx

    from dlbox.runtime.exported import load_exported
    from dlbox.tasks.classify.export import export
    from dlbox.tasks.classify.inference import predictor
    from dlbox.tasks.classify.predict import predict

    run = googlenet_run["run_dir"]
    images = sorted((digits / "3").iterdir())[:3]
    cli = predict(run, [str(f) for f in images], topk=3)  # what `classify predict --json` prints
    sources = [run]
    for fmt, name in (("onnx", "m.onnx"), ("torchscript", "m.torchscript.pt")):
        res = export(run, fmt, str(tmp_path / name))
        assert res["dynamic_batch"] and res["max_abs_diff"] <= 1e-4
        ex = load_exported(res["file"])
        assert (ex.task, ex.meta["classes"], ex.inputs[0].shape[0]) == ("classify", [str(i) for i in range(10)], -1)
        x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
        batch = ex.run({"images": x})["logits"]
        singles = np.concatenate([ex.run({"images": x[i : i + 1]})["logits"] for i in range(3)])
        assert np.abs(batch - singles).max() < 1e-4
        sources.append(res["file"])
    m = onnx.load(str(tmp_path / "m.onnx"))  # the metadata as dlbox wrote it before schema 1
    meta = _json.loads(next(p.value for p in m.metadata_props if p.key == "dlbox"))
    del m.metadata_props[:]
    e = m.metadata_props.add()
    e.key, e.value = "dlbox", _json.dumps({"classes": meta["classes"], "img_size": 32, "mean": meta["inputs"][0]["mean"],
                                           "std": meta["inputs"][0]["std"], "model_name": "googlenet"})  # fmt: skip
    onnx.save(m, str(tmp_path / "old.onnx"))
    sources.append(str(tmp_path / "old.onnx"))
    for source in sources:
        p = predictor(source)
        samples = [p.decode(f.read_bytes()) for f in images]
        for s, f in zip(samples, images, strict=True):
            s.info["file"] = str(f)
        got = p.predict(samples, topk=3)
        assert [[x["label"] for x in g["predictions"]] for g in got] == [[x["label"] for x in c["predictions"]] for c in cli]
        for g, c in zip(got, cli, strict=True):
            assert g["file"] == c["file"]
            assert all(abs(a["prob"] - b["prob"]) <= 1e-4 for a, b in zip(g["predictions"], c["predictions"], strict=True))
