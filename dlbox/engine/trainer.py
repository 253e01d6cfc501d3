"""The training loop every task uses: epochs, AMP, DDP, evaluation, checkpoints, resume, metrics.

A task describes *what* to train (model, data, loss, metrics) by subclassing ``dlbox.engine.task.Task`` (its
docstring gives the order in which ``fit`` calls the hooks); ``fit`` does the rest. Reads top to bottom: helpers,
set-up (numerics, run directory, loaders, resume), the step policy that decides save/stop/evaluate after each step,
the loop (``_Run``: one epoch, the end of an epoch, the end of the run).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from dlbox import __version__
from dlbox.base.errors import UserError
from dlbox.base.fileio import WriteError
from dlbox.base.progress import bar, log
from dlbox.config import save_yaml, to_dict
from dlbox.engine import checkpoint, distributed, tracking
from dlbox.engine.batches import add_sums, average, evaluate, floats, to_device
from dlbox.engine.config import EngineConfig
from dlbox.engine.device import (
    autocast,
    effective_precision,
    grad_scaler,
    loader_workers,
    set_deterministic,
    set_threads,
)
from dlbox.engine.distributed import DistContext
from dlbox.engine.metrics import MetricsLogger
from dlbox.engine.samplers import BucketBatchSampler, ResumableSampler, ShardSampler
from dlbox.engine.seed import rng_state, seed_everything, set_rng_state
from dlbox.engine.signals import GracefulStop, Interrupted
from dlbox.engine.task import Task

__all__ = ["Diverged", "FitResult", "Task", "evaluate", "fit", "to_device", "unwrap"]


class Diverged(UserError):
    """The training loss (or the weights) became NaN or infinite: the run stops, nothing diverged is saved."""

    exit_code = 1


@dataclass
class FitResult:
    run_dir: str
    epochs: int
    best: dict[str, Any]
    last: dict[str, Any]
    seconds: float
    images_per_sec: float
    world_size: int
    weights_digest: str
    identical_weights: bool | None = None  # all ranks ended with the same weights (None: one process)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best_record(self) -> dict[str, Any]:
        """Every metric of the best epoch (its line of metrics.jsonl), e.g. val/top5 where top1 was best."""
        from dlbox.engine.metrics import record_at

        return record_at(self.run_dir, self.best.get("epoch"))


def state_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for key, t in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(t.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def new_run_dir(cfg: EngineConfig, task_name: str) -> Path:
    """runs/<task>/<name>; a taken name gets a -2, -3, ... suffix rather than mixing two runs."""
    base = Path(cfg.runs_dir) / task_name
    name = cfg.name or datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = base / name, 2
    while path.exists():
        path, n = base / f"{name}-{n}", n + 1
    path.mkdir(parents=True)
    return path


def _write_best(run_dir: Path, best: dict[str, Any]) -> None:
    """RUN/best.json: the best checkpoint's metric, value, epoch and whole record (a tracker's artifact, and what
    `export --register` tags a model version with)."""
    import json

    from dlbox.base.fileio import atomic_write_text
    from dlbox.engine.metrics import record_at

    doc = {**best, "record": record_at(run_dir, best.get("epoch"))}
    try:
        atomic_write_text(run_dir / "best.json", json.dumps(doc, indent=2, default=str) + "\n")
    except (OSError, WriteError) as e:  # a summary: never what fails a finished run
        log(f"warning: {run_dir / 'best.json'} not written: {e}")


def _floats(sums: dict[str, Any]) -> dict[str, float]:
    """The epoch's sums as Python floats: its one host read of them (tests/engine/test_gpu.py guards around it)."""
    return floats(sums)


def _better(value: float, best: float | None, mode: str) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value > best if mode == "max" else value < best


def fit(task: Task, cfg: EngineConfig, extra_state: dict[str, Any] | None = None) -> FitResult | None:
    """Train ``task`` under ``cfg``. Returns the result on rank 0 (None on other ranks).

    Raises ``Interrupted`` after saving ``last.pt`` when SIGINT/SIGTERM arrives.
    """
    ctx = distributed.setup(cfg.device, cfg.dist_timeout)
    try:
        result = _fit(task, cfg, ctx, extra_state or {})
    except BaseException:
        distributed.teardown(clean=False)
        raise
    distributed.teardown(clean=True)
    return result


