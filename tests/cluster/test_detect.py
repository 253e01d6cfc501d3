"""Cluster detection from the scheduler's own variables (as SLURM and the Kubeflow operators set them), in
this process: the host-list parser, one process per task or per node, explicit options winning, the first line
that names the environment, the run a requeued job continues, the interface toward the master."""

from __future__ import annotations

import os

import pytest

from dlbox.base.errors import UserError
from dlbox.engine import cluster
from dlbox.env.config import IntegrityConfig

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def clean_env(monkeypatch):
    """apply() sets the torchrun variables for one process per task: put them back afterwards."""
    for k in TORCHRUN_VARS:
        monkeypatch.setenv(k, "")  # notes the variable's state (absent too) so that it is restored after the test
        monkeypatch.delenv(k)
    return monkeypatch


@pytest.mark.parametrize("text,hosts", [
    ("node[01-03,7],gpu-a[1-2]", ["node01", "node02", "node03", "node7", "gpu-a1", "gpu-a2"]),
    ("node1", ["node1"]),
    ("a,b-1,c[9-11]", ["a", "b-1", "c9", "c10", "c11"]),
    ("r[1-2]n[08-10]", ["r1n08", "r1n09", "r1n10", "r2n08", "r2n09", "r2n10"]),
    ("gpu[098-101]", ["gpu098", "gpu099", "gpu100", "gpu101"]),
    ("x[5],y[0-1].ib", ["x5", "y0.ib", "y1.ib"]),
])  # fmt: skip
def test_nodelists_expand_as_scontrol_does(text, hosts):
    assert cluster.expand_nodelist(text) == hosts


@pytest.mark.parametrize("bad", ["node[1-", "node1-3]", "node[3-1]", "node[a-b]"])
def test_a_nodelist_that_cannot_be_read_is_an_error(bad):
    with pytest.raises(ValueError):
        cluster.expand_nodelist(bad)


def test_tasks_per_node_lists_expand():
    assert cluster.expand_tasks_per_node("2(x3),1") == [2, 2, 2, 1]
    assert cluster.expand_tasks_per_node("4") == [4]


SRUN_TASK = {  # task 3 of `srun -N 2 --ntasks-per-node 2` in job 4242 (SLURM 22.05's variables)
    "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "node[01-02]", "SLURM_NNODES": "2", "SLURM_STEP_ID": "0",
    "SLURM_STEP_NODELIST": "node[01-02]", "SLURM_STEP_NUM_NODES": "2", "SLURM_STEP_NUM_TASKS": "4",
    "SLURM_STEP_TASKS_PER_NODE": "2(x2)", "SLURM_NTASKS": "4", "SLURM_PROCID": "3", "SLURM_LOCALID": "1",
    "SLURM_NODEID": "1", "SLURM_TASKS_PER_NODE": "2(x2)",
}  # fmt: skip


def test_srun_tasks_become_ranks(clean_env):
    env = cluster.detect(SRUN_TASK)
    assert env.kind == "SLURM" and env.hosts == ["node01", "node02"] and env.master_addr == "node01"
    assert env.per_task == {"rank": 3, "world_size": 4, "local_rank": 1, "local_world_size": 2}
    said: list[str] = []
    cfg = cluster.apply(IntegrityConfig(), env, say=said.append)
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"]) == ("3", "4", "1")
    assert os.environ["MASTER_ADDR"] == "node01" and os.environ["MASTER_PORT"] == str(cfg.master_port)
    assert cfg.name == "slurm-4242" and cfg.nnodes == 2 and cfg.node_rank == 1
    assert said == []  # local rank 1: the node's local rank 0 says it


def test_the_first_line_names_the_environment(clean_env):
    said: list[str] = []
    cluster.apply(IntegrityConfig(), cluster.detect({**SRUN_TASK, "SLURM_PROCID": "2", "SLURM_LOCALID": "0"}),
                  say=said.append)  # fmt: skip
    assert said[0].startswith("cluster: SLURM job 4242, 2 node(s) [node01,node02], this node rank 1, one process "
                              "per task (rank 2 of 4, local rank 0)"), said  # fmt: skip


def test_one_task_per_node_launches_the_node_processes(clean_env):
    env = {**SRUN_TASK, "SLURM_STEP_NUM_TASKS": "2", "SLURM_NTASKS": "2", "SLURM_STEP_TASKS_PER_NODE": "1(x2)",
           "SLURM_PROCID": "1", "SLURM_LOCALID": "0"}  # fmt: skip
    found = cluster.detect(env)
    assert found.per_task is None
    cfg = cluster.apply(IntegrityConfig(nproc_per_node=4), found, say=lambda s: None)
    assert (cfg.nnodes, cfg.node_rank, cfg.nproc_per_node, cfg.master_addr) == (2, 1, 4, "node01")
    assert "RANK" not in os.environ  # this process launches the node's 4 workers
    # one process per node (no GPUs here): the task is the node's only worker, rank = node rank
    cluster.apply(IntegrityConfig(), found, say=lambda s: None)
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"]) == ("1", "2", "0")


