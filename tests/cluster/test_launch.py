"""`dlbox launch slurm|k8s`: the job files read right (bash parses the script; what it asks SLURM for), are
written only without --dry-run, and bad input is one line before anything is written."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.conftest import run_main

TRAIN = ["dlbox", "classify", "train", "--data", "/shared/digits", "--epochs", "3"]


def _script(capsys, *options: str) -> str:
    res = run_main(capsys, "launch", "slurm", *options, "--dry-run", "--", *TRAIN)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_sbatch_script_asks_for_the_job_and_parses(capsys, tmp_path):
    text = _script(capsys, "--nodes", "2", "--gpus-per-node", "4", "--cpus-per-task", "8", "--time", "04:00:00",
                   "--partition", "gpu", "--runs-dir", str(tmp_path), "--sbatch=--account=proj1")  # fmt: skip
    check = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    sbatch = [ln.split("#", 2)[1].split()[1] for ln in text.splitlines() if ln.startswith("#SBATCH")]
    for want in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--cpus-per-task=8", "--time=04:00:00",
                 "--partition=gpu", "--signal=USR1@90", "--requeue", "--open-mode=append", "--account=proj1"):
        assert want in sbatch, (want, sbatch)
    (srun,) = [ln for ln in text.splitlines() if ln.startswith("srun ")]
    assert srun == f"srun {' '.join(TRAIN)} --runs-dir {tmp_path} &"
    assert "scontrol requeue" in text and "-eq 138" in text
    assert sum(ln.lstrip().startswith("#") for ln in text.splitlines()) >= 15  # commented


def test_per_node_mode_launches_the_node_processes(capsys):
    text = _script(capsys, "--nodes", "3", "--gpus-per-node", "8", "--cpus-per-task", "4", "--mode", "per-node")
    assert "#SBATCH --ntasks-per-node=1" in text and "#SBATCH --cpus-per-task=32" in text
    assert "--nproc-per-node 8 &" in text


def test_without_dry_run_the_script_is_written(capsys, tmp_path):
    res = run_main(capsys, "launch", "slurm", "--runs-dir", str(tmp_path), "--job-name", "digits", "--json", "--",
                   *TRAIN)  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["file"] == str(tmp_path / "launch" / "digits.sbatch") and not report["submitted"]
    assert (tmp_path / "launch" / "digits.sbatch").read_text() == report["script"]


def test_the_k8s_manifest_is_written_where_asked(capsys, tmp_path):
    out = tmp_path / "job.yaml"
    res = run_main(capsys, "launch", "k8s", "--image", "dlbox:1", "--nodes", "2", "--out", str(out), "--", *TRAIN)
    assert res.returncode == 0, res.stderr
    assert out.read_text().startswith("# Written by `dlbox launch k8s`") and "kind: PyTorchJob" in out.read_text()
    assert f"wrote {out}" in res.stdout


@pytest.mark.parametrize("args,message", [
    (["slurm", "--dry-run"], "expected a training command after --"),
    (["slurm", "--dry-run", "--", "python", "train.py"], "expected a training command after --"),
    (["slurm", "--time", "4h", "--dry-run", "--", *TRAIN], "--time '4h' is not a SLURM time"),
    (["slurm", "--dry-run", "--submit", "--", *TRAIN], "--dry-run and --submit exclude each other"),
    (["slurm", "--dry-run", "--", *TRAIN, "--nproc-per-node", "2"], "--nproc-per-node in the training command"),
    (["slurm", "--nodes", "0", "--dry-run", "--", *TRAIN], "must be >= 1"),
    (["k8s", "--image", "x", "--name", "Bad_Name", "--dry-run", "--", *TRAIN], "is not a valid job name"),
    (["k8s", "--dry-run", "--", *TRAIN], "--image"),
    (["k8s", "--image", "x", "--memory", "lots", "--dry-run", "--", *TRAIN], "is not a quantity"),
])  # fmt: skip
def test_bad_input_is_one_line(capsys, args, message):
    res = run_main(capsys, "launch", *args)
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.stderr


def test_a_submit_that_fails_is_one_line_and_keeps_the_file(capsys, tmp_path, monkeypatch):
    # No cluster: kubectl missing, or kubectl with a configuration that names none (it then tries localhost:8080)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    out = tmp_path / "job.yaml"
    res = run_main(capsys, "launch", "k8s", "--image", "dlbox:1", "--out", str(out), "--submit", "--", *TRAIN)
    assert res.returncode == 2 and res.stdout == "", res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(("error: kubectl is not installed here",
                                                    "error: kubectl refused the manifest")), lines  # fmt: skip
    assert f"the manifest is in {out}" in lines[0] and out.is_file()