def _restart_checkpoint(cfg: EngineConfig, ctx: DistContext) -> str | None:
    """After elastic launch restarted the worker group: the newest checkpoint of this job's run, so the new
    group continues it in the same run directory (rank 0 decides, every rank follows)."""
    if distributed.restart_count() == 0:
        return None
    found = None
    if ctx.is_main:
        run_dir = distributed.noted_run_dir()
        if run_dir is not None:
            last = run_dir / "checkpoints" / "last.pt"
            prev = checkpoint.previous_of(last)  # a kill between the two renames of a save leaves only this one
            found = str(last if last.is_file() else prev if prev.is_file() else run_dir)
    return distributed.broadcast_object(found, ctx)


def _save(state: dict[str, Any], ckpt_dir: Path, ctx: DistContext, best: bool = False) -> None:
    """Rank 0 writes last.pt (the one it replaces kept as last.prev.pt) and maybe best.pt; a failed write
    (disk full, read-only) stops every rank with the same one-line error, the previous last.pt intact.
    Every rank calls it (``state`` came from a collective: the RNG states of all ranks)."""
    error = None
    if ctx.is_main:
        try:
            checkpoint.save(state, ckpt_dir / "last.pt", keep_previous=True)
            if best:
                checkpoint.copy(ckpt_dir / "last.pt", ckpt_dir / "best.pt")
        except WriteError as e:
            error = (e.message, e.hint)
    error = distributed.broadcast_object(error, ctx)
    if error is not None:
        raise WriteError(*error)


# --- set-up ------------------------------------------------------------------------------------------------------
def _numerics(cfg: EngineConfig, ctx: DistContext) -> EngineConfig:
    """Threads, determinism, the seed (the same on every rank: DDP also broadcasts rank 0's initial weights), and
    the precision the device really has (saved so: the run's config says what it ran)."""
    set_threads(cfg.threads, ctx.local_world_size)
    set_deterministic(cfg.deterministic)
    seed_everything(cfg.seed)
    precision = effective_precision(cfg.precision, ctx.device)
    if precision != cfg.precision:
        if ctx.is_main:
            log(f"{cfg.precision} is not native on {torch.cuda.get_device_name(ctx.device)}: {precision} with loss scaling")
        cfg = dataclasses.replace(cfg, precision=precision)
    return cfg


def _open_run(task: Task, cfg: EngineConfig, ctx: DistContext) -> tuple[Path, dict[str, Any] | None, str | None]:
    """(run directory, the checkpoint resumed from or None, what an elastic restart resumes or None)."""
    resumed: dict[str, Any] | None = None
    restart_from = _restart_checkpoint(cfg, ctx)
    if restart_from is not None and Path(restart_from).is_dir():
        run_dir = restart_from  # restarted before the first checkpoint: start again, in the same run directory
    elif restart_from is not None or cfg.resume:
        ckpt_path = checkpoint.resolve(restart_from or cfg.resume)
        resumed = checkpoint.load(ckpt_path)
        run_dir = checkpoint.run_dir_of(ckpt_path)
    else:
        run_dir = distributed.broadcast_object(new_run_dir(cfg, task.name) if ctx.is_main else None, ctx)
    run_dir = Path(run_dir)
    if ctx.is_main:
        distributed.note_run_dir(run_dir)
    return run_dir, resumed, restart_from


@dataclass
class _Loaders:
    train: DataLoader
    val: DataLoader | None
    sampler: ResumableSampler | BucketBatchSampler  # start(epoch, skip_batches), batches_per_epoch()
    generator: torch.Generator  # re-seeded per epoch: creating the iterator must not draw from the global RNG


def _loaders(task: Task, cfg: EngineConfig, ctx: DistContext) -> _Loaders:
    train_set, val_set = task.datasets()
    loader_gen = torch.Generator()
    common = dict(num_workers=loader_workers(cfg, ctx), collate_fn=task.collate_fn,
                  pin_memory=ctx.device.type == "cuda", persistent_workers=False)  # fmt: skip
    lengths = task.sample_lengths(train_set)
    if lengths is not None:  # speech, text: batches of similar length waste less on padding
        sampler = BucketBatchSampler(lengths, cfg.batch_size, ctx, seed=cfg.seed)
        train_loader = DataLoader(train_set, batch_sampler=sampler, generator=loader_gen, **common)
    else:
        # A last batch of one sample (BatchNorm cannot train on it) is left out by the sampler.
        sampler = ResumableSampler(train_set, ctx, cfg.batch_size, shuffle=True, seed=cfg.seed)
        train_loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, generator=loader_gen,
                                  drop_last=False, **common)  # fmt: skip
    val_loader = None
    if val_set is not None:
        # Its own generator too: a validation that one run does and another does not (--max-steps stop,
        # --eval-every) must not shift the global RNG that dropout and augmentation draw from. Every sample.
        val_loader = DataLoader(val_set, batch_size=cfg.batch_size, sampler=ShardSampler(len(val_set), ctx),
                                generator=torch.Generator().manual_seed(cfg.seed), **common)  # fmt: skip
    return _Loaders(train_loader, val_loader, sampler, loader_gen)