def test_tasks_that_are_ranks_refuse_more_processes_each(clean_env):
    with pytest.raises(UserError, match="srun already started one process per task"):
        cluster.apply(IntegrityConfig(nproc_per_node=4), cluster.detect(SRUN_TASK), say=lambda s: None)


def test_a_one_node_batch_shell_runs_its_tasks_as_local_processes(clean_env):
    batch = {"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "node01", "SLURM_NNODES": "1", "SLURM_TASKS_PER_NODE": "3",
             "SLURM_NTASKS": "3", "SLURM_PROCID": "0"}  # fmt: skip
    cfg = cluster.apply(IntegrityConfig(), cluster.detect(batch), say=lambda s: None)
    assert (cfg.nproc_per_node, cfg.nnodes, cfg.master_addr, cfg.name) == (3, 1, "127.0.0.1", "slurm-7")
    assert "RANK" not in os.environ


def test_explicit_options_win_over_the_environment(clean_env):
    from dlbox.cli import build_parser
    from dlbox.cliutil import config_from_args

    args = build_parser().parse_args(["env", "test", "--master-port", "1234", "--name", "mine", "--nnodes", "2"])
    cfg = config_from_args(IntegrityConfig, args)
    assert cfg._typed >= {"master_port", "name", "nnodes"}
    out = cluster.apply(cfg, cluster.detect(SRUN_TASK), say=lambda s: None)
    assert out.master_port == 1234 and out.name == "mine" and os.environ["MASTER_PORT"] == "1234"
    assert out.master_addr == "node01"  # not typed: from the job
    # a config built in Python: fields that differ from their defaults count as set
    out = cluster.apply(IntegrityConfig(master_addr="10.0.0.9"), cluster.detect(SRUN_TASK), say=lambda s: None)
    assert out.master_addr == "10.0.0.9" and out.master_port != 29500


def test_a_multi_node_batch_shell_without_srun_is_refused(clean_env):
    batch = {k: v for k, v in SRUN_TASK.items() if not k.startswith("SLURM_STEP")}
    with pytest.raises(UserError, match="not started by srun"):
        cluster.apply(IntegrityConfig(), cluster.detect(batch), say=lambda s: None)


def test_a_requeued_job_resumes_its_run(clean_env, tmp_path):
    ckpt = tmp_path / "env-test" / "slurm-4242" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "last.pt").write_bytes(b"x")
    env = cluster.detect({**SRUN_TASK, "SLURM_RESTART_COUNT": "1"})
    said: list[str] = []
    cfg = cluster.apply(IntegrityConfig(runs_dir=str(tmp_path)), env, say=said.append)
    assert cfg.resume == str(ckpt.parent) and env.restart_count == 1
    cfg = cluster.apply(IntegrityConfig(runs_dir=str(tmp_path / "other")), env, say=said.append)
    assert cfg.resume is None  # nothing to continue: a new run named after the job


PYTORCHJOB_WORKER = {  # pod worker-0 of PyTorchJob "digits" (2 replicas, nprocPerNode "2")
    "PYTHONUNBUFFERED": "1", "MASTER_PORT": "23456", "PET_MASTER_PORT": "23456", "MASTER_ADDR": "digits-master-0",
    "PET_MASTER_ADDR": "digits-master-0", "WORLD_SIZE": "4", "RANK": "1", "PET_NODE_RANK": "1",
    "PET_NPROC_PER_NODE": "2", "PET_NNODES": "2",
}  # fmt: skip


def test_a_pytorchjob_pod_launches_its_processes(clean_env):
    env = cluster.detect(PYTORCHJOB_WORKER)
    assert env.kind == "PyTorchJob" and env.run_name == "digits"
    cfg = cluster.apply(IntegrityConfig(), env, say=lambda s: None)
    assert (cfg.nnodes, cfg.node_rank, cfg.nproc_per_node) == (2, 1, 2)
    assert (cfg.master_addr, cfg.master_port, cfg.name) == ("digits-master-0", 23456, "digits")
    assert "RANK" not in os.environ  # the operator's RANK/WORLD_SIZE are not taken for a worker's


def test_a_trainjob_pod_with_one_process_is_a_worker(clean_env):
    env = cluster.detect({"PET_NNODES": "3", "PET_NPROC_PER_NODE": "1", "PET_NODE_RANK": "2",
                          "PET_MASTER_ADDR": "ft-node-0-0.ft", "PET_MASTER_PORT": "29400"})  # fmt: skip
    assert env.kind == "TrainJob" and env.run_name == "ft"
    cluster.apply(IntegrityConfig(), env, say=lambda s: None)
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["MASTER_ADDR"]) == ("2", "3", "ft-node-0-0.ft")


def test_an_elastic_range_without_a_rendezvous_endpoint_is_refused():
    with pytest.raises(UserError, match="elastic range .* PET_RDZV_ENDPOINT is not set"):
        cluster.detect({"PET_NNODES": "1:4", "MASTER_ADDR": "j-master-0"})


