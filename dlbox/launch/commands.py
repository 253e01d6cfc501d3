"""`dlbox launch slurm|k8s -- dlbox TASK train ...`: the training command as a cluster job."""

from __future__ import annotations

from dlbox.cliutil import Command, group, lazy
from dlbox.launch import config

COMMANDS = [
    Command("slurm", "an sbatch script for a training command: nodes, GPUs, time limit, checkpoint on SIGUSR1, "
            "requeue", "dlbox launch slurm --nodes 2 --gpus-per-node 4 --time 04:00:00 --dry-run -- "
            "dlbox classify train --data /shared/data/flowers --epochs 30",
            config.SlurmArgs, lazy("dlbox.launch.slurm:launch_slurm"), lazy("dlbox.launch.slurm:render"),
            description="Write an sbatch script that runs the training command on --nodes nodes (srun starts one\n"
            "process per task, or with --mode per-node one per node that launches the node's processes).\n"
            "SLURM sends SIGUSR1 --signal-before seconds before the time limit: the training saves a\n"
            "mid-epoch checkpoint, exits 138, and the script requeues the job, which resumes its run\n"
            "(RUNS_DIR/TASK/slurm-JOBID, on storage every node shares). --dry-run prints the script;\n"
            "--submit hands it to sbatch."),
    Command("k8s", "a Kubeflow PyTorchJob or TrainJob manifest for a training command: pods, GPUs, volumes, "
            "restarts", "dlbox launch k8s --nodes 2 --gpus-per-node 8 --image registry/dlbox:1.0 --runs-pvc runs "
            "--data-pvc datasets --dry-run -- dlbox classify train --data /data/flowers",
            config.K8sArgs, lazy("dlbox.launch.k8s:launch_k8s"), lazy("dlbox.launch.k8s:render"),
            description="Write a PyTorchJob (Kubeflow Training Operator) or, with --kind trainjob, a TrainJob\n"
            "(Kubeflow Trainer) for the training command: --nodes pods, --gpus-per-node GPUs each, the\n"
            "runs volume (--runs-pvc, shared by all pods and kept across restarts) and the data volume.\n"
            "An evicted pod saves a checkpoint on SIGTERM and exits 143; restartPolicy ExitCode retries\n"
            "it and the new pod resumes. --dry-run prints the manifest; --submit runs kubectl apply."),
]  # fmt: skip

register = group("launch", "run a training command on a cluster: SLURM batch script or Kubernetes job",
                 "dlbox launch slurm --nodes 2 --dry-run -- dlbox classify train --data /shared/digits", COMMANDS,
                 description="The same `dlbox TASK train ...` as on one machine, as a SLURM batch job or a\n"
                 "Kubeflow job. Inside either, a plain train command also finds the cluster by itself\n"
                 "(see docs/cluster.md).")  # fmt: skip