# --- the step policy -----------------------------------------------------------------------------------------------
@dataclass
class StepDecision:
    stop: bool = False  # a signal arrived (on any rank): save and raise Interrupted
    save: bool = False  # a mid-epoch checkpoint (--save-every, --save-every-minutes)
    evaluate: bool = False  # a mid-epoch validation (--eval-every)
    reached: bool = False  # --max-steps reached: this is the run's last step
    diverged: bool = False  # a non-finite loss was seen (on any rank) since the run started


class StepPolicy:
    """After each training step: stop, save, evaluate, or go on. Step-count decisions need no agreement (every
    rank counts the same steps); a signal, a timed save and divergence are agreed over the ranks in one
    collective, on CUDA every ``agree_every``-th step only (each one waits for the device)."""

    def __init__(self, cfg: EngineConfig, ctx: DistContext):
        self.cfg, self.ctx = cfg, ctx
        self.agree_every = 8 if ctx.device.type == "cuda" else 1
        self.t_saved = time.monotonic()

    def saved(self) -> None:
        self.t_saved = time.monotonic()

    def after_step(self, global_step: int, last_step: bool, stop_requested: bool,
                   first_bad: torch.Tensor) -> StepDecision:  # fmt: skip
        cfg, ctx = self.cfg, self.ctx
        timed = cfg.save_every_minutes is not None and time.monotonic() - self.t_saved >= 60 * cfg.save_every_minutes
        stop, timed_save, diverged = stop_requested, timed, False
        if ctx.distributed:  # the same steps on every rank; between them no rank acts alone
            stop = timed_save = False
            if global_step % self.agree_every == 0 or last_step:
                stop, timed_save, diverged = distributed.any_ranks(
                    [stop_requested, timed and ctx.is_main, int(first_bad) >= 0], ctx)  # fmt: skip
        reached = cfg.max_steps is not None and global_step >= cfg.max_steps
        ends = last_step or reached  # the epoch's end saves and evaluates anyway
        counted = cfg.save_every is not None and global_step % cfg.save_every == 0
        evaluate = cfg.eval_every is not None and global_step % cfg.eval_every == 0 and not ends
        return StepDecision(stop, (counted or timed_save) and not ends, evaluate, reached, diverged)


# --- the loop ------------------------------------------------------------------------------------------------------
def _fit(task: Task, cfg: EngineConfig, ctx: DistContext, extra_state: dict[str, Any]) -> FitResult | None:
    if not isinstance(task, Task):
        raise TypeError(f"{type(task).__name__} must subclass dlbox.engine.task.Task")
    run = _Run(task, cfg, ctx, extra_state)
    status = "failed"
    try:
        result = run.loop()
        status = "finished"
        return result
    except Interrupted:
        status = "interrupted"
        raise
    except Diverged:
        status = "diverged"
        raise
    finally:
        run.close(status)


