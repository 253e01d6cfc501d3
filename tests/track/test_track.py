"""`--tracker mlflow`, the model registry and `dlbox track` against a real MLflow server (tests/track/conftest.py).

Trainings run in this process (``dlbox.cli.main``): torch and mlflow are imported once for the file."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from dlbox.config import load_yaml
from dlbox.engine import trackers_mlflow as tm
from dlbox.engine.tracking import flat_params, numeric
from tests.conftest import assert_user_error, run_main
from tests.track.conftest import metrics_of, wait_for

CLS = ["--model", "resnet18", "--img-size", "32", "--batch-size", "16", "--threads", "1", "--device", "cpu",
       "--augment", "none", "--lr", "1e-3", "--tracker", "mlflow", "--json"]  # fmt: skip


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    from dlbox.data.samples import write_sample

    out = tmp_path_factory.mktemp("data") / "shapes"
    write_sample("shapes", out, n_per_class=12, classes=3)  # 36 images: 3 steps an epoch at batch 16
    return out


@pytest.fixture(scope="module")
def tiny_det(tmp_path_factory) -> Path:
    from dlbox.data.shapes_det import write_shapes_det

    out = tmp_path_factory.mktemp("det") / "tiny-det"
    write_shapes_det(out, seed=5, n_images=20)
    return out


def histories_of_run_dir(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """What metrics.jsonl says MLflow must hold: every finite number of every record, at its step."""
    out: dict[str, list[tuple[int, float]]] = {}
    for rec in metrics_of(run_dir):
        for k, v in numeric(rec).items():
            out.setdefault(tm.metric_key(k), []).append((int(rec.get("step", 0)), v))
    return {k: sorted(v) for k, v in out.items()}


def histories_in_mlflow(client, run_id: str) -> dict[str, list[tuple[int, float]]]:
    run = client.get_run(run_id)
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in run.data.metrics}


def run_id_of(run_dir: Path) -> str:
    return json.loads((run_dir / "mlflow.json").read_text())["run_id"]


@pytest.fixture(scope="module")
def cls_run(mlflow_server, shapes, tmp_path_factory) -> dict:
    """A classifier trained with --tracker mlflow (2 epochs, system samples every 0.2 s): its result."""
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server["uri"])
        mp.setenv("DLBOX_HOME", str(runs / "home"))
        from dlbox.cli import main

        with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
            rc = main([str(a) for a in ("classify", "train", "--data", shapes, *CLS, "--epochs", "2",
                                        "--monitor-interval", "0.2", "--runs-dir", runs, "--name", "c")])  # fmt: skip
    assert rc == 0, err.getvalue()
    return json.loads(out.getvalue())


def test_classifier_run_params_metrics_tags_artifacts(tracking, cls_run, tmp_path):
    run_dir = Path(cls_run["run_dir"])
    run = tracking.get_run(run_id_of(run_dir))
    assert run.info.status == "FINISHED"
    assert tracking.get_experiment(run.info.experiment_id).name == "classify"
    # parameters: the resolved options (config.yaml), flattened
    cfg = load_yaml(run_dir / "config.yaml")
    want = {k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in flat_params(cfg).items()}
    assert run.data.params == want
    assert run.data.params["model"] == "resnet18" and run.data.params["epochs"] == "2"
    # metrics: every record of metrics.jsonl (epochs and system samples) with its step, nothing else
    want_metrics = histories_of_run_dir(run_dir)
    assert histories_in_mlflow(tracking, run.info.run_id) == want_metrics
    assert {"train/loss", "val/top1", "epoch"} <= set(want_metrics) and any(k.startswith("system/") for k in want_metrics)
    assert len(want_metrics["val/top1"]) == 2
    # tags: task, model, version, commit, data fingerprint
    tags = run.data.tags
    from dlbox import __version__

    assert (tags["dlbox.task"], tags["dlbox.model"], tags["dlbox.version"]) == ("classify", "resnet18", __version__)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=os.getcwd(), capture_output=True, text=True).stdout.strip()
    assert tags.get("mlflow.source.git.commit") == (commit or None)
    assert re.fullmatch(r"listing:[0-9a-f]{64}", tags["dlbox.data_fingerprint"])
    # artifacts: the run directory's config.yaml and metrics.jsonl, as they are on disk
    names = {a.path for a in tracking.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.jsonl", "best.json"} <= names
    got = Path(tracking.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path)))
    assert got.read_bytes() == (run_dir / "config.yaml").read_bytes()
    assert not (run_dir / tm.PENDING_FILE).exists()


def test_data_fingerprint_follows_the_files_not_their_place(shapes, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(shapes, copy)
    assert tm.data_fingerprint(copy) == tm.data_fingerprint(shapes)
    next(copy.rglob("*.png")).unlink()
    assert tm.data_fingerprint(copy) != tm.data_fingerprint(shapes)


def test_detector_run_is_tracked(tracking, tiny_det, tmp_path, capsys):
    res = run_main(capsys, "detect", "train", "--data", tiny_det, "--epochs", "1", "--img-size", "64", "--batch-size",
                   "8", "--threads", "1", "--device", "cpu", "--tracker", "mlflow", "--monitor-interval", "0",
                   "--runs-dir", tmp_path / "runs", "--name", "d", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    run_dir = Path(res.json()["run_dir"])
    run = tracking.get_run(run_id_of(run_dir))
    assert run.info.status == "FINISHED"
    assert run.data.tags["dlbox.task"] == "detect" and run.data.tags["dlbox.model"] == run.data.params["model"]
    assert tracking.get_experiment(run.info.experiment_id).name == "detect"
    want = histories_of_run_dir(run_dir)
    assert want and histories_in_mlflow(tracking, run.info.run_id) == want
    assert {"config.yaml", "metrics.jsonl"} <= {a.path for a in tracking.list_artifacts(run.info.run_id)}


def test_interrupted_and_resumed_run_is_one_mlflow_run_with_each_step_once(tracking, shapes, tmp_path, capsys):
    runs = tmp_path / "runs"
    run_dir = runs / "classify" / "r"

    def interrupt_after_first_epoch():
        if wait_for(lambda: (run_dir / "metrics.jsonl").is_file() and '"val/top1"' in (run_dir / "metrics.jsonl").read_text()):
            os.kill(os.getpid(), signal.SIGINT)  # the engine saves a checkpoint and stops

    t = threading.Thread(target=interrupt_after_first_epoch, daemon=True)
    t.start()
    first = run_main(capsys, "classify", "train", "--data", shapes, *CLS, "--epochs", "40", "--monitor-interval", "0",
                     "--runs-dir", runs, "--name", "r")  # fmt: skip
    t.join()
    assert first.returncode == 128 + signal.SIGINT, first.stderr
    run_id = run_id_of(run_dir)
    assert tracking.get_run(run_id).info.status == "KILLED"
    per_epoch = metrics_of(run_dir)[0]["step"]
    # A job killed outright may have sent a step past its last checkpoint: the resumed job must not send it again.
    from mlflow.entities import Metric

    ahead = 3 * per_epoch
    tracking.log_batch(run_id, metrics=[Metric("train/loss", 123.0, 0, ahead)])
    second = run_main(capsys, "classify", "train", "--resume", run_dir, "--epochs", "3", "--json")
    assert second.returncode == 0, second.stderr
    assert run_id_of(run_dir) == run_id
    runs_named = tracking.search_runs([tracking.get_run(run_id).info.experiment_id], "attributes.run_name = 'r'")
    assert [r.info.run_id for r in runs_named] == [run_id]
    assert tracking.get_run(run_id).info.status == "FINISHED"
    got = histories_in_mlflow(tracking, run_id)
    for key, history in got.items():
        steps = [s for s, _ in history]
        assert len(steps) == len(set(steps)), (key, steps)
    want = histories_of_run_dir(run_dir)
    assert [s for s, _ in got["val/top1"]] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert got["train/loss"] == [(s, 123.0 if s == ahead else v) for s, v in want["train/loss"]]
    assert {k: v for k, v in got.items() if k != "train/loss"} == {k: v for k, v in want.items() if k != "train/loss"}


def test_export_register_twice_gives_versions_1_and_2_and_predicts_like_the_run(tracking, cls_run, shapes, capsys):
    run_dir = Path(cls_run["run_dir"])
    versions = []
    for _ in range(2):
        out = run_main(capsys, "classify", "export", run_dir, "--register", "digits", "--json")
        assert out.returncode == 0, out.stderr
        versions.append(out.json()["registered"])
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["uri"] == "models:/digits/2" and versions[1]["run_id"] == run_id_of(run_dir)
    mv = tracking.get_model_version("digits", "2")
    assert mv.tags["dlbox.task"] == "classify" and json.loads(mv.tags["dlbox.classes"]) == cls_run["classes"]
    assert float(mv.tags["metric.val/top1"]) == pytest.approx(cls_run["val_top1"], rel=1e-5)
    image = sorted(shapes.rglob("*.png"))[0]
    from_registry = run_main(capsys, "classify", "predict", "models:/digits/2", image, "--json")
    from_export = run_main(capsys, "classify", "predict", run_dir / "model.onnx", image, "--json")
    from_run = run_main(capsys, "classify", "predict", run_dir, image, "--json")
    assert from_registry.returncode == 0, from_registry.stderr
    strip = lambda rows: [{k: v for k, v in r.items() if k != "file"} for r in rows]  # noqa: E731
    assert strip(from_registry.json()) == strip(from_export.json())  # the very same export file
    reg, run = strip(from_registry.json())[0]["predictions"], strip(from_run.json())[0]["predictions"]
    assert [p["label"] for p in reg] == [p["label"] for p in run]
    assert [p["prob"] for p in reg] == pytest.approx([p["prob"] for p in run], abs=1e-4)  # ONNX vs PyTorch
    again = run_main(capsys, "track", "register", run_dir, "--name", "digits", "--json")  # the export on disk
    assert again.returncode == 0 and again.json()["version"] == 3, again.stderr
    from dlbox.serve.models import resolve  # `dlbox serve models:/NAME/VERSION` takes the same file

    [spec] = resolve(["models:/digits/2"])
    assert (spec.name, spec.version, spec.task) == ("digits", "2", "classify")
    # an alias, and a version that does not exist: one line
    tracking.set_registered_model_alias("digits", "champion", "1")
    alias = run_main(capsys, "classify", "predict", "models:/digits@champion", image, "--json")
    assert alias.returncode == 0 and strip(alias.json()) == strip(from_export.json())
    assert_user_error(run_main(capsys, "classify", "predict", "models:/digits/9", image), "models:/digits/9",
                      "versions of digits: 1, 2, 3")  # fmt: skip
    assert_user_error(run_main(capsys, "classify", "export", run_dir, "--register", "no/slash"), "model name")
    listed = run_main(capsys, "track", "runs", "--experiment", "classify", "--sort", "val/top1", "--json")
    assert listed.returncode == 0 and run_id_of(run_dir) in [r["run_id"] for r in listed.json()["runs"]]
    top = [r["metrics"]["val/top1"] for r in listed.json()["runs"] if "val/top1" in r["metrics"]]
    assert top == sorted(top, reverse=True)


def test_server_gone_mid_run_one_warning_then_sync_completes_the_run(tracking, relay, shapes, tmp_path, capsys,
                                                                    monkeypatch):  # fmt: skip
    """The relay stands for the server: clients reach it there, and it goes away once the MLflow run exists
    (then 4 epochs of records have nowhere to go)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{relay.port}")
    run_dir = tmp_path / "runs" / "classify" / "s"

    def stop_once_the_run_exists():
        if wait_for(lambda: "run_id" in tm.read_run_file(run_dir)):
            relay.stop()

    t = threading.Thread(target=stop_once_the_run_exists, daemon=True)
    t.start()
    res = run_main(capsys, "classify", "train", "--data", shapes, *CLS, "--epochs", "4", "--monitor-interval", "0",
                   "--runs-dir", tmp_path / "runs", "--name", "s")  # fmt: skip
    t.join()
    assert res.returncode == 0, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if "warning" in ln.lower()]
    assert len(warnings) == 1 and "MLflow" in warnings[0] and "dlbox track sync" in warnings[0], res.stderr
    assert "Traceback" not in res.stderr
    assert (run_dir / tm.PENDING_FILE).is_file()
    run_id = run_id_of(run_dir)
    assert tracking.get_run(run_id).info.status == "RUNNING"
    # still gone: sync is one line and keeps the records
    assert_user_error(run_main(capsys, "track", "sync", run_dir), "cannot sync")
    assert (run_dir / tm.PENDING_FILE).is_file()
    relay.start()  # the server is back, at the same address
    synced = run_main(capsys, "track", "sync", run_dir, "--json")
    assert synced.returncode == 0, synced.stderr
    assert synced.json()["run_id"] == run_id and synced.json()["sent"]["metrics"] > 0
    assert not (run_dir / tm.PENDING_FILE).exists()
    run = tracking.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert histories_in_mlflow(tracking, run_id) == histories_of_run_dir(run_dir)
    assert {"config.yaml", "metrics.jsonl"} <= {a.path for a in tracking.list_artifacts(run_id)}


