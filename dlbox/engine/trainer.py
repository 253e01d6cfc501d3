"""The training loop every task uses: epochs, AMP, DDP, evaluation, checkpoints, resume, metrics.

A task describes *what* to train (model, data, loss, metrics) through the small ``Task`` protocol; ``fit``
does the rest. Reads top to bottom: set-up, run directory, resume, loop, final report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dlbox import __version__
from dlbox.config import save_yaml, to_dict
from dlbox.engine import checkpoint, distributed
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
from dlbox.engine.fileio import WriteError
from dlbox.engine.metrics import MetricsLogger
from dlbox.engine.progress import bar, log
from dlbox.engine.samplers import BucketBatchSampler, ResumableSampler, ShardSampler
from dlbox.engine.seed import rng_state, seed_everything, set_rng_state
from dlbox.engine.signals import GracefulStop, Interrupted


class Task(Protocol):
    """What a task gives the engine. Sums are per-batch totals; the engine adds them up over batches and ranks,
    then divides every key by ``count`` (so ``{"count": n, "loss": loss * n, "accuracy": correct}``)."""

    name: str  # run directories go to runs/<name>/
    best_metric: str  # e.g. "val/accuracy"; higher is better unless best_mode == "min"

    def build_model(self) -> nn.Module: ...
    def datasets(self) -> tuple[Dataset, Dataset | None]: ...
    def configure_optimizers(self, model: nn.Module, steps_per_epoch: int) -> tuple[torch.optim.Optimizer, Any]: ...
    def train_step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...
    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]: ...

    # Optional: ``collate_fn`` (for the loaders), ``best_mode = "min"``, and
    # ``evaluate(model, loader, ctx, cfg) -> dict`` replacing eval_step for metrics that are not averages
    # (it runs on every rank; use distributed.gather_objects / all_reduce_sums to combine ranks).
    # Hooks, each optional: ``on_epoch_start(model, epoch)`` (after model.train(): freeze layers, keep frozen
    # BatchNorm in eval mode), ``on_step_end(model)`` (EMA update), ``before_evaluate(model, ctx)``
    # (BatchNorm recalibration), ``eval_model(model) -> nn.Module`` (evaluate EMA weights instead), and
    # ``state_dict()`` / ``load_state_dict(state)`` for task state saved in checkpoints (EMA, class names).


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


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move tensors (also inside tuples, lists and dicts) to the device; images to channels_last on request."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device, channels_last) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    return batch


def new_run_dir(cfg: EngineConfig, task_name: str) -> Path:
    """runs/<task>/<name>; a taken name gets a -2, -3, ... suffix rather than mixing two runs."""
    base = Path(cfg.runs_dir) / task_name
    name = cfg.name or datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = base / name, 2
    while path.exists():
        path, n = base / f"{name}-{n}", n + 1
    path.mkdir(parents=True)
    return path


def _close(monitor, logger) -> None:
    if monitor is not None:
        monitor.stop()  # its last sample goes through the logger
    if logger is not None:
        logger.close()


def _floats(sums: dict[str, Any]) -> dict[str, float]:
    """Sums as Python floats (one host read for all of them)."""
    return {k: float(v) for k, v in sums.items()}


def _average(sums: dict[str, float]) -> dict[str, float]:
    n = sums.get("count", 0.0)
    return {k: (v / n if n else math.nan) for k, v in sums.items() if k != "count"}


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


def _fit(task: Task, cfg: EngineConfig, ctx: DistContext, extra_state: dict[str, Any]) -> FitResult | None:
    # --- numerics -------------------------------------------------------------------------------------
    set_threads(cfg.threads, ctx.local_world_size)
    set_deterministic(cfg.deterministic)
    seed_everything(cfg.seed)  # the same seed on every rank: DDP also broadcasts rank 0's initial weights

    precision = effective_precision(cfg.precision, ctx.device)
    if precision != cfg.precision:
        if ctx.is_main:
            log(f"{cfg.precision} is not native on {torch.cuda.get_device_name(ctx.device)}: {precision} with loss scaling")
        cfg = dataclasses.replace(cfg, precision=precision)  # saved so: the run's config says what it ran

    # --- resume or new run directory --------------------------------------------------------------------
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
    ckpt_dir = run_dir / "checkpoints"

    # --- model, data, optimisation -------------------------------------------------------------------------
    model = task.build_model().to(ctx.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_set, val_set = task.datasets()
    # Own generator: creating the loader's iterator must not draw from the global RNG (exact resume).
    loader_gen = torch.Generator()
    collate = getattr(task, "collate_fn", None)
    workers = loader_workers(cfg, ctx)
    common = dict(num_workers=workers, collate_fn=collate, pin_memory=ctx.device.type == "cuda",
                  persistent_workers=False)  # fmt: skip
    if hasattr(task, "sample_lengths"):  # speech, text: batches of similar length waste less on padding
        sampler = BucketBatchSampler(task.sample_lengths(train_set), cfg.batch_size, ctx, seed=cfg.seed)
        train_loader = DataLoader(train_set, batch_sampler=sampler, generator=loader_gen, **common)
    else:
        sampler = ResumableSampler(train_set, ctx, cfg.batch_size, shuffle=True, seed=cfg.seed)
        train_loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, generator=loader_gen,
                                  drop_last=False, **common)  # fmt: skip
    val_loader = None
    if val_set is not None:
        # Its own generator too: a validation that one run does and another does not (--max-steps stop,
        # --eval-every) must not shift the global RNG that dropout and augmentation draw from.
        val_loader = DataLoader(val_set, batch_size=cfg.batch_size, sampler=ShardSampler(len(val_set), ctx),
                                generator=torch.Generator().manual_seed(cfg.seed), **common)  # fmt: skip
    steps_per_epoch = sampler.batches_per_epoch()
    optimizer, scheduler = task.configure_optimizers(model, steps_per_epoch)
    scaler = grad_scaler(ctx.device, cfg.precision)
    mode = getattr(task, "best_mode", "max")

    start_epoch, start_batch, global_step = 0, 0, 0
    best: dict[str, Any] = {"metric": task.best_metric, "value": None, "epoch": None}
    partial: dict[str, float] = {}
    if resumed is not None:
        try:
            model.load_state_dict(resumed["model"])
        except RuntimeError as e:
            raise checkpoint.CheckpointError(
                f"checkpoint {cfg.resume!r} is for another model ({str(e).splitlines()[1].strip()[:120]})",
                "resume with the same model and task it was trained with",
            ) from None
        optimizer.load_state_dict(resumed["optimizer"])
        if scheduler is not None and resumed.get("scheduler") is not None:
            scheduler.load_state_dict(resumed["scheduler"])
        scaler.load_state_dict(resumed["scaler"])
        start_epoch, start_batch = resumed["epoch"], resumed["batch_in_epoch"]
        global_step, best, partial = resumed["global_step"], resumed["best"], resumed.get("partial", {})
        if isinstance(partial, list):  # one dict of the epoch's partial sums per rank
            partial = partial[ctx.rank] if len(partial) == ctx.world_size else {}
        if hasattr(task, "load_state_dict") and resumed.get("task_state") is not None:
            task.load_state_dict(resumed["task_state"])
        rngs = resumed["rng"]
        set_rng_state(rngs[ctx.rank] if len(rngs) == ctx.world_size else rngs[0])

    if ctx.distributed:
        # Tasks that freeze layers for some epochs ask DDP to look for parameters without gradients.
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            find_unused_parameters=getattr(task, "find_unused_parameters", False),
        )  # fmt: skip

    logger, monitor = None, None
    if ctx.is_main:
        save_yaml(to_dict(cfg), run_dir / "config.yaml")
        logger = MetricsLogger(run_dir, resume_step=global_step if resumed is not None else None)
        if cfg.monitor_interval > 0:
            from dlbox.engine.monitor import Monitor

            # CPU/RAM (and GPUs through NVML) every few seconds; the lambda reads global_step when a sample is
            # taken, so the system scalars line up with the losses in TensorBoard.
            monitor = Monitor(lambda r: logger.log({"step": global_step, "kind": "system", **r}),
                              cfg.monitor_interval, gpus=ctx.device.type == "cuda").start()  # fmt: skip
        what = f"resuming {run_dir} at epoch {start_epoch + 1}" if resumed else f"run {run_dir}"
        if restart_from is not None:
            what = f"restart {distributed.restart_count()}: {what}"
        log(f"{task.name}: {what} on {ctx.device} x{ctx.world_size}, {cfg.precision}, {cfg.epochs} epochs")

    def make_state(epoch: int, batch_in_epoch: int, sums: dict[str, float]) -> dict[str, Any]:
        rngs = distributed.gather_objects(rng_state(), ctx)
        sums = distributed.gather_objects(sums, ctx) if ctx.distributed else sums  # each rank's own sums
        return {
            "dlbox": __version__, "task": task.name, "model": unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict() if scheduler else None,
            "scaler": scaler.state_dict(), "epoch": epoch, "batch_in_epoch": batch_in_epoch,
            "global_step": global_step, "rng": rngs, "config": to_dict(cfg), "best": best, "partial": sums,
            "task_state": task.state_dict() if hasattr(task, "state_dict") else None, **extra_state,
        }  # fmt: skip

    def validate() -> dict[str, float]:
        if hasattr(task, "before_evaluate"):
            task.before_evaluate(unwrap(model), ctx)
        if val_loader is None:
            return {}
        # A task with metrics that are not averages (COCO mAP) brings its own evaluate().
        eval_fn = getattr(task, "evaluate", None) or (lambda m, dl, c, k: evaluate(task, m, dl, c, k))
        eval_model = task.eval_model(unwrap(model)) if hasattr(task, "eval_model") else unwrap(model)
        result = {f"val/{k}": v for k, v in eval_fn(eval_model, val_loader, ctx, cfg).items()}
        model.train()
        return result

    # --- the loop --------------------------------------------------------------------------------------
    t_start, images_seen, last_metrics = time.perf_counter(), 0, {}
    t_saved = time.monotonic()
    # A collective per step to agree on a stop or a timed save; on CUDA every 8th step only (each one waits
    # for the device). Step-count saves need no agreement: every rank counts the same steps.
    agree_every = 8 if ctx.device.type == "cuda" else 1
    with GracefulStop() as stop:
        for epoch in range(start_epoch, cfg.epochs):
            if cfg.max_steps is not None and global_step >= cfg.max_steps:
                break  # resumed with the --max-steps it stopped at: nothing left to do
            sampler.start(epoch, skip_batches=start_batch if epoch == start_epoch else 0)
            loader_gen.manual_seed(cfg.seed * 100_003 + epoch)
            model.train()
            if hasattr(task, "on_epoch_start"):
                task.on_epoch_start(unwrap(model), epoch)
            sums: dict[str, Any] = dict(partial) if epoch == start_epoch else {}
            t_epoch, n_epoch = time.perf_counter(), 0
            pbar = bar(len(train_loader), f"epoch {epoch + 1}/{cfg.epochs}", enabled=ctx.is_main, unit="batch")
            reached = False  # an epoch with no batches left to run (resumed at its end) is a whole one
            for i, batch in enumerate(train_loader, start=start_batch if epoch == start_epoch else 0):
                batch = to_device(batch, ctx.device, cfg.channels_last)
                with autocast(ctx.device, cfg.precision):
                    loss, step_sums = task.train_step(model, batch)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                if scheduler is not None:
                    scheduler.step()
                if hasattr(task, "on_step_end"):
                    task.on_step_end(unwrap(model))
                global_step += 1
                # Sums stay tensors on the device (no host read per step); read at log time.
                for k, v in step_sums.items():
                    sums[k] = sums.get(k, 0.0) + (v.detach().double() if isinstance(v, torch.Tensor) else float(v))
                n = int(step_sums["count"])
                n_epoch += n
                if pbar.disable is False:
                    if pbar.n % 10 == 0:  # the bar's figures are read from the device every 10th step
                        rate = n_epoch * ctx.world_size / max(time.perf_counter() - t_epoch, 1e-9)
                        shown = {"loss": f"{float(loss):.4f}"}
                        shown.update({k: f"{float(v) / float(sums['count']):.3f}" for k, v in sums.items()
                                      if k not in ("count", "loss")})  # fmt: skip
                        pbar.set_postfix(**shown, img_s=f"{rate:.0f}", refresh=False)
                    pbar.update(1)
                last_step = i + 1 == len(train_loader) + (start_batch if epoch == start_epoch else 0)
                timed = cfg.save_every_minutes is not None and time.monotonic() - t_saved >= 60 * cfg.save_every_minutes
                stop_now, timed_save = stop.requested, timed
                if ctx.distributed and (global_step % agree_every == 0 or last_step):  # the same steps on every rank
                    stop_now, timed_save = distributed.any_ranks([stop.requested, timed and ctx.is_main], ctx)
                if stop_now:
                    pbar.close()
                    _save(make_state(epoch, i + 1, _floats(sums)), ckpt_dir, ctx)
                    if ctx.is_main:
                        _close(monitor, logger)
                    raise Interrupted(str(run_dir), epoch, global_step, stop.signum or 2)
                reached = cfg.max_steps is not None and global_step >= cfg.max_steps
                counted = cfg.save_every is not None and global_step % cfg.save_every == 0
                if (counted or timed_save) and not (last_step or reached):  # the epoch's end saves anyway
                    _save(make_state(epoch, i + 1, _floats(sums)), ckpt_dir, ctx)
                    t_saved = time.monotonic()
                if cfg.eval_every is not None and global_step % cfg.eval_every == 0 and not (last_step or reached):
                    # Between epochs' ends (Caffe's test_interval): the same validation, a record of kind "eval".
                    evaluated = validate()
                    if ctx.is_main and evaluated:
                        logger.log({"step": global_step, "epoch": epoch + 1, "kind": "eval", **evaluated})
                        log(f"step {global_step}  " + "  ".join(f"{k} {v:.4g}" for k, v in evaluated.items()))
                if reached:
                    break
            pbar.close()
            # Stopped by --max-steps before the epoch's end: its record covers the steps run, and the checkpoint
            # is a mid-epoch one, so a resume with a larger --max-steps continues inside this epoch.
            whole_epoch = not reached or last_step
            epoch_time = time.perf_counter() - t_epoch
            train = _average(distributed.all_reduce_sums(_floats(sums), ctx))
            epoch_images = distributed.all_reduce_sums({"n": n_epoch}, ctx)["n"]
            images_seen += epoch_images
            record: dict[str, Any] = {"epoch": epoch + 1, "step": global_step}
            record.update({f"train/{k}": v for k, v in train.items()})
            record["lr"] = optimizer.param_groups[0]["lr"]
            record["images_per_sec"] = epoch_images / max(epoch_time, 1e-9)
            record.update(validate())
            last_metrics = record
            value = record.get(task.best_metric, math.nan)
            # Without validation data the latest weights are the best we know.
            improved = _better(value, best["value"], mode) if task.best_metric in record else True
            if improved:
                best = {"metric": task.best_metric, "value": value if task.best_metric in record else None, "epoch": epoch + 1}
            state = make_state(epoch + 1, 0, {}) if whole_epoch else make_state(epoch, i + 1, _floats(sums))
            _save(state, ckpt_dir, ctx, best=improved)
            t_saved = time.monotonic()
            if ctx.is_main:
                logger.log(record)
                shown = "  ".join(f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float))
                log(f"epoch {epoch + 1}/{cfg.epochs}  {shown}")
            if reached:
                break

    seconds = time.perf_counter() - t_start
    digest = state_digest(unwrap(model))
    digests = distributed.gather_objects(digest, ctx)
    _close(monitor, logger)
    if not ctx.is_main:
        return None
    return FitResult(
        run_dir=str(run_dir), epochs=cfg.epochs, best=best, last=last_metrics, seconds=seconds,
        images_per_sec=images_seen / max(seconds, 1e-9), world_size=ctx.world_size, weights_digest=digest,
        identical_weights=(len(set(digests)) == 1) if ctx.distributed else None,
    )  # fmt: skip


@torch.no_grad()
def evaluate(task: Task, model: nn.Module, loader: DataLoader, ctx: DistContext, cfg: EngineConfig) -> dict[str, float]:
    """Eval mode always (BatchNorm running statistics, no dropout); sums reduced over all ranks."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    for batch in loader:
        batch = to_device(batch, ctx.device, cfg.channels_last)
        with autocast(ctx.device, cfg.precision):
            step_sums = task.eval_step(model, batch)
        for k, v in step_sums.items():
            sums[k] = sums.get(k, 0.0) + (v.detach().double() if isinstance(v, torch.Tensor) else float(v))
    model.train(was_training)
    return _average(distributed.all_reduce_sums(_floats(sums), ctx))
