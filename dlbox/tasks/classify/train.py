"""`dlbox classify train`: train from scratch or fine-tune a torchvision classifier on the engine.

Reads top to bottom: config -> data -> model (weights, heads, freezing, BatchNorm) -> optimiser with a lower
backbone learning rate and warm-up + cosine -> the engine's loop -> a summary.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlbox.base.errors import UserError
from dlbox.base.progress import log, log_main
from dlbox.engine import distributed
from dlbox.engine.batchnorm import freeze_bn, recalibrate_bn, set_bn_momentum
from dlbox.engine.schedule import warmup_cosine
from dlbox.engine.task import Task
from dlbox.engine.trainer import fit, to_device
from dlbox.tasks.classify import models
from dlbox.tasks.classify.config import ClassifyConfig  # noqa: F401  (re-exported)


class EMA:
    """Exponential moving average of parameters and buffers (evaluated and exported instead of the raw weights)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for e, m in zip(self.model.state_dict().values(), model.state_dict().values(), strict=True):
            if e.is_floating_point():
                e.mul_(self.decay).add_(m.detach(), alpha=1 - self.decay)
            else:
                e.copy_(m)


class ClassifyTask(Task):
    """Image classification for the engine."""

    name = "classify"
    best_metric = "val/top1"

    def __init__(self, cfg: ClassifyConfig):
        from dlbox.data.images import load_image_splits

        self.cfg = cfg
        models._check_name(cfg.model)  # before any work: scanning the data can take a while
        self.train_set, self.val_set, self.classes = load_image_splits(cfg.data, val_split=cfg.val_split, seed=cfg.seed)
        if len(self.classes) < 2:
            raise UserError(f"{cfg.data} has {len(self.classes)} class", "a classifier needs at least 2 classes")
        self.weights_meta: dict[str, Any] = {}
        self.ema: EMA | None = None
        self.backbone: list[nn.Parameter] = []
        self.module: nn.Module | None = None
        self.compiled: nn.Module | None = None  # --compile: the training forward of ``self.module``, compiled
        self._set_transforms()
        self.device_preprocess = None  # --decode device: decodes and transforms the byte batches on the device
        self._set_decode()

    def _set_transforms(self) -> None:
        from dlbox.data.transforms import build_transforms

        cfg = self.cfg
        info = self._pretrained_info()
        scratch = not cfg.weights or cfg.weights == "none"
        self.img_size = cfg.img_size or info.get("img_size") or (self._data_size() if scratch else 224)
        self.mean = tuple(info.get("mean", models.IMAGENET_MEAN))
        self.std = tuple(info.get("std", models.IMAGENET_STD))
        self.train_set.transform = build_transforms(cfg.augment, self.img_size, self.mean, self.std, train=True)
        eval_tf = build_transforms(cfg.augment, self.img_size, self.mean, self.std, train=False)
        if self.val_set is not None:
            self.val_set.transform = eval_tf
        self.eval_transform = eval_tf

    def _set_decode(self) -> None:
        """--decode device: the loader workers read the files' bytes and train_step/eval_step decode and transform
        them on the training device (dlbox.data.device_decode); the PIL transforms above stay for cpu."""
        from dlbox.data import device_decode

        cfg = self.cfg
        on_cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
        if not device_decode.choose(cfg.decode, on_cuda, self.train_set.samples, str(cfg.data)):
            return
        self.train_set = device_decode.EncodedDataset(self.train_set, cfg.seed)
        if self.val_set is not None:
            self.val_set = device_decode.EncodedDataset(self.val_set, cfg.seed)
        self.collate_fn = device_decode.collate  # the engine's loaders take the task's collate_fn
        self.device_preprocess = device_decode.DevicePreprocess(cfg.augment, self.img_size, self.mean, self.std)

    def _inputs(self, x, y: torch.Tensor, train: bool) -> torch.Tensor:
        """The model's input: ``x`` itself, or with --decode device the byte batch decoded on y's device."""
        if self.device_preprocess is None or isinstance(x, torch.Tensor):
            return x
        return self.device_preprocess(x, y.device, train=train, channels_last=self.cfg.channels_last)

    def _data_size(self) -> int:
        """From scratch, the data's own size: its median image side rounded up to a multiple of 32, within
        [32, 224] (32x32 digits stay 32 px instead of being blown up 49-fold to 224; photos get 224)."""
        from dlbox.data.images import median_side

        side = median_side(self.train_set.samples)
        size = 224 if side is None else min(224, max(32, -(-side // 32) * 32))
        log_main(f"input size {size} px: the data's median image side is {side} px "
                 "(no pretrained weights; --img-size N to choose)")  # fmt: skip
        return size

    def _pretrained_info(self) -> dict[str, Any]:
        """Input size and normalisation of the weights: the hub entry's, else torchvision's for this model."""
        w = self.cfg.weights
        if not w or w == "none":
            return {}
        from dlbox.models.weights import resolve_weights

        src = self.weights_source = resolve_weights(w)  # parsed once; build_model loads it
        if src.kind == "slim":  # TF-Slim: the network's own preprocessing (Inception [-1, 1], ResNet V1 mean only)
            from dlbox.convert import slim

            return slim.transform_info(src)
        t = getattr(src.entry, "transforms", None) or {}  # a hub entry's
        if t:
            return {"img_size": t.get("crop_size") or t.get("img_size"), "mean": t.get("mean"), "std": t.get("std")}
        try:
            return models.weights_transform_info(self.cfg.model, src)  # timm: the weights' config.json
        except (ValueError, AttributeError):
            return {}

    # --- the engine's Task protocol ---------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        cfg = self.cfg
        weights = getattr(self, "weights_source", None) or cfg.weights
        model, self.weights_meta = models.build(cfg.model, len(self.classes), weights, cfg.fine_tune)
        self.weights_source = None  # loaded: not kept in memory beside the model
        saved_classes = self.weights_meta.get("classes")
        if saved_classes and not cfg.fine_tune and list(saved_classes) != list(self.classes):
            raise UserError(
                f"the weights were trained on classes {saved_classes[:5]}... but the data has {self.classes[:5]}...",
                "add --fine-tune to train a new classifier for these classes",
            )
        if cfg.bn_momentum is not None:
            set_bn_momentum(model, cfg.bn_momentum)
        head_names = set(models.heads(model, len(self.classes)))
        self.head_params = {id(p) for n, m in model.named_modules() if n in head_names for p in m.parameters()}
        self.backbone = [p for p in model.parameters() if id(p) not in self.head_params]
        self.find_unused_parameters = cfg.freeze_backbone  # DDP: frozen parameters get no gradient
        if cfg.ema:
            self.ema = EMA(model, cfg.ema)
        self.module = model
        if cfg.compile:
            # Only the training forward is compiled; the engine keeps the plain module, so checkpoints, EMA and
            # evaluation (eager, eval mode) are unchanged. Compiled on the first step, after the move to the device.
            self.compiled = torch.compile(model)
        return model

    def datasets(self):
        return self.train_set, self.val_set

    def configure_optimizers(self, model: nn.Module, steps_per_epoch: int):
        cfg = self.cfg
        from_weights = cfg.weights not in (None, "", "none")
        backbone_lr = cfg.lr * (cfg.backbone_lr_mult if from_weights else 1.0)
        groups = [
            {"params": [p for p in model.parameters() if id(p) in self.head_params], "lr": cfg.lr},
            {"params": [p for p in model.parameters() if id(p) not in self.head_params], "lr": backbone_lr},
        ]
        if cfg.optimizer == "sgd":
            opt_ = torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True)
        else:
            opt_ = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        warmup = int(cfg.warmup_epochs * steps_per_epoch) if cfg.epochs > 1 else 0
        return opt_, warmup_cosine(opt_, warmup, steps_per_epoch * cfg.epochs)

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        cfg = self.cfg
        frozen = cfg.freeze_backbone and (cfg.unfreeze_after is None or epoch < cfg.unfreeze_after)
        for p in self.backbone:
            p.requires_grad_(not frozen)
        if frozen:
            # Frozen layers keep their BatchNorm statistics: eval mode for every BN outside the heads.
            freeze_bn(model)
        if cfg.freeze_backbone and cfg.unfreeze_after is not None and epoch == cfg.unfreeze_after:
            log(f"epoch {epoch + 1}: unfreezing the backbone")
        if self.device_preprocess is not None:
            self.train_set.epoch = epoch  # the augmentation seeds: (seed, epoch, index); workers get a fresh copy

    def on_step_end(self, model: nn.Module) -> None:
        if self.ema is not None:
            self.ema.update(model)

    def eval_model(self, model: nn.Module) -> nn.Module:
        return self.ema.model if self.ema is not None else model

    def before_evaluate(self, model: nn.Module, ctx) -> None:
        if self.cfg.recalibrate_bn:
            recalibrate_bn(self.eval_model(model), self.recalibration_batches(ctx), ctx)

    def recalibration_batches(self, ctx):
        """Training images with the evaluation transform (statistics should match what the model sees at test)."""
        from torch.utils.data import DataLoader

        from dlbox.engine.device import loader_workers
        from dlbox.engine.samplers import ShardSampler

        ds = copy.copy(self.train_set)
        ds.transform = self.eval_transform
        loader = DataLoader(ds, batch_size=self.cfg.batch_size, sampler=ShardSampler(len(ds), ctx),
                            num_workers=loader_workers(self.cfg, ctx), collate_fn=getattr(self, "collate_fn", None))  # fmt: skip
        if self.device_preprocess is not None:  # byte batches: the evaluation transform on the device
            return (self.device_preprocess(x, ctx.device, train=False, channels_last=self.cfg.channels_last) for x, _ in loader)
        return (to_device(x, ctx.device, self.cfg.channels_last) for x, _ in loader)

    def _logits(self, out) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(main logits, auxiliary logits) — googlenet/inception_v3 return a namedtuple in train mode."""
        if isinstance(out, torch.Tensor):
            return out, []
        main = out.logits
        aux = [a for a in out[1:] if isinstance(a, torch.Tensor)]
        return main, aux

    def _sums(self, logits: torch.Tensor, y: torch.Tensor, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        n = y.shape[0]
        k = min(5, logits.shape[1])
        topk = logits.topk(k, dim=1).indices  # (N, k)
        return {
            "count": n,
            "loss": loss.detach() * n,
            "top1": (topk[:, 0] == y).sum(),
            "top5": (topk == y[:, None]).any(dim=1).sum(),
        }

    def train_step(self, model: nn.Module, batch):
        x, y = batch  # x: (N, 3, H, W) or, with --decode device, an EncodedBatch; y: (N,)
        x = self._inputs(x, y, train=True)
        forward = self.compiled if self.compiled is not None and model is self.module else model
        logits, aux = self._logits(forward(x))
        loss = F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)
        weight = models.AUX_MODELS.get(self.cfg.model, 0.0)
        for a in aux:
            loss = loss + weight * F.cross_entropy(a, y, label_smoothing=self.cfg.label_smoothing)
        return loss, self._sums(logits, y, loss)

    def eval_step(self, model: nn.Module, batch):
        x, y = batch
        x = self._inputs(x, y, train=False)
        logits, _ = self._logits(model(x))
        return self._sums(logits, y, F.cross_entropy(logits, y))

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: what evaluate/predict/export need to rebuild the model and its inputs."""
        return {
            "classes": list(self.classes), "model_name": self.cfg.model, "img_size": self.img_size,
            "mean": list(self.mean), "std": list(self.std), "slim": self.weights_meta.get("slim"),
            "ema": self.ema.model.state_dict() if self.ema is not None else None,
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.ema is not None and state.get("ema") is not None:
            self.ema.model.load_state_dict(state["ema"])


def train_worker(cfg: ClassifyConfig) -> dict[str, Any] | None:
    task = ClassifyTask(cfg)
    result = fit(task, cfg)
    if result is None:
        return None
    best_epoch = result.best.get("epoch")
    return {
        "run_dir": result.run_dir,
        "val_top1": result.best.get("value"),
        "val_top5": result.best_record.get("val/top5"),
        "best_epoch": best_epoch,
        "epochs": result.epochs,
        "seconds": round(result.seconds, 2),
        "images_per_sec": round(result.images_per_sec, 1),
        "processes": result.world_size,
        "classes": list(task.classes),
        "model": cfg.model,
    }


def _compile_blocker(cfg: ClassifyConfig, device: torch.device) -> str | None:
    """Why --compile cannot be used with these options here, or None."""
    from dlbox.runtime.paths import PathSpec, Unavailable, check_torch

    if cfg.launches_processes or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return "it runs in one process only (a compiled forward would bypass DDP's gradient hooks)"
    if cfg.deterministic:
        return "inductor's generated kernels are outside --deterministic's guarantee"
    try:
        check_torch(PathSpec(compile=True), device)
    except Unavailable as e:
        return str(e)
    return None


def use_fast_path(cfg: ClassifyConfig) -> ClassifyConfig:
    """--fast: the training path `dlbox bench --auto` saved for this model and device, as engine options.

    The chosen precision, channels_last and compile go into the config, which the run saves: a resumed run
    keeps them (a newer `dlbox bench --auto` does not change a run half-way)."""
    from dlbox.engine import checkpoint
    from dlbox.engine.device import resolve_device
    from dlbox.runtime import fastpath
    from dlbox.runtime.paths import PathSpec

    say = log_main  # under torchrun every worker resolves the path
    if cfg.resume and checkpoint.saved_config(cfg.resume).get("fast"):
        say(f"fast path: kept from the run ({cfg.precision}, channels_last {cfg.channels_last}, compile {cfg.compile})")
        return cfg
    device = resolve_device(cfg.device)
    choice = fastpath.require(cfg.model, device, "train")
    chosen = PathSpec.from_dict(choice["train"])
    note = ""
    blocker = _compile_blocker(cfg, device) if chosen.compile else None
    if blocker:
        note = f"; without compile: {blocker}"
    cfg = dataclasses.replace(cfg, **fastpath.engine_options(choice), compile=chosen.compile and not blocker)
    say(f"fast path: {fastpath.describe(choice, 'train')}{note}")
    return cfg


def train(cfg: ClassifyConfig) -> dict[str, Any] | None:
    """Train (in the processes ``cfg`` asks for); returns the summary on rank 0.

    ``cfg.fast`` first turns the saved fast path into options (see ``use_fast_path``)."""
    if cfg.fast:
        cfg = use_fast_path(cfg)
    if cfg.compile:
        from dlbox.engine.device import resolve_device

        blocker = _compile_blocker(cfg, resolve_device(cfg.device))
        if blocker:
            raise UserError(f"--compile: {blocker}", "train without --compile")
    return distributed.run(cfg, train_worker, cfg)
