"""`dlbox launch k8s`: a Kubeflow PyTorchJob (training-operator v1) or TrainJob (Trainer v2) manifest for a
training command.

In each pod the operator sets PET_NNODES, PET_NODE_RANK, PET_NPROC_PER_NODE and the master's address
(MASTER_ADDR/PORT for a PyTorchJob, PET_MASTER_ADDR/PORT for a TrainJob); dlbox reads them (see
``dlbox.engine.cluster``). A pod that is evicted gets SIGTERM: the training saves a mid-epoch checkpoint and exits
with 143, which ``restartPolicy: ExitCode`` treats as retryable; the new pod runs the same command with the same
``--name`` on the same runs volume and resumes.

``--min-nodes M`` below ``--nodes`` N makes the PyTorchJob elastic: ``spec.elasticPolicy`` (c10d, minReplicas M,
maxReplicas N) and N Worker pods without a Master; the operator then sets PET_NNODES="M:N" and
PET_RDZV_ENDPOINT=<job>-worker-0:<port> instead of MASTER_*.
"""

from __future__ import annotations

import re
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from dlbox import __version__
from dlbox.launch import common
from dlbox.launch.config import K8sArgs

PORT = 23456  # the PyTorchJob operator's default master port


def _pod_parts(c: K8sArgs, runs: str, container_name: str) -> tuple[dict, list[dict], list[dict], dict]:
    """(resources, volumes, volume mounts, env) of a training pod."""
    limits: dict[str, Any] = {}
    requests: dict[str, Any] = {}
    if c.gpus_per_node:
        limits["nvidia.com/gpu"] = c.gpus_per_node
    if c.cpus_per_node:
        requests["cpu"] = c.cpus_per_node
    if c.memory:
        requests["memory"] = c.memory
        limits["memory"] = c.memory
    resources = {k: v for k, v in (("limits", limits), ("requests", requests)) if v}
    volumes: list[dict] = [{"name": "runs", **({"persistentVolumeClaim": {"claimName": c.runs_pvc}} if c.runs_pvc
                                               else {"emptyDir": {}})}]  # fmt: skip
    mounts: list[dict] = [{"name": "runs", "mountPath": runs}]
    if c.data_pvc:
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": c.data_pvc, "readOnly": True}})
        mounts.append({"name": "data", "mountPath": c.data_path, "readOnly": True})
    volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory"}})  # DataLoader workers share memory here
    mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    env = [{"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "DLBOX_PROGRESS", "value": "0"}]
    return resources, volumes, mounts, {"env": env}


def elastic(c: K8sArgs) -> bool:
    """A PyTorchJob whose size may shrink to --min-nodes (an elasticPolicy), not a fixed one."""
    return c.kind == "pytorchjob" and c.min_nodes is not None and c.min_nodes < c.nodes


def manifest(c: K8sArgs) -> tuple[dict[str, Any], str, str]:
    """(the manifest, the job's name, the runs directory in the pods)."""
    runs = common.runs_dir_of(c, "/runs")
    task = common.task_of(c.command)
    name = c.name or common.option_value(c.command, "--name") or f"dlbox-{task}"
    name = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")[:40] or "dlbox"
    extra = [] if common.option_value(c.command, "--name") else ["--name", name]
    cmd = common.training_command(c, runs, extra)
    resources, volumes, mounts, env = _pod_parts(c, runs, "pytorch")
    meta = {"name": name, "namespace": c.namespace, "labels": {"app.kubernetes.io/created-by": "dlbox"}}
    if c.kind == "pytorchjob":
        container = {"name": "pytorch", "image": c.image, "command": cmd, **env,
                     "ports": [{"name": "pytorchjob-port", "containerPort": PORT}],
                     **({"resources": resources} if resources else {}), "volumeMounts": mounts}  # fmt: skip
        template = {"spec": {"terminationGracePeriodSeconds": 120, "containers": [container], "volumes": volumes}}
        spec: dict[str, Any] = {"nprocPerNode": str(c.processes),
                                "runPolicy": {"backoffLimit": c.max_restarts, "cleanPodPolicy": "None"}}  # fmt: skip
        if elastic(c):
            # Elastic: Worker pods only (no Master); the operator sets PET_NNODES="min:max", PET_RDZV_BACKEND
            # and PET_RDZV_ENDPOINT=<job>-worker-0:<pytorchjob-port>, and torch's c10d rendezvous ranks the pods.
            spec["elasticPolicy"] = {"rdzvBackend": "c10d", "minReplicas": c.min_nodes, "maxReplicas": c.nodes,
                                     "maxRestarts": c.max_restarts}  # fmt: skip
            replicas: dict[str, Any] = {"Worker": {"replicas": c.nodes, "restartPolicy": "ExitCode",
                                                   "template": template}}  # fmt: skip
        else:
            replicas = {"Master": {"replicas": 1, "restartPolicy": "ExitCode", "template": template}}
            if c.nodes > 1:
                replicas["Worker"] = {"replicas": c.nodes - 1, "restartPolicy": "ExitCode", "template": template}
        spec["pytorchReplicaSpecs"] = replicas
        doc = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": meta, "spec": spec}
    else:
        trainer: dict[str, Any] = {"image": c.image, "command": cmd, "numNodes": c.nodes,
                                   "numProcPerNode": c.processes, **env}  # fmt: skip
        if resources:
            trainer["resourcesPerNode"] = resources
        doc = {
            "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": meta,
            "spec": {"runtimeRef": {"name": c.runtime}, "trainer": trainer,
                     "podSpecOverrides": [{"targetJobs": [{"name": "node"}], "volumes": volumes,
                                           "containers": [{"name": "node", "volumeMounts": mounts}]}]},
        }  # fmt: skip
    return doc, name, runs


# Comments put above the first line of a key (matched with its indentation).
COMMENTS = [
    (r"elasticPolicy:", "elastic: the job starts with maxReplicas pods and keeps training while minReplicas "
                        "remain; each change of pods is a new c10d rendezvous (at worker-0), the workers resume "
                        "from the newest checkpoint; maxRestarts: restarts of the worker group (torchrun's "
                        "--max-restarts)"),
    (r"nprocPerNode:", "training processes in each pod (PET_NPROC_PER_NODE): one per GPU"),
    (r"backoffLimit:", "pod failures (each a restart from the newest checkpoint) before the job is failed"),
    (r"restartPolicy: ExitCode", "exit codes 128-255 are retried: 143 is a pod that saved a checkpoint on "
                                 "SIGTERM (eviction), and its new pod resumes; 1-127 are errors that fail the job"),
    (r"terminationGracePeriodSeconds:", "time from SIGTERM to SIGKILL: room to finish a step and write the checkpoint"),
    (r"command:", "the same command as on a laptop; dlbox reads the operator's PET_*/MASTER_* variables, and "
                  "--name makes a restarted pod find its run"),
    (r"- name: runs", "checkpoints and metrics: a ReadWriteMany volume every pod shares and that outlives them"),
    (r"emptyDir: \{\}", "NOT kept across pod restarts: give --runs-pvc for a resume after eviction"),
    (r"- name: data", "the training data, read-only"),
    (r"- name: dshm", "shared memory for DataLoader workers (the container default is 64 MB)"),
    (r"numProcPerNode:", "training processes in each node's pod (PET_NPROC_PER_NODE): one per GPU"),
    (r"numNodes:", "pods, one per node (PET_NNODES); node 0's is the master (PET_MASTER_ADDR)"),
    (r"runtimeRef:", "the runtime's JobSet decides restarts (failurePolicy): give it maxRestarts > 0 so an "
                     "evicted node's pod is restarted and resumes"),
]


def render_yaml(doc: dict[str, Any], c: K8sArgs, name: str) -> str:
    class NoAliases(yaml.SafeDumper):  # the Worker's pod template written out, not as *id001
        def ignore_aliases(self, data):
            return True

    body = yaml.dump(doc, Dumper=NoAliases, sort_keys=False, default_flow_style=False, width=110)
    out = [
        f"# Written by `dlbox launch k8s` (dlbox {__version__}, {datetime.now():%Y-%m-%d %H:%M}). "
        "Submit: kubectl apply -f FILE",
        f"# {doc['kind']} {name}: {c.nodes} pod(s)"
        + (f" (elastic, at least {c.min_nodes})" if elastic(c) else "") + f" x {c.processes} process(es)"
        + (f", {c.gpus_per_node} GPU(s) each." if c.gpus_per_node else ", CPU training."),
        f"# Follow it: kubectl -n {c.namespace} logs -f -l training.kubeflow.org/job-name={name}"
        if doc["kind"] == "PyTorchJob" else f"# Follow it: kubectl -n {c.namespace} get trainjob {name}",
    ]
    seen: set[str] = set()
    for line in body.splitlines():
        for pattern, comment in COMMENTS:
            m = re.match(r"(\s*)" + pattern, line)
            key = pattern + (m.group(1) if m else "")
            if m and key not in seen:
                seen.add(key)
                out += [f"{m.group(1)}# {part}" for part in textwrap.wrap(comment, 104 - len(m.group(1)))]
        out.append(line)
    return "\n".join(out) + "\n"


def launch_k8s(c: K8sArgs) -> dict[str, Any]:
    doc, name, runs = manifest(c)
    text = render_yaml(doc, c, name)
    out = common.write_or_show(c, text, Path("runs" if runs.startswith("/") else runs) / "launch" / f"{name}.yaml")
    result: dict[str, Any] = {"kind": doc["kind"], "file": str(out) if out else None, "job_name": name,
                              "namespace": c.namespace, "manifest": doc, "yaml": text, "submitted": False}  # fmt: skip
    if c.submit:
        said = common.submit(["kubectl", "apply", "-f", str(out)], "manifest",
                             f"the manifest is in {out}; check kubectl's context and that the Kubeflow "
                             f"{'Training Operator' if doc['kind'] == 'PyTorchJob' else 'Trainer'} is installed")  # fmt: skip
        result.update(submitted=True, kubectl=said)
    return result


def render(r: dict[str, Any]) -> str:
    if r["file"] is None:
        return r["yaml"].rstrip()
    if r["submitted"]:
        return f"wrote {r['file']}\n{r['kubectl']}"
    return f"wrote {r['file']}\nsubmit with: kubectl apply -f {r['file']}  (or run dlbox launch k8s again with --submit)"