class _Run:
    """One training run: set up by ``__init__``, driven by ``loop``; the state that crosses epochs lives here."""

    def __init__(self, task: Task, cfg: EngineConfig, ctx: DistContext, extra_state: dict[str, Any]):
        self.task, self.ctx, self.extra_state = task, ctx, extra_state
        self.cfg = cfg = _numerics(cfg, ctx)
        self.run_dir, resumed, self.restart_from = _open_run(task, cfg, ctx)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.logger: MetricsLogger | None = None
        self.monitor = None

        model = task.build_model().to(ctx.device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.loaders = _loaders(task, cfg, ctx)
        self.optimizer, self.scheduler = task.configure_optimizers(model, self.loaders.sampler.batches_per_epoch())
        self.scaler = grad_scaler(ctx.device, cfg.precision)
        self.start_epoch, self.start_batch, self.global_step = 0, 0, 0
        self.best: dict[str, Any] = {"metric": task.best_metric, "value": None, "epoch": None}
        self.partial: dict[str, float] = {}
        self.resumed = resumed is not None
        if resumed is not None:
            self._restore(resumed)
        if ctx.distributed:
            # Tasks that freeze layers for some epochs ask DDP to look for parameters without gradients.
            self.model = nn.parallel.DistributedDataParallel(
                model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                find_unused_parameters=task.find_unused_parameters,
            )  # fmt: skip
        self.policy = StepPolicy(cfg, ctx)
        # The step whose loss was first NaN or infinite (-1: none), kept on the device: read at save/log points only.
        self.first_bad = torch.full((), -1, dtype=torch.long, device=ctx.device)
        self.images_seen, self.last_metrics = 0, {}
        if ctx.is_main:
            self._start_logging()

    def _restore(self, resumed: dict[str, Any]) -> None:
        ctx = self.ctx
        try:
            self.model.load_state_dict(resumed["model"])
        except RuntimeError as e:
            raise checkpoint.CheckpointError(
                f"checkpoint {self.cfg.resume!r} is for another model ({str(e).splitlines()[1].strip()[:120]})",
                "resume with the same model and task it was trained with",
            ) from None
        self.optimizer.load_state_dict(resumed["optimizer"])
        if self.scheduler is not None and resumed.get("scheduler") is not None:
            self.scheduler.load_state_dict(resumed["scheduler"])
        self.scaler.load_state_dict(resumed["scaler"])
        self.start_epoch, self.start_batch = resumed["epoch"], resumed["batch_in_epoch"]
        self.global_step, self.best = resumed["global_step"], resumed["best"]
        partial = resumed.get("partial", {})
        if isinstance(partial, list):  # one dict of the epoch's partial sums per rank
            partial = partial[ctx.rank] if len(partial) == ctx.world_size else {}
        self.partial = partial
        if resumed.get("task_state") is not None:
            self.task.load_state_dict(resumed["task_state"])
        rngs = resumed["rng"]
        set_rng_state(rngs[ctx.rank] if len(rngs) == ctx.world_size else rngs[0])

    def _start_logging(self) -> None:
        cfg, run_dir = self.cfg, self.run_dir
        save_yaml(to_dict(cfg), run_dir / "config.yaml")
        resume_step = self.global_step if self.resumed else None
        trackers = tracking.Trackers(tracking.build(cfg.tracker))
        trackers.start(run_dir, cfg, resume_step, tracking.flat_params(to_dict(cfg)))
        self.logger = logger = MetricsLogger(run_dir, resume_step=resume_step, trackers=trackers)
        if cfg.monitor_interval > 0:
            from dlbox.engine.monitor import Monitor

            # CPU/RAM (and GPUs through NVML) every few seconds; the lambda reads global_step when a sample is
            # taken, so the system scalars line up with the losses in TensorBoard.
            self.monitor = Monitor(lambda r: logger.log({"step": self.global_step, "kind": "system", **r}),
                                   cfg.monitor_interval, gpus=self.ctx.device.type == "cuda").start()  # fmt: skip
        what = f"resuming {run_dir} at epoch {self.start_epoch + 1}" if self.resumed else f"run {run_dir}"
        if self.restart_from is not None:
            what = f"restart {distributed.restart_count()}: {what}"
        log(f"{self.task.name}: {what} on {self.ctx.device} x{self.ctx.world_size}, {cfg.precision}, "
            f"{cfg.epochs} epochs")  # fmt: skip

    def close(self, status: str) -> None:
        """Stops the monitor, hands the finished run's files to the trackers, closes them (rank 0)."""
        monitor, logger, self.monitor, self.logger = self.monitor, self.logger, None, None
        if monitor is not None:
            monitor.stop()  # its last sample goes through the logger
        if logger is not None:
            if status == "finished":
                _write_best(self.run_dir, self.best)
                for name in ("config.yaml", "metrics.jsonl", "best.json"):
                    if (self.run_dir / name).is_file():
                        logger.trackers.log_artifact(self.run_dir / name)
            logger.close(status)

    # --- checkpoints, validation, divergence ------------------------------------------------------------------------
    def make_state(self, epoch: int, batch_in_epoch: int, sums: dict[str, float]) -> dict[str, Any]:
        ctx = self.ctx
        rngs = distributed.gather_objects(rng_state(), ctx)
        sums = distributed.gather_objects(sums, ctx) if ctx.distributed else sums  # each rank's own sums
        return {
            "dlbox": __version__, "task": self.task.name, "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict(), "epoch": epoch, "batch_in_epoch": batch_in_epoch,
            "global_step": self.global_step, "rng": rngs, "config": to_dict(self.cfg), "best": self.best,
            "partial": sums, "task_state": self.task.state_dict(), **self.extra_state,
        }  # fmt: skip

    def save(self, epoch: int, batch_in_epoch: int, sums: dict[str, float], best: bool = False,
             checked: bool = False) -> None:  # fmt: skip
        if not checked:
            self.check_finite(epoch)  # never a diverged checkpoint: the last one saved stays the last finite one
        _save(self.make_state(epoch, batch_in_epoch, sums), self.ckpt_dir, self.ctx, best=best)
        self.policy.saved()

    def check_finite(self, epoch: int, seen: bool = False) -> None:
        """Raises Diverged (on every rank) when a loss was not finite or a weight is not; ``seen``: a rank already
        saw it (agreed in the step policy)."""
        if not seen:
            floats = [t for t in unwrap(self.model).state_dict().values() if t.is_floating_point()]
            finite = torch.stack([torch.isfinite(t).all() for t in floats]).all() if floats else torch.tensor(True)
            seen = distributed.any_ranks([int(self.first_bad) >= 0 or not bool(finite)], self.ctx)[0]
        if not seen:
            return
        first = int(self.first_bad)
        what = f"the loss was NaN or infinite at step {first}" if first >= 0 else "the weights became NaN or infinite"
        last = self.ckpt_dir / "last.pt"
        kept = f"the last finite checkpoint is {last}" if last.is_file() else "no checkpoint was saved"
        raise Diverged(
            f"training diverged: {what} (epoch {epoch + 1}); stopped at step {self.global_step}, {kept}",
            "lower --lr (or the solver's base_lr), or try gradient clipping / --precision fp32",
        )

    def validate(self, epoch: int) -> dict[str, float]:
        """The task's validation on the evaluation model; {} without a validation set."""
        task, model = self.task, unwrap(self.model)
        task.before_evaluate(model, self.ctx)
        if self.loaders.val is None:
            return {}
        evaluated = task.evaluate(task.eval_model(model), self.loaders.val, self.ctx, self.cfg)
        self.model.train()
        return {f"val/{k}": v for k, v in evaluated.items()}

    # --- the loop ------------------------------------------------------------------------------------------------
    def loop(self) -> FitResult | None:
        cfg, ctx = self.cfg, self.ctx
        t_start = time.perf_counter()
        with GracefulStop() as stop:
            for epoch in range(self.start_epoch, cfg.epochs):
                if cfg.max_steps is not None and self.global_step >= cfg.max_steps:
                    break  # resumed with the --max-steps it stopped at: nothing left to do
                reached = self.train_epoch(epoch, stop)
                if reached:
                    break
        seconds = time.perf_counter() - t_start
        digest = state_digest(unwrap(self.model))
        digests = distributed.gather_objects(digest, ctx)
        if not ctx.is_main:
            return None
        return FitResult(
            run_dir=str(self.run_dir), epochs=cfg.epochs, best=self.best, last=self.last_metrics, seconds=seconds,
            images_per_sec=self.images_seen / max(seconds, 1e-9), world_size=ctx.world_size, weights_digest=digest,
            identical_weights=(len(set(digests)) == 1) if ctx.distributed else None,
        )  # fmt: skip

    def train_epoch(self, epoch: int, stop: GracefulStop) -> bool:
        """One epoch (the rest of it when resumed inside it), then its record and checkpoint. True when
        --max-steps was reached."""
        cfg, ctx, task, model = self.cfg, self.ctx, self.task, self.model
        first = self.start_batch if epoch == self.start_epoch else 0
        self.loaders.sampler.start(epoch, skip_batches=first)
        self.loaders.generator.manual_seed(cfg.seed * 100_003 + epoch)
        model.train()
        task.on_epoch_start(unwrap(model), epoch)
        sums: dict[str, Any] = dict(self.partial) if epoch == self.start_epoch else {}
        n_batches = len(self.loaders.train)
        t_epoch, n_epoch = time.perf_counter(), 0
        pbar = bar(n_batches, f"epoch {epoch + 1}/{cfg.epochs}", enabled=ctx.is_main, unit="batch")
        reached, last_step, i = False, True, first - 1  # an epoch with no batches left (resumed at its end) is whole
        for i, batch in enumerate(self.loaders.train, start=first):
            loss, step_sums = self.step(batch)
            add_sums(sums, step_sums)  # tensors stay on the device (no host read per step); read at log time
            n_epoch += int(step_sums["count"])
            if pbar.disable is False:
                if pbar.n % 10 == 0:  # the bar's figures are read from the device every 10th step
                    if not ctx.distributed and int(self.first_bad) >= 0:  # the read waits for the device anyway
                        self.check_finite(epoch, seen=True)
                    rate = n_epoch * ctx.world_size / max(time.perf_counter() - t_epoch, 1e-9)
                    shown = {"loss": f"{float(loss):.4f}"}
                    shown.update({k: f"{float(v) / float(sums['count']):.3f}" for k, v in sums.items()
                                  if k not in ("count", "loss")})  # fmt: skip
                    pbar.set_postfix(**shown, img_s=f"{rate:.0f}", refresh=False)
                pbar.update(1)
            last_step = i + 1 == n_batches + first
            decision = self.policy.after_step(self.global_step, last_step, stop.requested, self.first_bad)
            if decision.diverged:
                pbar.close()
                self.check_finite(epoch, seen=True)
            if decision.stop:
                pbar.close()
                self.save(epoch, i + 1, _floats(sums))
                # every rank exits with the signal one of them got (a requeue/retry code), not SIGINT's
                raise Interrupted(str(self.run_dir), epoch, self.global_step,
                                  distributed.agree_signal(stop.signum, ctx) or 2)  # fmt: skip
            reached = decision.reached
            if decision.save:
                self.save(epoch, i + 1, _floats(sums))
            if decision.evaluate:
                # Between epochs' ends (Caffe's test_interval): the same validation, a record of kind "eval".
                self.check_finite(epoch)
                evaluated = self.validate(epoch)
                if ctx.is_main and evaluated:
                    self.logger.log({"step": self.global_step, "epoch": epoch + 1, "kind": "eval", **evaluated})
                    log(f"step {self.global_step}  " + "  ".join(f"{k} {v:.4g}" for k, v in evaluated.items()))
            if reached:
                break
        pbar.close()
        # Stopped by --max-steps before the epoch's end: its record covers the steps run, and the checkpoint
        # is a mid-epoch one, so a resume with a larger --max-steps continues inside this epoch.
        whole_epoch = not reached or last_step
        self.end_epoch(epoch, sums, n_epoch, time.perf_counter() - t_epoch, whole_epoch, i + 1)
        return reached

    def step(self, batch: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        """One optimiser step; the loss's finiteness is noted on the device (read at save/log points only)."""
        cfg, ctx = self.cfg, self.ctx
        batch = to_device(batch, ctx.device, cfg.channels_last)
        with autocast(ctx.device, cfg.precision):
            loss, step_sums = self.task.train_step(self.model, batch)
        self.first_bad = torch.where(~torch.isfinite(loss.detach()) & (self.first_bad < 0), self.global_step + 1,
                                     self.first_bad)  # fmt: skip
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        self.task.on_step_end(unwrap(self.model))
        self.global_step += 1
        return loss, step_sums

    def end_epoch(self, epoch: int, sums: dict[str, Any], n_epoch: int, epoch_time: float, whole: bool,
                  batch_in_epoch: int) -> None:  # fmt: skip
        """The epoch's record (train averages, validation), best-so-far, checkpoint, log line."""
        cfg, ctx, task = self.cfg, self.ctx, self.task
        train = average(distributed.all_reduce_sums(_floats(sums), ctx))
        self.check_finite(epoch)  # before validation: a diverged state is neither evaluated nor saved
        epoch_images = distributed.all_reduce_sums({"n": n_epoch}, ctx)["n"]
        self.images_seen += epoch_images
        record: dict[str, Any] = {"epoch": epoch + 1, "step": self.global_step}
        record.update({f"train/{k}": v for k, v in train.items()})
        record["lr"] = self.optimizer.param_groups[0]["lr"]
        record["images_per_sec"] = epoch_images / max(epoch_time, 1e-9)
        record.update(self.validate(epoch))
        self.last_metrics = record
        value = record.get(task.best_metric, math.nan)
        # Without validation data the latest weights are the best we know.
        improved = _better(value, self.best["value"], task.best_mode) if task.best_metric in record else True
        if improved:
            self.best = {"metric": task.best_metric, "value": value if task.best_metric in record else None,
                         "epoch": epoch + 1}  # fmt: skip
        if whole:
            self.save(epoch + 1, 0, {}, best=improved, checked=True)
        else:
            self.save(epoch, batch_in_epoch, _floats(sums), best=improved, checked=True)
        if ctx.is_main:
            self.logger.log(record)
            shown = "  ".join(f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float))
            log(f"epoch {epoch + 1}/{cfg.epochs}  {shown}")
