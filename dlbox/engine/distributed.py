"""Distributed data parallel through torch's own launcher (torch.distributed.run / elastic launch).

A train command with ``--nproc-per-node N`` (or ``--nnodes M``) starts its worker processes through
elastic launch, exactly as ``torchrun`` would; a command started by ``torchrun`` directly finds the
launcher's environment (RANK, WORLD_SIZE, LOCAL_RANK, ...) and runs as one worker. gloo on CPU, nccl on GPU.

Fault tolerance is elastic launch's: ``--max-restarts N`` restarts the whole worker group when a worker
dies, and the restarted workers find the run they belong to through a small job file (``DLBOX_JOB_FILE``,
written by global rank 0) and resume from its newest checkpoint. Without a restart budget the launcher turns
elastic's failure report into one line: which rank died and how, and the newest checkpoint to resume from.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import os
import signal
import tempfile
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from dlbox.base.errors import UserError
from dlbox.engine.config import EngineConfig
from dlbox.engine.device import physical_cores, resolve_device


@dataclass
class DistContext:
    rank: int
    local_rank: int
    world_size: int
    local_world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device_spec: str, timeout_s: float | None = None) -> DistContext:
    """Join the process group when started by the launcher; otherwise a single-process context.

    ``timeout_s``: how long a collective waits for a peer (one that hangs rather than dies)."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    device = resolve_device(device_spec, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        timeout = timedelta(seconds=timeout_s) if timeout_s else None
        try:
            dist.init_process_group(backend=backend, timeout=timeout,
                                    device_id=device if device.type == "cuda" else None)  # fmt: skip
        except (dist.DistError, RuntimeError, TimeoutError) as e:
            if not isinstance(e, (dist.DistNetworkError, dist.DistStoreError, TimeoutError)) and \
                    not _is_rendezvous_failure(e):
                raise  # e.g. an NCCL error: not about reaching the master
            raise rendezvous_error(e, os.environ.get("MASTER_ADDR", "?"), os.environ.get("MASTER_PORT", "?"),
                                   timeout_s) from None  # fmt: skip
    return DistContext(rank, local_rank, world, local_world, device)


def rendezvous_error(e: BaseException, addr: str, port: str | int, timeout_s: float | None) -> UserError:
    """A rendezvous that could not be reached (or formed) as one line naming the address and port tried."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
    within = f" within {timeout_s:g} s (--dist-timeout)" if timeout_s else ""
    return UserError(f"cannot reach the rendezvous at {addr}:{port}{within}: {first}",
                     "check that the rank-0 node is running with the same --master-addr/--master-port and "
                     "--nnodes, that the port is open between the nodes, and --iface on machines with several "
                     "networks")  # fmt: skip


def teardown(clean: bool = True) -> None:
    """Leave the process group so that no rank can crash at exit after a run that succeeded.

    The abort seen at exit (one rank killed by SIGABRT, "terminate called without an active exception",
    after every epoch had finished) comes from gloo objects that outlive destroy_process_group: DDP's reducer
    sits in a reference cycle, so only the garbage collector frees it, and when that happens during
    interpreter shutdown, the gloo work and process group it still holds are destroyed while their threads
    need the GIL of a dying interpreter. So: a barrier first (every rank has left its last collective, none
    exits while a peer still talks to it), then collect the cycles while the interpreter is whole, then
    destroy the group. After a failure (``clean=False``) the peers may be gone or inside another collective:
    no barrier, just let go."""
    if not dist.is_initialized():
        return
    if clean:
        try:
            dist.barrier()
        except Exception:  # a peer that failed at the very end: nothing left to wait for
            pass
    gc.collect()
    dist.destroy_process_group()
    gc.collect()


def all_reduce_sums(sums: dict[str, float | torch.Tensor], ctx: DistContext) -> dict[str, float]:
    """Sum each value over all ranks (float64 so counts stay exact)."""
    keys = sorted(sums)
    if ctx.distributed:  # a rank with no samples has no keys; agree on the union so the collective matches
        keys = sorted({k for ks in gather_objects(keys, ctx) for k in ks})
    if not keys:
        return {}
    dev = ctx.device if ctx.device.type == "cuda" else torch.device("cpu")
    t = torch.tensor([float(sums.get(k, 0.0)) for k in keys], dtype=torch.float64, device=dev)
    if ctx.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return dict(zip(keys, t.tolist(), strict=True))


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True when the flag is set on any rank (so all ranks stop at the same step)."""
    return any_ranks([flag], ctx)[0]


