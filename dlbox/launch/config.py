"""Options of `dlbox launch slurm|k8s` (torch-free: the parser is built without importing torch)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from dlbox.base.errors import UserError
from dlbox.config import REQUIRED, opt, positional


@dataclass(kw_only=True)
class LaunchArgs:
    command: list[str] = positional("the training command, after --: dlbox TASK train ...", nargs="*",
                                    default=[], metavar="-- dlbox TASK train")  # fmt: skip
    nodes: int = opt(1, "number of nodes", ge=1, le=10000)
    gpus_per_node: int = opt(0, "GPUs per node (0: CPU training)", ge=0, le=64)
    procs_per_node: int | None = opt(None, "training processes per node (default: --gpus-per-node, or 1)",
                                     ge=1, le=1024)  # fmt: skip
    runs_dir: str | None = opt(None, "run directory on storage every node shares (default: the command's "
                               "--runs-dir, else ./runs for SLURM and /runs for Kubernetes)",
                               output=False)  # fmt: skip  # a path the nodes write (in a pod for Kubernetes)
    iface: str | None = opt(None, "network interface the nodes reach each other on (passed as --iface)")
    out: str | None = opt(None, "where to write the job file (default: RUNS_DIR/launch/NAME.sbatch or .yaml)",
                          output="file")
    dry_run: bool = opt(False, "print the job file; write and submit nothing")
    submit: bool = opt(False, "write the job file and submit it (sbatch, or kubectl apply -f)")

    def validate(self) -> None:
        if self.command and self.command[0] == "--":
            self.command = self.command[1:]
        dlbox = self.command[:1] == ["dlbox"] or self.command[1:3] == ["-m", "dlbox"]
        if len(self.command) < 3 or not dlbox:
            raise UserError(f"expected a training command after --, got {' '.join(self.command) or 'nothing'!r}",
                            "e.g. dlbox launch slurm --nodes 2 -- dlbox classify train --data data/digits")  # fmt: skip
        if self.dry_run and self.submit:
            raise UserError("--dry-run and --submit exclude each other", "use one of them")
        for flag in ("--nnodes", "--node-rank", "--master-addr", "--nproc-per-node"):
            if flag in self.command:
                raise UserError(f"{flag} in the training command: the scheduler decides it",
                                f"drop {flag}; use --nodes / --procs-per-node of dlbox launch")  # fmt: skip

    @property
    def processes(self) -> int:
        return self.procs_per_node or max(1, self.gpus_per_node)


@dataclass(kw_only=True)
class SlurmArgs(LaunchArgs):
    time: str = opt("24:00:00", "time limit ([D-]HH:MM:SS); a checkpoint is saved --signal-before seconds earlier")
    partition: str | None = opt(None, "partition (default: the cluster's default)")
    cpus_per_task: int | None = opt(None, "CPU cores per process (default: the cluster's default)", ge=1, le=1024)
    signal_before: int = opt(90, "seconds before the time limit that SLURM sends SIGUSR1 (checkpoint, requeue)",
                             ge=10, le=86400)  # fmt: skip
    mode: Literal["per-task", "per-node"] = opt("per-task", "per-task: srun starts every process (one task "
                                                "per process); per-node: one task per node launches the "
                                                "node's processes")  # fmt: skip
    job_name: str | None = opt(None, "job name (default: dlbox-TASK)")
    sbatch: list[str] = opt([], "one more #SBATCH option, e.g. --sbatch=--account=proj1 (repeatable)",
                            action="append", metavar="OPTION")  # fmt: skip

    def validate(self) -> None:
        super().validate()
        if not re.fullmatch(r"(\d+-)?\d+(:\d{2}){0,2}", self.time):
            raise UserError(f"--time {self.time!r} is not a SLURM time", "use [D-]HH:MM:SS, e.g. 04:00:00 or 1-00:00:00")


@dataclass(kw_only=True)
class K8sArgs(LaunchArgs):
    image: str = opt(REQUIRED, "container image with dlbox installed")
    kind: Literal["pytorchjob", "trainjob"] = opt("pytorchjob", "Kubeflow Training Operator's PyTorchJob (v1) or "
                                                  "Kubeflow Trainer's TrainJob (v2)")  # fmt: skip
    name: str | None = opt(None, "job name, also the run's name (default: dlbox-TASK)")
    namespace: str = opt("default", "namespace")
    runs_pvc: str | None = opt(None, "PersistentVolumeClaim (ReadWriteMany) mounted at the runs directory: "
                               "checkpoints every pod sees, kept across pod restarts")  # fmt: skip
    data_pvc: str | None = opt(None, "PersistentVolumeClaim mounted at --data-path")
    data_path: str = opt("/data", "where the data volume is mounted")
    cpus_per_node: int | None = opt(None, "CPU cores requested per pod", ge=1, le=1024)
    memory: str | None = opt(None, "memory requested per pod, e.g. 32Gi")
    max_restarts: int = opt(3, "restarts of failed pods before the job fails (a checkpointed SIGTERM is retried)",
                            ge=0, le=1000)  # fmt: skip
    runtime: str = opt("torch-distributed", "TrainJob: the ClusterTrainingRuntime to run on")
    min_nodes: int | None = opt(None, "PyTorchJob: fewest pods the job keeps training with (default: --nodes, a "
                                "fixed size); below --nodes the job is elastic (spec.elasticPolicy, c10d "
                                "rendezvous, PET_NNODES=MIN:MAX)", ge=1, le=10000)  # fmt: skip

    def validate(self) -> None:
        super().validate()
        if self.name is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?", self.name):
            raise UserError(f"--name {self.name!r} is not a valid job name",
                            "lower-case letters, digits and '-', at most 40 characters")  # fmt: skip
        if self.memory is not None and not re.fullmatch(r"\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?", self.memory):
            raise UserError(f"--memory {self.memory!r} is not a quantity", "e.g. 32Gi")
        if self.min_nodes is not None and self.min_nodes > self.nodes:
            raise UserError(f"--min-nodes {self.min_nodes} is more than --nodes {self.nodes}",
                            f"use 1 to {self.nodes} (--nodes is the most pods)")  # fmt: skip
        if self.kind == "trainjob" and self.min_nodes is not None and self.min_nodes != self.nodes:
            raise UserError("--min-nodes is for --kind pytorchjob (a TrainJob's elastic policy is its runtime's)",
                            "use --kind pytorchjob, or set mlPolicy.torch.elasticPolicy in the runtime")  # fmt: skip