def test_track_commands_have_help_with_an_example(capsys):
    for sub in ("server", "runs", "register", "sync"):
        res = run_main(capsys, "track", sub, "--help")
        assert res.returncode == 0 and "example:" in res.stdout and "--json" in res.stdout, res.stderr


def test_sync_sends_a_run_that_was_never_tracked_whole(tracking, cls_run, tmp_path, capsys):
    """A run trained without --tracker mlflow (here: a copy of one, without its mlflow.json) goes in whole."""
    copy = tmp_path / "runs" / "classify" / "untracked"
    shutil.copytree(cls_run["run_dir"], copy, ignore=shutil.ignore_patterns("mlflow.json", "checkpoints", "*.onnx"))
    res = run_main(capsys, "track", "sync", copy, "--json")
    assert res.returncode == 0, res.stderr
    assert res.json()["imported"] is True
    run = tracking.get_run(run_id_of(copy))
    assert run.info.run_id != run_id_of(Path(cls_run["run_dir"])) and run.info.status == "FINISHED"
    assert histories_in_mlflow(tracking, run.info.run_id) == histories_of_run_dir(copy)
    assert run.data.params["model"] == "resnet18" and run.data.tags["dlbox.task"] == "classify"


def test_server_binding_rules_are_dlbox_services_own(capsys):
    assert_user_error(run_main(capsys, "track", "server", "--ip", "not-an-address"), "--ip")
    assert_user_error(run_main(capsys, "track", "server", "--port", "70000"), "--port")