def any_ranks(flags: list[bool], ctx: DistContext) -> list[bool]:
    """Each flag OR-ed over all ranks, in one collective (so every rank takes the same branch)."""
    if not ctx.distributed:
        return list(flags)
    dev = ctx.device if ctx.device.type == "cuda" else torch.device("cpu")
    t = torch.tensor([1 if f else 0 for f in flags], device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def agree_signal(signum: int | None, ctx: DistContext) -> int | None:
    """The stop signal one of the ranks received (the highest number), on every rank: a job stopped because
    one process got SLURM's SIGUSR1 or an eviction's SIGTERM exits with that code everywhere."""
    if not ctx.distributed:
        return signum
    dev = ctx.device if ctx.device.type == "cuda" else torch.device("cpu")
    t = torch.tensor([signum or 0], device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item()) or None


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


CLUSTER = "DLBOX_CLUSTER"  # env var: the cluster kind prepare() found (SLURM, PyTorchJob, TrainJob)
JOB_FILE = "DLBOX_JOB_FILE"  # env var: where global rank 0 notes the run directory of this job


def restart_count() -> int:
    """How often elastic launch has restarted this worker group (0 on the first attempt)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def note_run_dir(run_dir: str | Path) -> None:
    """Global rank 0: tell a restarted group (and the launcher's failure report) which run this job is."""
    path = os.environ.get(JOB_FILE)
    if path:
        from dlbox.base.fileio import atomic_write_text

        atomic_write_text(path, json.dumps({"run_dir": str(Path(run_dir).resolve())}))


def noted_run_dir(path: str | None = None) -> Path | None:
    path = path or os.environ.get(JOB_FILE)
    try:
        return Path(json.loads(Path(path).read_text())["run_dir"]) if path else None
    except (OSError, ValueError, KeyError):
        return None


def _torchrun_argv(cfg: EngineConfig, local_addr: str | None = None) -> list[str]:
    argv = ["--nproc-per-node", str(cfg.nproc_per_node), "--max-restarts", str(cfg.max_restarts),
            "--monitor-interval", "0.5"]  # fmt: skip
    elastic = getattr(cfg, "_elastic", None)  # an elastic PyTorchJob's pod (see cluster.apply)
    if cfg.nnodes == 1:
        # torchrun --standalone: a private rendezvous on a free loopback port.
        argv += ["--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0", "--rdzv-id", str(uuid.uuid4())]
    elif elastic:
        # torchrun --nnodes MIN:MAX: the c10d rendezvous ranks the nodes that join (no --node-rank); it waits up
        # to join_timeout for MIN nodes, then last_call_timeout for more, up to MAX.
        argv += [
            "--nnodes", f"{elastic['min_nodes']}:{cfg.nnodes}", "--rdzv-backend", "c10d",
            "--rdzv-endpoint", elastic["rdzv_endpoint"], "--rdzv-id", elastic["rdzv_id"],
            "--rdzv-conf", f"join_timeout={max(1, math.ceil(cfg.dist_timeout))}",
        ]  # fmt: skip
        if local_addr:
            argv += ["--local-addr", local_addr]
    else:
        argv += [
            "--nnodes", str(cfg.nnodes), "--node-rank", str(cfg.node_rank),
            "--master-addr", cfg.master_addr, "--master-port", str(cfg.master_port),
            # the static rendezvous waits this long for the master's store (torch's default: 600 s)
            "--rdzv-conf", f"timeout={max(1, math.ceil(cfg.dist_timeout))}",
        ]  # fmt: skip
        if local_addr:
            argv += ["--local-addr", local_addr]  # this node's address on the way to the master
    return argv


class JobFailed(UserError):
    """A worker died (signal or exit code) and no restart was left; the newest checkpoint can be resumed."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None, run_dir: str | None):
        super().__init__(message, hint)
        self.run_dir = run_dir


class Stopped(UserError):
    """The launcher was signalled (SIGTERM: a pod evicted, a job cancelled); it passed the signal on to its
    workers, which saved a checkpoint. Exits 128 + the signal, the code a scheduler retries."""

    def __init__(self, signum: int, checkpoint: str):
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name}; {checkpoint}",
                         "a restarted job with the same --name (or --resume RUN_DIR) continues it")  # fmt: skip
        self.exit_code = 128 + signum


def _how(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def _newest_checkpoint(run_dir: Path | None) -> str:
    from dlbox.engine import checkpoint

    if run_dir is None:
        return "no checkpoint was written"
    for path in (run_dir / "checkpoints" / "last.pt", checkpoint.previous_of(run_dir / "checkpoints" / "last.pt")):
        if path.is_file():
            try:
                st = checkpoint.load(path)
            except UserError:
                continue
            where = (f"epoch {st['epoch'] + 1} at step {st['global_step']}, mid-epoch" if st["batch_in_epoch"]
                     else f"end of epoch {st['epoch']}, step {st['global_step']}")  # fmt: skip
            return f"newest checkpoint {path} ({where})"
    return f"no checkpoint in {run_dir} yet"


def _error_message(data: Any) -> str:
    """The worker's error text from elastic's error file: {"message": {"message": TEXT, ...}} as torch's
    @record writes it, or {"message": TEXT}."""
    msg = data.get("message", "") if isinstance(data, dict) else ""
    if isinstance(msg, dict):
        msg = msg.get("message", "")
    return str(msg)


def _is_rendezvous_failure(e: Exception) -> bool:
    text = f"{type(e).__name__} {e}".lower()
    return any(w in text for w in ("rendezvous", "timed out", "timeout", "connect", "store"))


def failure_report(e: Exception, cfg: EngineConfig, run_dir: Path | None) -> JobFailed:
    """elastic's ChildFailedError as one line: which rank died and how, and what there is to resume."""
    failures = getattr(e, "failures", None) or {}
    if failures:
        # A signal (the cause) before the exit codes of peers that lost their connection to it.
        rank, f = min(failures.items(), key=lambda kv: (kv[1].exitcode >= 0, kv[1].timestamp, kv[0]))
        who = f"rank {rank} (pid {f.pid}) {_how(f.exitcode)}"
        detail = ""
        msg = _error_message(f.error_file_data) if f.exitcode > 0 else ""
        if msg:
            detail = f" ({msg.strip().splitlines()[-1][:160]})"
        tries = f" after {cfg.max_restarts} restart(s)" if cfg.max_restarts else ""
        if "timed out" in detail.lower():  # this rank is the one that waited, not the one that hung
            who = f"a peer of rank {rank} stopped answering for {cfg.dist_timeout:g} s (--dist-timeout)"
        head = f"distributed run failed{tries}: {who}{detail}"
    elif cfg.nnodes > 1 and _is_rendezvous_failure(e):
        if cfg.node_rank > 0:
            return rendezvous_error(e, cfg.master_addr, cfg.master_port, cfg.dist_timeout)
        return UserError(f"the other {cfg.nnodes - 1} node(s) did not join the rendezvous at {cfg.master_addr}:"
                         f"{cfg.master_port} within {cfg.dist_timeout:g} s (--dist-timeout)",
                         "start every node with the same --nnodes, --master-addr and --master-port; check that "
                         "the port is reachable from them")  # fmt: skip
    else:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        head = f"distributed run failed ({type(e).__name__}: {first[:200]})"
    ckpt = _newest_checkpoint(run_dir)
    if run_dir is not None and "epoch" in ckpt:
        hint = "continue with the same command and --resume RUN_DIR (printed below), or add --max-restarts N"
    else:
        hint = ("see the worker output above; for several nodes check --master-addr/--master-port and that "
                "every node was started with the same --nnodes")  # fmt: skip
    return JobFailed(f"{head}; {ckpt}", hint, str(run_dir) if run_dir is not None and "epoch" in ckpt else None)


def launch(cfg: EngineConfig, fn, *args, local_addr: str | None = None) -> dict[int, Any]:
    """Run ``fn(*args)`` in ``nproc_per_node`` processes on this node; return {global rank: return value}.

    ``fn`` must be importable (module level): the workers are spawned, not forked.
    """
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, parse_args

    # torchrun would set OMP_NUM_THREADS=1 for every worker; share the physical cores instead.
    threads = getattr(cfg, "threads", None) or max(1, physical_cores() // cfg.nproc_per_node)
    job_dir = tempfile.mkdtemp(prefix="dlbox-job-")
    # elastic's per-worker log folders (error files) live in the job's folder, removed at the end: by default
    # each launch would leave a /tmp/torchelastic_* folder behind
    argv = [*_torchrun_argv(cfg, local_addr), "--log-dir", os.path.join(job_dir, "elastic"), "dlbox-worker"]
    launch_cfg, _, _ = config_from_args(parse_args(argv))
    env = {
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads)),
        # elastic shares one TCP store across restart rounds without a per-round key prefix, so a restarted
        # group reads its predecessors' addresses and gloo fails to connect ("Connection refused"). Without
        # sharing, each round's rank 0 hosts a fresh store.
        "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": os.environ.get("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1"),
        # A worker killed by a signal leaves its semaphores to multiprocessing's tracker, which warns about
        # them at exit: noise after the one line that says what happened.
        "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore:resource_tracker:UserWarning"),
        JOB_FILE: os.path.join(job_dir, "job.json"),
    }
    # elastic's own log (a traceback per failed worker, restarts, SIGTERMs) would bury the one line below.
    quiet = [logging.getLogger(n) for n in ("torch.distributed.elastic", "torch.multiprocessing.spawn")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.CRITICAL)
    try:
        with _environ(env):  # the workers inherit these; the caller's process gets its environment back
            return elastic_launch(launch_cfg, entrypoint=fn)(*args)
    except Exception as e:  # ChildFailedError and rendezvous errors carry a long report; keep one line
        sig = getattr(e, "sigval", None)  # elastic's SignalException: this launcher got SIGTERM (an eviction)
        if sig is not None:
            raise Stopped(int(sig), _newest_checkpoint(noted_run_dir(env[JOB_FILE]))) from None
        raise failure_report(e, cfg, noted_run_dir(env[JOB_FILE])) from None
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)
        import shutil

        shutil.rmtree(job_dir, ignore_errors=True)


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker_entry(fn, *args):
    """Runs in each spawned worker: user errors and interruptions come back as values, not tracebacks."""
    from dlbox.engine.signals import Interrupted, catch_early

    if os.environ.get(CLUSTER):
        catch_early()
    try:
        return fn(*args)
    except UserError as e:
        return {"__dlbox_error__": (type(e).__name__, e.message, e.hint)}
    except Interrupted as e:
        return {"__dlbox_interrupted__": (e.run_dir, e.epoch, e.step, e.signum)}