ELASTIC_WORKER = {  # pod worker-1 of an elastic PyTorchJob "digits" (elastic.go: Worker replicas only, no Master)
    "PYTHONUNBUFFERED": "1", "PET_RDZV_ENDPOINT": "digits-worker-0:23456", "PET_RDZV_BACKEND": "c10d",
    "PET_NNODES": "2:4", "PET_MAX_RESTARTS": "5", "PET_NPROC_PER_NODE": "2",
}  # fmt: skip


def test_an_elastic_pytorchjob_pod_forms_an_elastic_job(clean_env):
    env = cluster.detect(ELASTIC_WORKER)
    assert env.kind == "PyTorchJob" and env.elastic and env.run_name == "digits"
    assert (env.min_nodes, env.nnodes, env.rdzv_endpoint, env.max_restarts) == (2, 4, "digits-worker-0:23456", 5)
    said: list[str] = []
    cfg = cluster.apply(IntegrityConfig(), env, say=said.append)
    assert (cfg.nnodes, cfg.nproc_per_node, cfg.max_restarts, cfg.name) == (4, 2, 5, "digits")
    assert cfg._elastic == {"min_nodes": 2, "rdzv_endpoint": "digits-worker-0:23456", "rdzv_id": "digits"}
    assert "RANK" not in os.environ  # the rendezvous ranks the pods, not the environment
    assert "elastic 2 to 4 node(s)" in said[0] and "elastic rendezvous (c10d) digits-worker-0:23456" in said[1]
    from dlbox.engine.distributed import _torchrun_argv

    argv = _torchrun_argv(cfg)
    assert argv[argv.index("--nnodes") + 1] == "2:4" and "--node-rank" not in argv
    assert argv[argv.index("--rdzv-endpoint") + 1] == "digits-worker-0:23456"
    assert argv[argv.index("--rdzv-backend") + 1] == "c10d" and argv[argv.index("--rdzv-id") + 1] == "digits"
    # Options typed by the user win: --max-restarts kept; --nnodes/--master-addr typed: the static way.
    typed = IntegrityConfig(max_restarts=1)
    assert cluster.apply(typed, env, say=lambda s: None).max_restarts == 1
    static = IntegrityConfig(nnodes=2, master_addr="10.0.0.1")
    static = cluster.apply(static, env, say=lambda s: None)
    assert getattr(static, "_elastic", None) is None and "--node-rank" in _torchrun_argv(static)


def test_the_static_pod_path_builds_the_same_launch_as_before(clean_env):
    from dlbox.engine.distributed import _torchrun_argv

    cfg = cluster.apply(IntegrityConfig(), cluster.detect(PYTORCHJOB_WORKER), say=lambda s: None)
    assert getattr(cfg, "_elastic", None) is None
    argv = _torchrun_argv(cfg)
    assert [argv[argv.index(k) + 1] for k in ("--nnodes", "--node-rank", "--master-addr", "--master-port")] == \
        ["2", "1", "digits-master-0", "23456"]


@pytest.mark.parametrize("environ,said", [
    ({"PET_NNODES": "4:2"}, "not a node count or a range"),
    ({"PET_NNODES": "0:2"}, "not a node count or a range"),
    ({"PET_NNODES": "1:x"}, "not a node count or a range"),
    ({"PET_NNODES": "1:2", "PET_RDZV_ENDPOINT": "worker-0"}, "is not host:port"),
    ({"PET_NNODES": "1:2", "PET_RDZV_ENDPOINT": "w-0:99999"}, "is not host:port"),
    ({"PET_NNODES": "1:2", "PET_RDZV_BACKEND": "etcd"}, "use the c10d rendezvous"),
])  # fmt: skip
def test_a_bad_elastic_environment_is_one_line(environ, said):
    with pytest.raises(UserError, match=said):
        cluster.detect({"PET_RDZV_ENDPOINT": "j-worker-0:23456", **environ})


def test_the_tests_leave_no_torchrun_variables_behind():
    assert not [k for k in (*TORCHRUN_VARS, "GLOO_SOCKET_IFNAME") if k in os.environ]


def test_outside_a_cluster_or_under_torchrun_nothing_is_detected():
    assert cluster.detect({"HOME": "/root"}) is None
    assert cluster.detect({**SRUN_TASK, "LOCAL_RANK": "0", "WORLD_SIZE": "4"}) is None


def test_the_interface_toward_the_master(monkeypatch):
    for k in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):
        monkeypatch.setenv(k, "")
        monkeypatch.delenv(k)
    assert cluster.route_to("127.0.0.1", 29500) == ("127.0.0.1", "lo")
    with pytest.raises(UserError, match="--iface 'nosuch0' is not an interface") as e:
        cluster.choose_interface("nosuch0", "127.0.0.1", 29500)
    assert "lo" in e.value.hint
    assert cluster.choose_interface("lo", "127.0.0.1", 29500) == ("lo", "127.0.0.1")
    assert os.environ["GLOO_SOCKET_IFNAME"] == "lo" == os.environ["NCCL_SOCKET_IFNAME"]
    with pytest.raises(UserError, match="does not resolve"):
        cluster.route_to("no-such-host.invalid", 29500)
