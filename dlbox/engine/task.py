"""The engine contract: what a task gives ``fit``, and when ``fit`` calls it.

A task subclasses ``Task`` and overrides the five required methods; every hook has a no-op default (Lightning's
``ModelHooks`` style), so the engine calls each one unconditionally. A subclass that defines a method whose name
looks like a hook but is not one (``on_epoch_begin``, ``eval_steps``) fails when the class is created, instead
of being skipped silently.

The order of calls in ``fit`` (``tests/engine/test_hooks.py`` checks it)::

    build_model()                               # once; the engine moves it to the device
    datasets()                                  # once: (train set, validation set or None)
    sample_lengths(train_set)                   # once: None, or lengths for length-bucketed batches
    configure_optimizers(model, steps_per_epoch)
    load_state_dict(task_state)                 # only when resuming, after the model and optimiser states
    for each epoch:
        on_epoch_start(model, epoch)            # after model.train()
        for each batch:
            train_step(model, batch)            # -> (loss, sums); the engine does backward and the step
            on_step_end(model)                  # after optimizer.step() and scheduler.step()
            [every --eval-every steps: the validation below]
        validation (when there is a validation set, and also without one for before_evaluate):
            before_evaluate(model, ctx)         # e.g. BatchNorm recalibration
            eval_model(model)                   # -> the module to evaluate (e.g. EMA weights)
            evaluate(eval_model, loader, ctx, cfg)   # default: eval_step(model, batch) per batch, averaged
        state_dict()                            # at every checkpoint: task state saved beside the model

``model`` in the hooks is always the bare module (never the DDP wrapper); ``train_step`` gets the wrapper.
"""

from __future__ import annotations

import difflib
import inspect
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from dlbox.engine.config import EngineConfig
    from dlbox.engine.distributed import DistContext

REQUIRED = ("build_model", "datasets", "configure_optimizers", "train_step")
HOOKS = (
    "sample_lengths", "on_epoch_start", "on_step_end", "before_evaluate", "eval_model", "evaluate", "eval_step",
    "state_dict", "load_state_dict", "collate_fn",
)  # fmt: skip
ATTRIBUTES = ("name", "best_metric", "best_mode", "find_unused_parameters")
KNOWN = frozenset(REQUIRED + HOOKS + ATTRIBUTES)
_HOOK_PREFIXES = ("on_", "before_", "after_")


def _check_names(cls: type) -> None:
    """A method named like a hook that is not one is a misspelling: fail when the class is defined."""
    for attr, value in vars(cls).items():
        if attr.startswith("_") or attr in KNOWN or not (inspect.isfunction(value) or isinstance(value, staticmethod)):
            continue
        close = difflib.get_close_matches(attr, sorted(KNOWN), n=1, cutoff=0.8)
        if attr.startswith(_HOOK_PREFIXES) or close:
            hint = f"did you mean {close[0]!r}?" if close else f"the hooks are: {', '.join(HOOKS)}"
            raise TypeError(f"{cls.__qualname__}.{attr} is not an engine hook ({hint}); "
                            "rename it, or make it private with a leading underscore")  # fmt: skip


class Task:
    """Base class of every task trained by ``dlbox.engine.trainer.fit``; see the module docstring for the order
    of calls. Sums are per-batch totals; the engine adds them up over batches and ranks, then divides every key
    by ``count`` (so ``{"count": n, "loss": loss * n, "accuracy": correct}``)."""

    name: ClassVar[str] = "task"  # run directories go to runs/<name>/
    best_metric: str = "val/loss"  # e.g. "val/accuracy"
    best_mode: Literal["max", "min"] = "max"  # higher is better unless "min"
    find_unused_parameters: bool = False  # DDP: some parameters get no gradient (frozen layers)
    collate_fn: Any = None  # the loaders' collate_fn (a method or a function), None: torch's default

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_names(cls)

    # --- required -------------------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must define build_model()")

    def datasets(self) -> tuple[Dataset, Dataset | None]:
        raise NotImplementedError(f"{type(self).__name__} must define datasets()")

    def configure_optimizers(self, model: nn.Module, steps_per_epoch: int) -> tuple[torch.optim.Optimizer, Any]:
        """(optimizer, scheduler or None); the scheduler steps once per training step."""
        raise NotImplementedError(f"{type(self).__name__} must define configure_optimizers()")

    def train_step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss to back-propagate, sums for the epoch record: must hold ``count``)."""
        raise NotImplementedError(f"{type(self).__name__} must define train_step()")

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        """Sums over one validation batch (with ``count``); needed unless ``evaluate`` is overridden."""
        raise NotImplementedError(f"{type(self).__name__} must define eval_step() or evaluate()")

    # --- hooks (no-op defaults) ---------------------------------------------------------------------------------
    def sample_lengths(self, dataset: Dataset) -> list[float] | None:
        """Lengths of the training samples: batches of similar length (speech, text). None: shuffled batches."""
        return None

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        """After model.train(), before the epoch's first batch: freeze layers, keep frozen BatchNorm in eval."""

    def on_step_end(self, model: nn.Module) -> None:
        """After each optimiser step (EMA update)."""

    def before_evaluate(self, model: nn.Module, ctx: DistContext) -> None:
        """Before every validation (BatchNorm recalibration); runs even without a validation set."""

    def eval_model(self, model: nn.Module) -> nn.Module:
        """The module to evaluate (EMA weights instead of the trained ones)."""
        return model

    def evaluate(self, model: nn.Module, loader: DataLoader, ctx: DistContext, cfg: EngineConfig) -> dict[str, float]:
        """Validation metrics. Default: ``eval_step`` averaged over batches and ranks. Override for metrics that are
        not averages (COCO mAP); it runs on every rank (distributed.gather_objects / all_reduce_sums combine)."""
        from dlbox.engine.batches import evaluate

        return evaluate(self, model, loader, ctx, cfg)

    def state_dict(self) -> dict[str, Any] | None:
        """Task state saved in every checkpoint (EMA weights, class names); None: nothing."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned, when resuming."""