def run(cfg: EngineConfig, fn, *args) -> Any:
    """``fn(*args)`` here, or in the processes ``cfg`` asks for; returns global rank 0's value
    (None on a node that does not hold rank 0)."""
    if not launched_by_torchrun():
        new = prepare(cfg)
        args = tuple(new if a is cfg else a for a in args)  # the worker gets the options the cluster implies
        cfg = new
    if not cfg.launches_processes or launched_by_torchrun():
        return fn(*args)
    from dlbox.base.errors import CheckpointError
    from dlbox.base.fileio import WriteError
    from dlbox.engine.signals import Interrupted

    kinds = {"CheckpointError": CheckpointError, "WriteError": WriteError}
    local_addr = getattr(cfg, "_local_addr", None)
    results = launch(cfg, _worker_entry, fn, *args, local_addr=local_addr)
    for value in results.values():
        if isinstance(value, dict) and "__dlbox_error__" in value:
            kind, message, hint = value["__dlbox_error__"]
            raise kinds.get(kind, UserError)(message, hint)
        if isinstance(value, dict) and "__dlbox_interrupted__" in value:
            raise Interrupted(*value["__dlbox_interrupted__"])
    return results.get(0)


def prepare(cfg: EngineConfig) -> EngineConfig:
    """Before any process is started: the options a cluster implies (SLURM, a PyTorchJob/TrainJob pod; see
    ``dlbox.engine.cluster``; typed options win), the network interface toward the master (--iface,
    GLOO_SOCKET_IFNAME/NCCL_SOCKET_IFNAME, or the one that reaches it), and the stop signals held from now on."""
    from dlbox.engine import cluster, signals

    env = cluster.detect()
    if env is not None:
        cfg = cluster.apply(cfg, env)
        os.environ[CLUSTER] = env.kind  # the workers this process starts hold the stop signals early too
        signals.catch_early()  # a scheduler's SIGUSR1/SIGTERM while starting up still ends in a checkpoint
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.nnodes > 1 or world > 1 and os.environ.get("MASTER_ADDR") not in (None, "127.0.0.1", "localhost"):
        addr = os.environ.get("MASTER_ADDR") if launched_by_torchrun() else cfg.master_addr
        port = int(os.environ.get("MASTER_PORT") or cfg.master_port)
        name, local = cluster.choose_interface(getattr(cfg, "iface", None), addr, port)
        _set_local_addr(cfg, local)
        if env is None or int(os.environ.get("LOCAL_RANK", "0")) == 0:
            from dlbox.base.progress import log

            log(f"network: interface {name or '?'} ({local or '?'}) toward the master {addr}:{port}")
    elif getattr(cfg, "iface", None):
        cluster.choose_interface(cfg.iface, cfg.master_addr, cfg.master_port)
    if env is not None and cfg.launches_processes and not launched_by_torchrun():
        signals.ignore_in_launcher()  # the local workers take SLURM's SIGUSR1 and report the checkpoint
    return cfg


def _set_local_addr(cfg: EngineConfig, local: str | None) -> None:
    try:
        object.__setattr__(cfg, "_local_addr", local)
    except (AttributeError, TypeError):  # a config with __slots__
        pass
