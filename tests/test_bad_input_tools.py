"""Issue 21's tool fixes, each through the command a user runs (in-process): shapes-det refuses a folder of
other files and leaves nothing after an interruption; a full disk keeps a text job's .partial for the resume;
a full disk mid-training says --resume RUN; a folder given as a file is called a folder; a run of another task
given to --resume is said to be one."""

from __future__ import annotations

import errno
import json
import os

import pytest

from tests.conftest import assert_user_error, fill_disk_after, run_main


def test_shapes_det_refuses_a_folder_of_other_files(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me\n")
    res = run_main(capsys, "data", "sample", "shapes-det", "--out", tmp_path / "mine", "--n-per-class", "4")
    assert_user_error(res, "mine", "not a dlbox sample folder")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["thesis.tex"]


def test_an_interrupted_shapes_det_leaves_no_images_without_annotations(tmp_path, monkeypatch, capsys):
    from dlbox.data import shapes_det

    real, drawn = shapes_det.render_scene, [0]

    def interrupted(*a, **k):
        drawn[0] += 1
        if drawn[0] > 5:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(shapes_det, "render_scene", interrupted)
    res = run_main(capsys, "data", "sample", "shapes-det", "--out", tmp_path / "sd", "--n-per-class", "10")
    assert res.returncode == 130
    assert not (tmp_path / "sd").exists() and list(tmp_path.iterdir()) == []  # no half sample, no temp folder
    monkeypatch.setattr(shapes_det, "render_scene", real)
    res = run_main(capsys, "data", "sample", "shapes-det", "--out", tmp_path / "sd", "--n-per-class", "4", "--json")
    assert res.returncode == 0, res.stderr
    images = {p.name for p in (tmp_path / "sd" / "images").iterdir()}
    named = {im["file_name"] for f in (tmp_path / "sd" / "annotations").glob("*.json")
             for im in json.loads(f.read_text())["images"]}  # fmt: skip
    assert images == {os.path.basename(n) for n in named}


def test_a_full_disk_keeps_the_partial_text_and_the_same_command_resumes(tmp_path, monkeypatch, capsys):
    from dlbox.tasks.text import pipeline

    src = tmp_path / "t.txt"
    src.write_text("".join(f"鳳凰與麒麟 第{i}行\n" for i in range(1200)), encoding="utf-8")
    out = tmp_path / "s.txt"
    args = ("text", "convert", src, "--out", out, "--t2s", "--workers", "1", "--chunk-size", "50", "--json")
    monkeypatch.setattr(pipeline, "CHECKPOINT_SECONDS", 0.0)  # a checkpoint after every chunk
    fill_disk_after(monkeypatch, pipeline, nbytes=8_000)
    res = run_main(capsys, *args)
    assert res.returncode == 1 and "No space left on device" in res.stderr and "Traceback" not in res.stderr
    partial = tmp_path / "s.txt.partial"
    assert partial.is_file() and (tmp_path / "s.txt.partial.json").is_file() and not out.exists()
    monkeypatch.undo()  # the disk has room again
    res = run_main(capsys, *args)
    assert res.returncode == 0, res.stderr
    assert res.json()["resumed_after"] > 0
    whole = tmp_path / "whole.txt"
    assert run_main(capsys, "text", "convert", src, "--out", whole, "--t2s", "--workers", "1").returncode == 0
    assert out.read_bytes() == whole.read_bytes()


def test_a_full_disk_in_a_training_run_says_resume_not_rerun(tmp_path):
    import argparse

    from dlbox.base.fileio import WriteError, write_error
    from dlbox.cli import _run_of_failed_write

    run = tmp_path / "runs" / "classify" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("epochs: 3\n")
    err = write_error(run / "checkpoints" / "last.pt", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    args = argparse.Namespace(resume=None, command_path="dlbox classify train")
    assert _run_of_failed_write(err, args) == run
    # as the trainer re-raises it on every rank: message and hint only
    assert _run_of_failed_write(WriteError(err.message, err.hint), args) == run
    assert _run_of_failed_write(err, argparse.Namespace()) is None  # not a training command


def test_a_folder_given_as_a_file_is_called_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = assert_user_error(run_main(capsys, "classify", "train", "--config", "."), "'.'")
    assert "is a folder" in line and "does not exist" not in line


def test_a_run_of_another_task_given_to_resume_is_said_to_be_one(tmp_path, capsys):
    run = tmp_path / "runs" / "classify" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    (run / "config.yaml").write_text("epochs: 3\nfreeze_backbone: true\nmodel: resnet18\n")
    line = assert_user_error(run_main(capsys, "detect", "train", "--resume", run), "another task", "freeze_backbone")
    assert "dlbox classify train --resume" in line and "unknown config key" not in line


@pytest.mark.parametrize("name", ["x.tar.gz", "x.zip"])
def test_extracting_a_file_that_is_not_an_archive_is_one_line_and_writes_nothing(name, tmp_path):
    from dlbox.base.errors import UserError
    from dlbox.hub.extract import extract

    (tmp_path / name).write_text("this is not an archive\n")
    with pytest.raises(UserError) as e:
        extract(tmp_path / name, tmp_path / "out")
    assert "\n" not in str(e.value) and name in str(e.value)
    assert not (tmp_path / "out").exists()
