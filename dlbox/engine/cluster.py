"""The cluster a training command runs in: a SLURM allocation or a Kubeflow PyTorchJob / TrainJob pod.

``detect()`` reads the scheduler's environment; ``apply(cfg, typed)`` turns it into the engine's launcher
options, so that a plain ``dlbox TASK train ...`` forms the right job without extra flags:

- **one process per task** (``srun`` started every rank: SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID, or a pod
  with one process): RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/PORT are set for this process, which then
  runs as one worker (as under torchrun);
- **one process per node** (one task per node, several local processes: ``--nproc-per-node``, the node's GPUs,
  or PET_NPROC_PER_NODE): ``--nnodes``, ``--node-rank`` and ``--master-addr`` are filled in and this process
  launches the local workers.

Options typed on the command line (or set in a --config file) win over the environment. Inside a cluster the
run directory's name comes from the job (``slurm-<job id>``, the PyTorchJob/TrainJob name) unless ``--name``
says otherwise, so a requeued job or a restarted pod finds its run and resumes from its newest checkpoint.

Also here: the network interface that reaches the master (``--iface``, GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME).
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError

# --- SLURM's compressed host and task lists ----------------------------------------------------------------


def _split_top(text: str) -> list[str]:
    """Split on the commas outside brackets: "a[1-2,5],b" -> ["a[1-2,5]", "b"]."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in {text!r}")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise ValueError(f"unbalanced '[' in {text!r}")
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _expand_range(spec: str) -> list[str]:
    """"01-03,7" -> ["01", "02", "03", "7"]: zero padding as written at the range's start."""
    out: list[str] = []
    for item in spec.split(","):
        item = item.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if not m:
            raise ValueError(f"bad range {item!r}")
        lo, hi = m.group(1), m.group(2)
        if hi is None:
            out.append(lo)
            continue
        if int(hi) < int(lo):
            raise ValueError(f"descending range {item!r}")
        width = len(lo) if lo.startswith("0") or len(lo) == len(hi) else 0
        out.extend(str(n).zfill(width) for n in range(int(lo), int(hi) + 1))
    return out


def expand_nodelist(text: str) -> list[str]:
    """SLURM's host list syntax expanded, as ``scontrol show hostnames`` does:
    ``"node[01-03,7],gpu-a[1-2]"`` -> node01 node02 node03 node7 gpu-a1 gpu-a2; several bracket groups in one
    name ("r[1-2]n[1-2]") multiply."""
    hosts: list[str] = []
    for part in _split_top(text):
        names = [""]
        for literal, spec in re.findall(r"([^\[]*)(?:\[([^\]]*)\])?", part):
            if not literal and not spec:
                continue
            names = [n + literal for n in names]
            if spec:
                names = [n + v for n in names for v in _expand_range(spec)]
        hosts.extend(names)
    return hosts


def expand_tasks_per_node(text: str) -> list[int]:
    """SLURM_TASKS_PER_NODE / SLURM_STEP_TASKS_PER_NODE: "2(x3),1" -> [2, 2, 2, 1]."""
    out: list[int] = []
    for item in text.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", item)
        if not m:
            raise ValueError(f"bad tasks-per-node list {text!r}")
        out.extend([int(m.group(1))] * int(m.group(2) or 1))
    return out


# --- what the scheduler says ---------------------------------------------------------------------------------


@dataclass
class ClusterEnv:
    kind: str  # "SLURM", "PyTorchJob" or "TrainJob"
    nnodes: int
    node_rank: int
    hosts: list[str]  # SLURM's nodes in order ([] where the scheduler does not list them)
    master_addr: str | None
    master_port: int | None
    nproc_per_node: int | None  # processes per node the scheduler asks for (None: not said)
    per_task: dict[str, int] | None  # rank/world_size/local_rank/local_world_size: ranks started by the scheduler
    job_id: str | None
    run_name: str | None  # a run directory name that is the same when the job is requeued or a pod restarts
    restart_count: int = 0
    started_by_srun: bool = False  # inside a job step (srun), not the batch shell
    # An elastic PyTorchJob (elasticPolicy): PET_NNODES="min:max" and a c10d rendezvous at PET_RDZV_ENDPOINT;
    # nnodes is then the most nodes, and the rendezvous (not the environment) ranks the nodes.
    min_nodes: int | None = None
    rdzv_endpoint: str | None = None  # "host:port"
    max_restarts: int | None = None  # PET_MAX_RESTARTS (the policy's maxRestarts)

    @property
    def elastic(self) -> bool:
        return self.rdzv_endpoint is not None

    def describe(self) -> str:
        job = f" job {self.job_id}" if self.job_id else ""
        nodes = f"{self.nnodes} node(s)"
        if self.hosts:
            shown = ",".join(self.hosts[:4]) + (",..." if len(self.hosts) > 4 else "")
            nodes += f" [{shown}]"
        text = f"{self.kind}{job}, {nodes}, this node rank {self.node_rank}"
        if self.elastic:
            text = f"{self.kind}{job}, elastic {self.min_nodes} to {self.nnodes} node(s), c10d rendezvous " \
                   f"at {self.rdzv_endpoint}"
        if self.per_task:
            t = self.per_task
            text += f", one process per task (rank {t['rank']} of {t['world_size']}, local rank {t['local_rank']})"
        if self.restart_count:
            text += f", restart {self.restart_count}"
        return text


