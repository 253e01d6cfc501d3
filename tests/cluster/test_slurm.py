"""Through a real one-node SLURM cluster (munged, slurmctld, slurmd; tests/cluster/slurm.py): the job script of
`dlbox launch slurm --submit` trains with 2 tasks; SIGUSR1 (`scancel --signal=USR1`, what `--signal=USR1@90`
sends before a time limit) makes it checkpoint mid-epoch and requeue itself, and the requeued job resumes and
ends with the uninterrupted run's weights; `srun -n 2 dlbox ...` (one process per task) works as well."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.cluster.conftest import JOB, TASK_DIR, checkpoint_position, env, weights_digest
from tests.conftest import ROOT


def _wait_for_file(slurm, job: str, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        state = slurm.job(job).get("JobState")
        if state not in ("PENDING", "RUNNING", "CONFIGURING"):
            raise AssertionError(f"job {job} is {state} and {path} was never written\n{slurm.logs()}")
        time.sleep(0.1)
    raise AssertionError(f"{path} did not appear within {timeout} s\n{slurm.logs()}")


def test_a_submitted_job_checkpoints_on_usr1_is_requeued_and_ends_with_the_uninterrupted_weights(
        slurm, reference, tmp_path):  # fmt: skip
    runs = tmp_path / "runs"
    launch = subprocess.run(
        [sys.executable, "-m", "dlbox", "launch", "slurm", "--submit", "--procs-per-node", "2", "--time", "00:10:00",
         "--runs-dir", str(runs), "--job-name", "dlbox-test", "--json", "--", "dlbox", *JOB],
        env=env(SLURM_CONF=str(slurm.conf)), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert launch.returncode == 0, launch.stderr
    report = json.loads(launch.stdout)
    job = report["job_id"]
    assert report["submitted"] and job.isdigit()
    run_dir = runs / TASK_DIR / f"slurm-{job}"
    # Both ranks have joined the job once rank 0 wrote the run's config (that needs a collective).
    _wait_for_file(slurm, job, run_dir / "config.yaml", timeout=180)
    slurm.run("scancel", "--signal=USR1", job)
    info = slurm.wait(job, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), timeout=240, restarts=1)
    log = (runs / "launch" / f"dlbox-test-{job}.log").read_text()
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", (info, log[-3000:])
    assert "interrupted by SIGUSR1" in log and f"requeueing job {job}" in log, log[-3000:]
    assert "cluster: SLURM job" in log and "restart 1" in log, log[-3000:]
    assert f"resuming {run_dir}" in log, log[-3000:]
    assert [p.name for p in (runs / TASK_DIR).iterdir()] == [run_dir.name]  # the same run, continued
    assert checkpoint_position(run_dir) == (2, 0)  # both epochs done
    assert weights_digest(run_dir) == reference["digest"]


def test_srun_starts_one_process_per_task(slurm, reference, tmp_path):
    proc = slurm.run("srun", "-n", "2", sys.executable, "-m", "dlbox", *JOB, "--runs-dir", str(tmp_path),
                     check=False, timeout=300, env=env(SLURM_CONF=str(slurm.conf)), cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = proc.stderr.splitlines()[0]
    assert first.startswith("cluster: SLURM job") and "one process per task (rank 0 of 2" in first, proc.stderr[:500]
    (row,) = json.loads(proc.stdout)["results"]  # rank 1 prints nothing: rank 0 reports
    assert row["processes"] == 2 and Path(row["run_dir"]).name.startswith("slurm-")
    assert weights_digest(row["run_dir"]) == reference["digest"]


def test_the_nodelist_parser_agrees_with_scontrol(slurm):
    from dlbox.engine.cluster import expand_nodelist

    for text in ("node[01-03,7],gpu-a[1-2]", "r[1-2]n[08-10]", "gpu[098-101],x", "a,b-1,c[9-11]"):
        out = slurm.run("scontrol", "show", "hostnames", text).stdout.split()
        assert expand_nodelist(text) == out, text
