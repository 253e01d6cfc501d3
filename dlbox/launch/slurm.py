"""`dlbox launch slurm`: an sbatch script for a training command.

The script asks SLURM for the nodes, GPUs and time, for SIGUSR1 ``--signal-before`` seconds before the time
limit, and for ``--requeue``; ``srun`` starts the processes (one per task by default, so each rank gets SLURM's
signal itself). A training that was signalled saves a mid-epoch checkpoint and exits with 138; the script then
requeues the job, and the requeued job (same job id, SLURM_RESTART_COUNT > 0) finds its run directory
``RUNS_DIR/TASK/slurm-JOBID`` and resumes from it.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from dlbox import __version__
from dlbox.launch import common
from dlbox.launch.config import SlurmArgs

REQUEUE_CODE = 138  # 128 + SIGUSR1: the training saved a checkpoint because SLURM asked (dlbox.engine.signals)


def script(c: SlurmArgs) -> tuple[str, str, str]:
    """(the script's text, its job name, the shared runs directory)."""
    runs = os.path.abspath(common.runs_dir_of(c, "runs"))
    task = common.task_of(c.command)
    name = c.job_name or f"dlbox-{task}"
    procs = c.processes
    per_task = c.mode == "per-task"
    extra = [] if per_task else ["--nproc-per-node", str(procs)]
    cmd = common.shell_join(common.training_command(c, runs, extra))
    log = f"{runs}/launch/{name}-%j.log"
    lines = [
        "#!/bin/bash",
        f"# Written by `dlbox launch slurm` (dlbox {__version__}, {datetime.now():%Y-%m-%d %H:%M}). Submit: sbatch FILE",
        "#",
        f"# {c.nodes} node(s) x {procs} process(es), "
        + (f"{c.gpus_per_node} GPU(s) per node." if c.gpus_per_node else "CPU training."),
        "# dlbox reads the allocation from SLURM_* (nodes, this node's rank, the first node as the master) and",
        "# says on its first line what it found; the run directory is RUNS_DIR/TASK/slurm-<job id>, so a",
        "# requeued job continues the same run.",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --nodes={c.nodes}",
        f"#SBATCH --ntasks-per-node={procs if per_task else 1}"
        + ("   # one task per process: srun starts every rank" if per_task
           else "   # one task per node: it launches the node's processes"),
    ]  # fmt: skip
    if c.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={c.gpus_per_node}")
    if c.cpus_per_task:
        cpus = c.cpus_per_task if per_task else c.cpus_per_task * procs
        lines.append(f"#SBATCH --cpus-per-task={cpus}")
    lines.append(f"#SBATCH --time={c.time}")
    if c.partition:
        lines.append(f"#SBATCH --partition={c.partition}")
    lines += [
        f"#SBATCH --signal=USR1@{c.signal_before}   # SIGUSR1 {c.signal_before} s before the time limit: "
        "save a checkpoint",
        "#SBATCH --requeue           # a preempted job (or one that asks, below) is queued again",
        "#SBATCH --open-mode=append  # the requeued job's log follows the first one's",
        f"#SBATCH --output={log}",
    ]
    lines += [f"#SBATCH {opt}" for opt in c.sbatch]
    lines += [
        "",
        "set -u",
        f"cd {common.shlex.quote(os.getcwd())}",
        f"mkdir -p {common.shlex.quote(runs)}   # on storage every node shares: checkpoints, metrics, logs",
        "export PYTHONUNBUFFERED=1 DLBOX_PROGRESS=${DLBOX_PROGRESS:-0}   # lines in the log, no progress bars",
        'echo "job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, restart ${SLURM_RESTART_COUNT:-0}, $(date)"',
        "",
        "# srun's tasks get SLURM's SIGUSR1 and checkpoint; the batch shell itself must not die of it.",
        "trap 'echo \"SIGUSR1: the training saves a checkpoint\"' USR1",
        "srun " + cmd + " &",
        "wait $!; rc=$?",
        "while [ $rc -gt 128 ] && kill -0 $! 2>/dev/null; do wait $!; rc=$?; done   # a trap interrupted wait",
        "",
        f"if [ $rc -eq {REQUEUE_CODE} ]; then   # 128 + SIGUSR1: checkpoint saved before the limit",
        '    echo "checkpoint saved; requeueing job $SLURM_JOB_ID"',
        '    scontrol requeue "$SLURM_JOB_ID"',
        "fi",
        "exit $rc",
        "",
    ]
    return "\n".join(lines), name, runs


def launch_slurm(c: SlurmArgs) -> dict[str, Any]:
    text, name, runs = script(c)
    out = common.write_or_show(c, text, Path(runs) / "launch" / f"{name}.sbatch")
    result: dict[str, Any] = {"kind": "slurm", "file": str(out) if out else None, "job_name": name,
                              "runs_dir": runs, "script": text, "submitted": False, "job_id": None}  # fmt: skip
    if c.submit:
        Path(runs, "launch").mkdir(parents=True, exist_ok=True)  # sbatch opens the log there
        job = common.submit(["sbatch", "--parsable", str(out)], "job script",
                            f"the script is in {out}; check it with the cluster's admin, or submit it by hand")  # fmt: skip
        result.update(submitted=True, job_id=job.split(";")[0])
    return result


def render(r: dict[str, Any]) -> str:
    if r["file"] is None:
        return r["script"].rstrip()
    if r["submitted"]:
        return (f"wrote {r['file']}\nsubmitted job {r['job_id']} ({r['job_name']}); log: "
                f"{r['runs_dir']}/launch/{r['job_name']}-{r['job_id']}.log; run: {r['runs_dir']}/<task>/slurm-{r['job_id']}")  # fmt: skip
    return f"wrote {r['file']}\nsubmit with: sbatch {r['file']}  (or run dlbox launch slurm again with --submit)"
