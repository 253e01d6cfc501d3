"""Kubernetes without a cluster: the manifests of `dlbox launch k8s` validated against the Kubeflow CRDs'
OpenAPI schemas (vendored in schemas/, pruned by schemas/prune.py), and a 2-pod PyTorchJob run here with the
exact environment the training operator gives each pod (one process per "pod"): SIGTERM to one pod mid-run
(an eviction) saves a checkpoint and exits 143, which restartPolicy ExitCode retries; the restarted pods
resume and end with the uninterrupted run's weights."""

from __future__ import annotations

import copy
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.cluster.conftest import JOB, TASK_DIR, checkpoint_position, env, wait_for, weights_digest
from tests.conftest import ROOT, all_exit_0, run_main

SCHEMAS = Path(__file__).parent / "schemas"
VARIANTS = [
    ["--nodes", "2", "--gpus-per-node", "8", "--runs-pvc", "runs", "--data-pvc", "datasets", "--cpus-per-node", "32",
     "--memory", "200Gi"],
    ["--nodes", "1"],
    ["--nodes", "4", "--procs-per-node", "2", "--iface", "eth0", "--namespace", "ml", "--name", "digits-ddp"],
]  # fmt: skip


def _manifest(capsys, kind: str, *options: str, command=("dlbox", "classify", "train", "--data", "/data/d")):
    res = run_main(capsys, "launch", "k8s", "--kind", kind, "--image", "registry.example/dlbox:1", *options,
                   "--dry-run", "--", *command)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return yaml.safe_load(res.stdout), res.stdout