def _int(environ: Mapping[str, str], *names: str) -> int | None:
    for n in names:
        v = environ.get(n, "").strip()
        if re.fullmatch(r"\d+", v):
            return int(v)
    return None


def _slurm(environ: Mapping[str, str]) -> ClusterEnv:
    job = environ.get("SLURM_ARRAY_JOB_ID") and f"{environ['SLURM_ARRAY_JOB_ID']}_{environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    job = job or environ.get("SLURM_JOB_ID") or environ.get("SLURM_JOBID")
    in_step = "SLURM_STEP_ID" in environ and "SLURM_PROCID" in environ and environ.get("SLURM_STEP_ID") != "batch"
    nodelist = (environ.get("SLURM_STEP_NODELIST") if in_step else None) or environ.get("SLURM_JOB_NODELIST") \
        or environ.get("SLURM_NODELIST") or ""
    try:
        hosts = expand_nodelist(nodelist) if nodelist else []
    except ValueError as e:
        raise UserError(f"SLURM_NODELIST {nodelist!r} cannot be read: {e}", "report it with the list") from None
    nnodes = (_int(environ, "SLURM_STEP_NUM_NODES") if in_step else None) or _int(environ, "SLURM_NNODES",
                                                                                   "SLURM_JOB_NUM_NODES") or 1
    node_rank = _int(environ, "SLURM_NODEID") or 0
    per_task, nproc = None, None
    if in_step:
        ntasks = _int(environ, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS") or 1
        local = ntasks
        tpn = environ.get("SLURM_STEP_TASKS_PER_NODE") or environ.get("SLURM_TASKS_PER_NODE")
        if tpn:
            counts = expand_tasks_per_node(tpn)
            local = counts[node_rank] if node_rank < len(counts) else counts[-1]
        elif _int(environ, "SLURM_NTASKS_PER_NODE"):
            local = _int(environ, "SLURM_NTASKS_PER_NODE")
        if ntasks > nnodes:  # several tasks on a node: each is a rank (one task per node launches its own)
            nproc = local
            per_task = {"rank": _int(environ, "SLURM_PROCID") or 0, "world_size": ntasks,
                        "local_rank": _int(environ, "SLURM_LOCALID") or 0, "local_world_size": local}  # fmt: skip
    elif environ.get("SLURM_TASKS_PER_NODE"):  # the batch shell: its node's tasks as local processes
        nproc = expand_tasks_per_node(environ["SLURM_TASKS_PER_NODE"])[0]
        nproc = nproc if nproc > 1 else None  # one task: as many processes as GPUs
    master = hosts[0] if hosts else None
    if nnodes == 1:
        master = "127.0.0.1"  # one node: the rendezvous stays on loopback, whatever the host names resolve to
    # A port of the job's own, so that two jobs sharing a node do not meet at the same rendezvous.
    port = _int(environ, "MASTER_PORT") or (20000 + int(re.sub(r"\D", "", job or "0") or 0) % 20000)
    return ClusterEnv(
        kind="SLURM", nnodes=nnodes, node_rank=node_rank, hosts=hosts, master_addr=environ.get("MASTER_ADDR") or master,
        master_port=port, nproc_per_node=nproc, per_task=per_task, job_id=job,
        run_name=f"slurm-{job}" if job else None, restart_count=_int(environ, "SLURM_RESTART_COUNT") or 0,
        started_by_srun=in_step,
    )  # fmt: skip


def _nnodes(text: str, elastic: bool = False) -> tuple[int, int]:
    """PET_NNODES: "2", or "min:max" from an elastic policy -> (min, max). A range needs the elastic
    rendezvous (PET_RDZV_ENDPOINT) the operator sets with it."""
    lo, _, hi = text.strip().partition(":")
    hi = hi or lo
    if not (lo.isdigit() and hi.isdigit()) or not 1 <= int(lo) <= int(hi):
        raise UserError(f"PET_NNODES={text!r} is not a node count or a range MIN:MAX",
                        "check the job's elasticPolicy (1 <= minReplicas <= maxReplicas)")  # fmt: skip
    if int(lo) != int(hi) and not elastic:
        raise UserError(f"PET_NNODES={text!r}: an elastic range of node counts needs a c10d rendezvous, and "
                        "PET_RDZV_ENDPOINT is not set",
                        "give the job an elasticPolicy with rdzvBackend: c10d (dlbox launch k8s --min-nodes), "
                        "or set minReplicas = maxReplicas")  # fmt: skip
    return int(lo), int(hi)


def _elastic_pod(environ: Mapping[str, str]) -> ClusterEnv:
    """A Worker pod of an elastic PyTorchJob (no Master): the operator's elastic.go sets PET_NNODES="min:max",
    PET_RDZV_ENDPOINT="<job>-worker-0:<port>", PET_RDZV_BACKEND (c10d) and maybe PET_MAX_RESTARTS."""
    backend = environ.get("PET_RDZV_BACKEND", "c10d").strip() or "c10d"
    if backend != "c10d":
        raise UserError(f"PET_RDZV_BACKEND={backend!r}: dlbox's elastic jobs use the c10d rendezvous",
                        "set rdzvBackend: c10d in the job's elasticPolicy")  # fmt: skip
    endpoint = environ["PET_RDZV_ENDPOINT"].strip()
    m = re.fullmatch(r"\[?([^\s\[\]]+?)\]?:(\d{1,5})", endpoint)
    if not m or not 1 <= int(m.group(2)) <= 65535:
        raise UserError(f"PET_RDZV_ENDPOINT={endpoint!r} is not host:port",
                        "the operator sets <job>-worker-0:<port>; check the job's elasticPolicy")  # fmt: skip
    lo, hi = _nnodes(environ["PET_NNODES"], elastic=True)
    nm = re.fullmatch(r"(.+)-worker-0(\..*)?", m.group(1))
    name = nm.group(1) if nm else None
    nproc_text = environ.get("PET_NPROC_PER_NODE", "").strip()
    return ClusterEnv(
        kind="PyTorchJob", nnodes=hi, node_rank=0, hosts=[], master_addr=m.group(1), master_port=int(m.group(2)),
        nproc_per_node=int(nproc_text) if nproc_text.isdigit() else None, per_task=None, job_id=name,
        run_name=name, min_nodes=lo, rdzv_endpoint=f"{m.group(1)}:{m.group(2)}",
        max_restarts=_int(environ, "PET_MAX_RESTARTS"),
    )  # fmt: skip


def _pods(environ: Mapping[str, str]) -> ClusterEnv:
    pytorchjob = "MASTER_ADDR" in environ  # the PyTorchJob operator sets MASTER_* and PET_*, TrainJob's PET_* only
    master = environ.get("PET_MASTER_ADDR") or environ.get("MASTER_ADDR")
    port = _int(environ, "PET_MASTER_PORT", "MASTER_PORT")
    nnodes = _nnodes(environ["PET_NNODES"])[1]
    node_rank = _int(environ, "PET_NODE_RANK", "RANK") or 0
    nproc_text = environ.get("PET_NPROC_PER_NODE", "").strip()
    nproc = int(nproc_text) if nproc_text.isdigit() else None  # "auto", "gpu", "cpu": decided below
    # The job's name from the master's: "<job>-master-0" (PyTorchJob), "<job>-node-0-0.<job>" (TrainJob).
    name = None
    if master:
        m = re.fullmatch(r"(.+)-master-0(\..*)?", master) or re.fullmatch(r"(.+)-node-0-0(\..*)?", master)
        name = m.group(1) if m else None
    return ClusterEnv(
        kind="PyTorchJob" if pytorchjob else "TrainJob", nnodes=nnodes, node_rank=node_rank, hosts=[],
        master_addr=master, master_port=port, nproc_per_node=nproc, per_task=None, job_id=name, run_name=name,
    )  # fmt: skip


def detect(environ: Mapping[str, str] | None = None) -> ClusterEnv | None:
    """The cluster this process runs in, or None (a laptop, a workstation, a process torchrun started)."""
    environ = os.environ if environ is None else environ
    if "LOCAL_RANK" in environ and "WORLD_SIZE" in environ:
        return None  # a worker of torchrun (or of dlbox's own launcher): its launcher decided everything
    if "PET_NNODES" in environ and (environ.get("PET_MASTER_ADDR") or environ.get("MASTER_ADDR")):
        return _pods(environ)
    if "PET_NNODES" in environ and environ.get("PET_RDZV_ENDPOINT"):
        return _elastic_pod(environ)
    if environ.get("SLURM_JOB_ID") or environ.get("SLURM_JOBID"):
        return _slurm(environ)
    return None


# --- from the environment to the engine's options --------------------------------------------------------


def _gpus_here() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:
        return 0


def explicit_fields(cfg: Any) -> set[str]:
    """The options of ``cfg`` the user set: typed on the command line or in a --config file (as the CLI notes
    them), or else (a config built in Python) every field whose value is not its default."""
    if getattr(cfg, "_typed", None) is not None:
        return set(cfg._typed)
    typed = set()
    for f in dataclasses.fields(cfg):
        if f.default is not dataclasses.MISSING and getattr(cfg, f.name) != f.default:
            typed.add(f.name)
    return typed


def _run_to_resume(cfg: Any, name: str | None) -> str | None:
    """The run directory of this job's earlier attempt (requeued job, restarted pod) when it holds a checkpoint:
    RUNS_DIR/<any task>/<name>/checkpoints/last.pt (a job's name is its own), or None."""
    if not name:
        return None
    found = sorted({p.parent.parent for f in ("last.pt", "last.prev.pt")
                    for p in Path(cfg.runs_dir).glob(f"*/{name}/checkpoints/{f}")})  # fmt: skip
    return str(found[0]) if len(found) == 1 else None


def apply(cfg: Any, env: ClusterEnv | None = None, say=None) -> Any:
    """``cfg`` with the launcher options the cluster implies (fields the user set are kept), and for one process
    per task the torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*) set in ``os.environ``. The node's
    local rank 0 says what it found (``say``, default: a line on stderr)."""
    env = detect() if env is None else env
    if env is None:
        return cfg
    from dlbox.base.progress import log

    say = say or log
    typed = explicit_fields(cfg)
    changes: dict[str, Any] = {}
    nproc = cfg.nproc_per_node if "nproc_per_node" in typed else env.nproc_per_node
    if nproc is None:  # not said: one process per GPU of this node
        nproc = max(1, _gpus_here())
    if env.per_task is not None and "nproc_per_node" in typed and cfg.nproc_per_node > 1:
        raise UserError(f"--nproc-per-node {cfg.nproc_per_node} with {env.per_task['world_size']} SLURM tasks: "
                        "srun already started one process per task",
                        "drop --nproc-per-node, or run one task per node (srun --ntasks-per-node=1)")  # fmt: skip
    for key, value in (("nnodes", env.nnodes), ("node_rank", env.node_rank), ("master_addr", env.master_addr),
                       ("master_port", env.master_port)):  # fmt: skip
        if key not in typed and value is not None:
            changes[key] = value
    master_addr = changes.get("master_addr", cfg.master_addr)
    master_port = changes.get("master_port", cfg.master_port)
    if env.elastic and "max_restarts" not in typed and env.max_restarts is not None:
        changes["max_restarts"] = env.max_restarts
    per_task = env.per_task
    if per_task is None and nproc == 1 and changes.get("nnodes", cfg.nnodes) > 1 and not env.elastic:
        # One process on each node: it is a worker itself (no local launcher to start).
        nn, nr = changes.get("nnodes", cfg.nnodes), changes.get("node_rank", cfg.node_rank)
        per_task = {"rank": nr, "world_size": nn, "local_rank": 0, "local_world_size": 1}
    if per_task is None:
        changes["nproc_per_node"] = nproc
    if env.kind == "SLURM" and env.nnodes > 1 and not env.started_by_srun:
        raise UserError(f"SLURM job {env.job_id} has {env.nnodes} nodes, but this process was not started by srun "
                        "(it would train on the first node only)",
                        "start it with: srun --ntasks-per-node=1 dlbox ... (or one task per GPU: srun dlbox ...)")  # fmt: skip
    if "name" not in typed and "resume" not in typed and env.run_name:
        changes["name"] = env.run_name
    name = changes.get("name", cfg.name)
    if "resume" not in typed and (found := _run_to_resume(cfg, name)):
        changes["resume"] = found
    new = dataclasses.replace(cfg, **changes) if changes else cfg
    if hasattr(cfg, "_typed"):
        new._typed = cfg._typed
    if env.elastic and "nnodes" not in typed and "master_addr" not in typed:
        # torch's elastic launch: min_nodes..max_nodes, c10d rendezvous at the operator's endpoint, the job's
        # name as rendezvous id (see distributed._torchrun_argv). Typed --nnodes/--master-addr: the static way.
        min_nodes = env.min_nodes if env.min_nodes is not None else new.nnodes
        object.__setattr__(new, "_elastic", {"min_nodes": min(min_nodes, new.nnodes),
                                             "rdzv_endpoint": f"{new.master_addr}:{new.master_port}",
                                             "rdzv_id": env.job_id or "dlbox"})  # fmt: skip
    if per_task is not None:
        os.environ.update({"RANK": str(per_task["rank"]), "WORLD_SIZE": str(per_task["world_size"]),
                           "LOCAL_RANK": str(per_task["local_rank"]),
                           "LOCAL_WORLD_SIZE": str(per_task["local_world_size"]),
                           "MASTER_ADDR": str(master_addr), "MASTER_PORT": str(master_port)})  # fmt: skip
    if (per_task or {}).get("local_rank", 0) == 0:
        say(f"cluster: {env.describe()}")
        mode = "one process per task" if per_task else f"{new.nproc_per_node} process(es) on this node"
        what = f"rendezvous {master_addr}:{master_port}, {mode}" if new.nnodes > 1 or per_task else mode
        if getattr(new, "_elastic", None):
            what = f"elastic rendezvous (c10d) {master_addr}:{master_port}, " \
                   f"{new._elastic['min_nodes']} to {new.nnodes} node(s), {mode}"
        if "resume" in changes:
            what += f"; resuming {changes['resume']}"
        say(f"cluster: {what}")
    return new


# --- network interfaces ------------------------------------------------------------------------------------


def interfaces() -> dict[str, str]:
    """{interface name: its IPv4 address} for the interfaces that have one (Linux)."""
    import fcntl
    import struct

    out: dict[str, str] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))  # SIOCGIFADDR
            except OSError:
                continue
            out[name] = socket.inet_ntoa(packed[20:24])
    return out


