"""The engine's loop on LeNet-5/digits: exact resume after a signal, extending epochs, run directory contents."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from dlbox.engine import checkpoint
from dlbox.engine.metrics import read_jsonl
from tests.conftest import assert_user_error, cli_env

TRAIN = ["env", "test", "--framework", "torch", "--deterministic", "--seed", "3", "--threads", "1"]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(run_dir / "checkpoints" / "last.pt")["model"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """An uninterrupted 8-epoch run, the reference for the resume tests."""
    from tests.conftest import run_cli

    runs = tmp_path_factory.mktemp("runs")
    res = run_cli(*TRAIN, "--epochs", "8", "--runs-dir", runs, "--name", "full", "--json")
    assert res.returncode == 0, res.stderr
    return runs / "env-test" / "full"


def test_run_directory_holds_config_metrics_events_and_checkpoints(full_run):
    assert yaml.safe_load((full_run / "config.yaml").read_text())["epochs"] == 8
    records = read_jsonl(full_run / "metrics.jsonl")
    assert [r["epoch"] for r in records] == list(range(1, 9))
    assert {"train/loss", "val/accuracy", "images_per_sec", "lr"} <= set(records[0])
    assert (full_run / "checkpoints" / "last.pt").is_file() and (full_run / "checkpoints" / "best.pt").is_file()
    best = checkpoint.load(full_run / "checkpoints" / "best.pt")["best"]
    assert best["value"] == max(r["val/accuracy"] for r in records)


def test_tensorboard_event_accumulator_reads_loss_and_accuracy(full_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(full_run / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "train/loss" in tags and "val/accuracy" in tags
    assert {"system/cpu_percent", "system/ram_gb"} <= set(tags)  # the monitor's samples of this machine
    losses = [e.value for e in acc.Scalars("train/loss")]
    assert len(losses) == 8 and losses[-1] < losses[0]


def test_interrupted_and_resumed_run_equals_the_uninterrupted_one_bit_for_bit(full_run, tmp_path):
    cmd = [sys.executable, "-m", "dlbox", *TRAIN, "--epochs", "8", "--runs-dir", str(tmp_path), "--name", "cut"]
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "env-test" / "cut" / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    run = tmp_path / "env-test" / "cut"
    saved = checkpoint.load(run / "checkpoints" / "last.pt")
    assert (saved["epoch"], saved["batch_in_epoch"]) < (8, 0)  # it really stopped early

    from tests.conftest import run_cli

    res = run_cli("env", "test", "--resume", run, "--json")
    assert res.returncode == 0, res.stderr
    resumed, reference = _weights(run), _weights(full_run)
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert torch.equal(resumed[key], reference[key]), key
    assert [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")] == list(range(1, 9))


def test_resume_with_more_epochs_extends_a_finished_run(tmp_path, cli):
    assert cli(*TRAIN, "--epochs", "2", "--runs-dir", tmp_path, "--name", "short").returncode == 0
    run = tmp_path / "env-test" / "short"
    res = cli("env", "test", "--resume", run, "--epochs", "4", "--json")
    assert res.returncode == 0, res.stderr
    assert [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")] == [1, 2, 3, 4]
    assert checkpoint.load(run / "checkpoints" / "last.pt")["epoch"] == 4
    assert yaml.safe_load((run / "config.yaml").read_text())["epochs"] == 4


def test_truncated_last_checkpoint_is_reported_and_the_previous_one_kept(tmp_path, cli):
    assert cli(*TRAIN, "--epochs", "2", "--runs-dir", tmp_path, "--name", "t").returncode == 0
    ckpts = tmp_path / "env-test" / "t" / "checkpoints"
    data = (ckpts / "last.pt").read_bytes()
    (ckpts / "last.pt").write_bytes(data[: len(data) // 3])
    line = assert_user_error(cli("env", "test", "--resume", tmp_path / "env-test" / "t"), "truncated or corrupt")
    assert "last.prev.pt" in line
    assert checkpoint.load(ckpts / "last.prev.pt")["epoch"] == 1
    res = cli("env", "test", "--resume", ckpts / "last.prev.pt", "--json")
    assert res.returncode == 0, res.stderr


def test_a_foreign_file_is_refused_on_resume(tmp_path, cli):
    torch.save({"w": torch.ones(1)}, tmp_path / "x.pt")
    assert_user_error(cli("env", "test", "--resume", tmp_path / "x.pt"), "not a dlbox checkpoint")


def _fill(disk: Path, leave: int) -> Path:
    """Write a filler file until ``leave`` bytes are free on ``disk``."""
    import shutil

    filler = disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, shutil.disk_usage(disk).free - leave))
    return filler


def test_a_full_disk_stops_training_with_one_line_and_resume_continues(small_disk, tmp_path, cli, monkeypatch, capsys):
    """A run of 2 epochs extended to 4: the checkpoint of epoch 3 cannot be written. One line naming the file
    and the free space, last.pt still holds epoch 2, and once there is room the run resumes and ends as the
    same extension did without the failure."""
    assert cli(*TRAIN, "--epochs", "2", "--runs-dir", tmp_path, "--name", "ref").returncode == 0
    assert cli("env", "test", "--resume", tmp_path / "env-test" / "ref", "--epochs", "4").returncode == 0
    small = small_disk("16m")
    disk = small or tmp_path / "no-tmpfs"
    assert cli(*TRAIN, "--epochs", "2", "--runs-dir", disk, "--name", "full-disk").returncode == 0
    run = disk / "env-test" / "full-disk"
    if small is not None:  # a real full disk
        filler = _fill(disk, leave=64 * 1024)  # a LeNet-5 checkpoint with Adam's state is ~0.75 MB
        res = cli("env", "test", "--resume", run, "--epochs", "4")
    else:  # this machine allows no mount: the same OSError, raised at the write
        import errno

        def no_space(obj, f):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(torch, "save", no_space)
        from tests.conftest import run_main

        threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
        try:
            res = run_main(capsys, "env", "test", "--resume", run, "--epochs", "4")
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(det)
        monkeypatch.undo()
        filler = None
    assert res.returncode == 1, res.stderr[-2000:]
    (line,) = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert "Traceback" not in res.stderr
    assert f"cannot write '{run / 'checkpoints' / 'last.pt'}'" in line and "No space left on device" in line, line
    assert "free there" in line and "the previous file is intact" in line, line
    assert f"continue with: dlbox env test --resume {run}" in line, line  # not "the same command" (a new run)
    assert checkpoint.load(run / "checkpoints" / "last.pt")["epoch"] == 2
    if filler is not None:
        filler.unlink()
    res = cli("env", "test", "--resume", run, "--epochs", "4", "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    for key, value in _weights(tmp_path / "env-test" / "ref").items():
        assert torch.equal(value, _weights(run)[key]), key


def test_the_loop_reads_nothing_back_from_the_device_per_step(monkeypatch, tmp_path):
    """Metric sums stay tensors between log points: the engine's own host reads (float(), .item(), ...) per
    epoch do not grow with the number of steps. On a GPU each such read would wait for the device."""
    from dlbox.engine.trainer import fit
    from dlbox.env.config import IntegrityConfig
    from dlbox.env.integrity import LeNetTask

    calls = {"n": 0}

    def counting(name):
        real = getattr(torch.Tensor, name)

        def wrapper(self, *a, **k):
            if sys._getframe(1).f_code.co_filename.endswith(("engine/trainer.py", "engine/batches.py")):
                calls["n"] += 1
            return real(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, wrapper)

    for name in ("__float__", "__int__", "__bool__", "item", "tolist", "cpu", "numpy"):
        counting(name)

    def reads(batch_size: int) -> int:
        calls["n"] = 0
        cfg = IntegrityConfig(epochs=1, batch_size=batch_size, runs_dir=str(tmp_path / str(batch_size)),
                              threads=1, monitor_interval=0)  # fmt: skip
        fit(LeNetTask(cfg), cfg)
        return calls["n"]

    threads = torch.get_num_threads()
    try:
        few, many = reads(256), reads(16)  # ~6 and ~90 steps
    finally:
        torch.set_num_threads(threads)
    assert many == few, (few, many)