@pytest.mark.parametrize("kind,schema", [("pytorchjob", "pytorchjob.v1.json"), ("trainjob", "trainjob.v1alpha1.json")])
def test_manifests_match_the_kubeflow_crd_schema(capsys, kind, schema):
    validator = jsonschema.Draft7Validator(json.loads((SCHEMAS / schema).read_text()))
    for options in VARIANTS:
        doc, text = _manifest(capsys, kind, *options)
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == [], errors
        assert text.count("\n# ") + text.count("  # ") >= 5  # commented for a reader
        nodes = int(options[options.index("--nodes") + 1])
        if kind == "pytorchjob":
            reps = doc["spec"]["pytorchReplicaSpecs"]
            assert reps["Master"]["replicas"] + reps.get("Worker", {}).get("replicas", 0) == nodes
            assert {r["restartPolicy"] for r in reps.values()} == {"ExitCode"}
            container = reps["Master"]["template"]["spec"]["containers"][0]
        else:
            assert doc["spec"]["trainer"]["numNodes"] == nodes
            container = doc["spec"]["trainer"]
        assert container["command"][-2] == "--name" or "--name" in container["command"]
    # The schema can fail: a misplaced field and a wrong type are refused.
    doc, _ = _manifest(capsys, kind, "--nodes", "2")
    broken = copy.deepcopy(doc)
    broken["spec"]["replicas"] = 2
    assert not validator.is_valid(broken)
    broken = copy.deepcopy(doc)
    if kind == "pytorchjob":
        broken["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "one"
    else:
        broken["spec"]["trainer"]["numNodes"] = "two"
    assert not validator.is_valid(broken)


def test_an_elastic_pytorchjob_manifest_matches_the_schema(capsys):
    validator = jsonschema.Draft7Validator(json.loads((SCHEMAS / "pytorchjob.v1.json").read_text()))
    doc, text = _manifest(capsys, "pytorchjob", "--nodes", "4", "--min-nodes", "2", "--max-restarts", "5")
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == [], errors
    assert doc["spec"]["elasticPolicy"] == {"rdzvBackend": "c10d", "minReplicas": 2, "maxReplicas": 4,
                                            "maxRestarts": 5}  # fmt: skip
    # Worker pods only: the operator's rendezvous endpoint is <job>-worker-0 at the Worker's pytorchjob-port.
    assert list(doc["spec"]["pytorchReplicaSpecs"]) == ["Worker"]
    worker = doc["spec"]["pytorchReplicaSpecs"]["Worker"]
    assert worker["replicas"] == 4
    assert worker["template"]["spec"]["containers"][0]["ports"][0]["name"] == "pytorchjob-port"
    assert "# elastic:" in text and "elastic, at least 2" in text
    broken = copy.deepcopy(doc)
    broken["spec"]["elasticPolicy"]["minReplica"] = 2  # misspelt
    assert not validator.is_valid(broken)
    broken = copy.deepcopy(doc)
    broken["spec"]["elasticPolicy"]["maxReplicas"] = "4"
    assert not validator.is_valid(broken)
    # The default (--min-nodes = --nodes) is a fixed size: no policy, a Master as before.
    doc, _ = _manifest(capsys, "pytorchjob", "--nodes", "2", "--min-nodes", "2")
    assert "elasticPolicy" not in doc["spec"] and "Master" in doc["spec"]["pytorchReplicaSpecs"]
    for options, said in ((("--nodes", "2", "--min-nodes", "3"), "--min-nodes 3 is more than --nodes 2"),
                          (("--kind", "trainjob", "--nodes", "2", "--min-nodes", "1"), "for --kind pytorchjob")):
        res = run_main(capsys, "launch", "k8s", "--image", "i:1", *options, "--dry-run", "--", "dlbox", "classify",
                       "train", "--data", "d")  # fmt: skip
        assert res.returncode == 2 and said in res.stderr, res.stderr


def _pod_env(rank: int, nodes: int, port: int) -> dict[str, str]:
    """What the PyTorchJob operator sets in pod ``rank`` (pkg/controller.v1/pytorch/envvar.go, master.go); the
    master's address is its pod's host name there, 127.0.0.1 here."""
    return {"PYTHONUNBUFFERED": "1", "MASTER_PORT": str(port), "PET_MASTER_PORT": str(port),
            "MASTER_ADDR": "127.0.0.1", "PET_MASTER_ADDR": "127.0.0.1", "WORLD_SIZE": str(nodes),
            "RANK": str(rank), "PET_NODE_RANK": str(rank), "PET_NPROC_PER_NODE": "1", "PET_NNODES": str(nodes)}  # fmt: skip


def _start_pods(command: list[str], port: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-m", "dlbox", *command[1:]], env=env(**_pod_env(rank, 2, port)),
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for rank in (0, 1)]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_pod_evicted_mid_run_is_restarted_and_resumes_without_loss(capsys, reference, tmp_path):
    runs = tmp_path / "runs"
    doc, _ = _manifest(capsys, "pytorchjob", "--nodes", "2", "--runs-dir", str(runs), "--name", "digits",
                       command=("dlbox", *JOB))  # fmt: skip
    command = doc["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["command"]
    assert command == doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["command"]
    port = _free_port()
    pods = _start_pods(command, port)
    try:
        # both pods are in the job once rank 0 wrote the run's config (a collective came first)
        wait_for((runs, f"{TASK_DIR}/digits/config.yaml"), pods, timeout=180)
        pods[1].send_signal(signal.SIGTERM)  # the kubelet evicting pod 1
        outs = [p.communicate(timeout=180) for p in pods]
    finally:
        for p in pods:
            p.kill()
    # Every pod stops at the same step after one checkpoint, with the code ExitCode retries (128 + SIGTERM).
    assert [p.returncode for p in pods] == [143, 143], [o[1][-2000:] for o in outs]
    assert "interrupted by SIGTERM" in outs[0][1]
    assert outs[0][1].splitlines()[0].startswith("cluster: PyTorchJob"), outs[0][1][:500]
    run_dir = runs / TASK_DIR / "digits"
    epoch, batch = checkpoint_position(run_dir)
    assert (epoch, batch) < (2, 0)  # saved before the end
    # The operator restarts the pods with the same command and environment.
    pods = _start_pods(command, port)
    outs = all_exit_0(pods, 2)
    assert f"resuming {run_dir}" in outs[0][1], outs[0][1][-2000:]
    (row,) = json.loads(outs[0][0])["results"]
    assert Path(row["run_dir"]) == run_dir and [p.name for p in (runs / TASK_DIR).iterdir()] == ["digits"]
    assert weights_digest(run_dir) == reference["digest"]


def test_an_elastic_pytorchjob_trains_with_its_pods(capsys, reference, tmp_path):
    """Two Worker pods of an elastic PyTorchJob (minReplicas 1, maxReplicas 2), each with the environment the
    operator's elastic.go gives it: no master, a c10d rendezvous at worker-0 (127.0.0.1 here) that ranks them."""
    runs = tmp_path / "runs"
    doc, _ = _manifest(capsys, "pytorchjob", "--nodes", "2", "--min-nodes", "1", "--runs-dir", str(runs),
                       "--name", "digits", command=("dlbox", *JOB))  # fmt: skip
    worker = doc["spec"]["pytorchReplicaSpecs"]["Worker"]
    command = worker["template"]["spec"]["containers"][0]["command"]
    policy = doc["spec"]["elasticPolicy"]
    pod_env = {"PYTHONUNBUFFERED": "1", "PET_RDZV_ENDPOINT": f"127.0.0.1:{_free_port()}",
               "PET_RDZV_BACKEND": policy["rdzvBackend"], "PET_NNODES": f"{policy['minReplicas']}:{policy['maxReplicas']}",
               "PET_MAX_RESTARTS": str(policy["maxRestarts"]), "PET_NPROC_PER_NODE": doc["spec"]["nprocPerNode"]}  # fmt: skip
    pods = [subprocess.Popen([sys.executable, "-m", "dlbox", *command[1:]], env=env(**pod_env), cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(worker["replicas"])]  # fmt: skip
    outs = all_exit_0(pods, 2)
    assert all("cluster: PyTorchJob, elastic 1 to 2 node(s)" in o[1] for o in outs), outs[0][1][:500]
    # The pod the rendezvous made rank 0 reports the run (either may be: ranks go by order of joining).
    rows = [row for o in outs if o[0].strip() for row in json.loads(o[0]).get("results") or []]
    assert [Path(r["run_dir"]) for r in rows] == [runs / TASK_DIR / "digits"], rows
    run_dir = runs / TASK_DIR / "digits"
    assert weights_digest(run_dir) == reference["digest"]  # both pods trained: the 2-process run's weights