def route_to(master_addr: str, master_port: int) -> tuple[str, str | None]:
    """(this node's address, its interface) on the way to the master: the kernel's route choice, read from a
    UDP socket connected there (nothing is sent)."""
    try:
        target = socket.gethostbyname(master_addr)
    except OSError as e:
        raise UserError(f"the master's address {master_addr!r} does not resolve ({e.strerror or e})",
                        "check --master-addr (or the first host of the job)") from None  # fmt: skip
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((target, master_port))
        except OSError as e:
            raise UserError(f"no route to the master {master_addr} ({target}): {e.strerror or e}",
                            "check --master-addr, and --iface on machines with several networks") from None  # fmt: skip
        local = s.getsockname()[0]
    name = next((n for n, a in interfaces().items() if a == local), None)
    if name is None and local.startswith("127."):
        name = "lo"
    return local, name


def choose_interface(iface: str | None, master_addr: str, master_port: int) -> tuple[str | None, str | None]:
    """The interface (and this node's address) for the rendezvous and the collectives: ``--iface``, else
    GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME from the environment, else the one that reaches the master. Sets
    GLOO_SOCKET_IFNAME and NCCL_SOCKET_IFNAME where they are not set, so gloo does not bind to the address of
    the host name (often 127.0.0.1) and NCCL does not pick a docker bridge."""
    have = interfaces()
    if iface:
        if iface not in have:
            raise UserError(f"--iface {iface!r} is not an interface with an IPv4 address here",
                            f"use one of: {', '.join(sorted(have)) or 'none found'}")  # fmt: skip
        os.environ["GLOO_SOCKET_IFNAME"] = iface
        os.environ.setdefault("NCCL_SOCKET_IFNAME", iface)
        return iface, have[iface]
    named = os.environ.get("GLOO_SOCKET_IFNAME") or os.environ.get("NCCL_SOCKET_IFNAME")
    if named:
        first = named.split(",")[0].lstrip("=^")
        return named, have.get(first)
    addr, name = route_to(master_addr, master_port)
    if name:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", name)
        os.environ.setdefault("NCCL_SOCKET_IFNAME", name)
    return name, addr
