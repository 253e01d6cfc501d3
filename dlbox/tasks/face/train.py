"""`dlbox face train`: an embedder on identity folders, ArcFace or triplet loss, on the engine.

Held-out *identities* (never seen in training) give the validation metric: 10-fold verification accuracy on
balanced same/different pairs of their photos, so "best" means "best at telling apart people it never saw".
The threshold that goes with it is saved with the run for `compare` and `identify`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlbox.base.errors import UserError
from dlbox.engine import distributed
from dlbox.engine.schedule import warmup_cosine
from dlbox.engine.task import Task
from dlbox.engine.trainer import fit
from dlbox.tasks.face import models
from dlbox.tasks.face.config import FaceTrainConfig


class ArcFaceHead(nn.Module):
    """Additive angular margin (Deng et al. 2019): logits s * cos(theta_y + m) for the true class, s * cos(theta)
    for the others, with theta the angle between the embedding and each class centre."""

    def __init__(self, dim: int, classes: int, margin: float = 0.5, scale: float = 32.0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, dim))
        nn.init.xavier_uniform_(self.weight)
        self.margin, self.scale = margin, scale

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cos = F.linear(F.normalize(emb.float()), F.normalize(self.weight.float())).clamp(-1 + 1e-7, 1 - 1e-7)  # (N, C)
        m = self.margin
        target = torch.cos(torch.acos(cos.gather(1, labels[:, None])) + m)
        # Past pi - m the margin would make cos(theta + m) grow again: fall back to a linear penalty there.
        fallback = cos.gather(1, labels[:, None]) - math.sin(math.pi - m) * m
        target = torch.where(cos.gather(1, labels[:, None]) > math.cos(math.pi - m), target, fallback)
        logits = cos.scatter(1, labels[:, None], target) * self.scale
        return logits, cos


class FaceModel(nn.Module):
    """The embedder and (ArcFace) its training head; ``forward(x)`` is the embedding, so evaluation and export
    see only the embedder. ``forward(x, labels)`` returns (embedding, logits, cos) through DDP's forward."""

    def __init__(self, embedder: nn.Module, head: nn.Module | None):
        super().__init__()
        self.embedder, self.head = embedder, head

    def forward(self, x, labels=None):
        emb = self.embedder(x)
        if labels is None or self.head is None:
            return emb
        return (emb, *self.head(emb, labels))


def batch_hard_triplet(emb: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """For each anchor with a positive in the batch: relu(hardest positive - hardest negative + margin)."""
    d = torch.cdist(emb.float(), emb.float())  # (N, N)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=emb.device)
    pos = same & ~eye
    has = pos.any(1) & (~same).any(1)
    if not has.any():
        return emb.sum() * 0.0  # no anchor with both a positive and a negative: nothing to learn from
    hardest_pos = d.masked_fill(~pos, -1).amax(1)
    hardest_neg = d.masked_fill(same, float("inf")).amin(1)
    return F.relu(hardest_pos - hardest_neg + margin)[has].mean()


class FaceTask(Task):
    """Face embedding training for the engine."""

    name = "face"
    best_metric = "val/verify_acc"

    def __init__(self, cfg: FaceTrainConfig):
        from dlbox.base.progress import log_main
        from dlbox.data.images import ImageDataset
        from dlbox.tasks.face.data import align_files, face_transform, scan_identities, split_identities

        self.cfg = cfg
        ids = scan_identities(cfg.data)
        samples = ids.samples
        if cfg.align != "none":
            crops, _ = align_files([f for f, _ in samples], cfg.align)
            samples = [(crops[f], lbl) for f, lbl in samples if f in crops]
        train_ids, val_ids = split_identities(len(ids.names), cfg.val_identities, cfg.seed)
        tmap, vmap = {o: n for n, o in enumerate(train_ids)}, {o: n for n, o in enumerate(val_ids)}
        self.identities = [ids.names[i] for i in train_ids]
        self.val_identities = [ids.names[i] for i in val_ids]
        self.skipped_identities = ids.skipped_identities
        self.img_size = cfg.img_size or models.DEFAULT_SIZE[cfg.model]
        self.train_set = ImageDataset([(f, tmap[lbl]) for f, lbl in samples if lbl in tmap], self.identities,
                                      transform=face_transform(self.img_size, train=True, flip=cfg.flip))  # fmt: skip
        self.val_set = ImageDataset([(f, vmap[lbl]) for f, lbl in samples if lbl in vmap], self.val_identities,
                                    transform=face_transform(self.img_size), strict=True)  # fmt: skip
        from dlbox.tasks.face.data import draw_pairs

        self.pairs = draw_pairs([lbl for _, lbl in self.val_set.samples], cfg.val_pairs, cfg.seed)
        self.margin = cfg.margin if cfg.margin is not None else (0.5 if cfg.loss == "arcface" else 0.2)
        self.threshold: float | None = None
        log_main(f"face: {len(self.identities)} training identities ({len(self.train_set)} photos), "
                 f"{len(self.val_identities)} held out ({len(self.val_set)} photos, {len(self.pairs)} pairs)")  # fmt: skip

    # --- the engine's Task protocol ---------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        cfg = self.cfg
        emb = models.build(cfg.model, cfg.embedding_dim, cfg.width)
        if cfg.weights not in ("", "none"):
            from dlbox.tasks.face.inference import weights_state

            models.load_into(emb, weights_state(cfg.weights), cfg.weights)
        dim = emb.last_bn.num_features if hasattr(emb, "last_bn") else emb.bn.num_features
        self.embedding_dim = dim
        head = ArcFaceHead(dim, len(self.identities), self.margin, cfg.scale) if cfg.loss == "arcface" else None
        return FaceModel(emb, head)

    def datasets(self):
        return self.train_set, self.val_set

    def configure_optimizers(self, model: nn.Module, steps_per_epoch: int):
        cfg = self.cfg
        mult = cfg.backbone_lr_mult if cfg.fine_tune else 1.0
        groups = [{"params": list(model.embedder.parameters()), "lr": cfg.lr * mult}]
        if model.head is not None:
            groups.append({"params": list(model.head.parameters()), "lr": cfg.lr})
        if cfg.optimizer == "sgd":
            opt_ = torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True)
        else:
            opt_ = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        warmup = int(cfg.warmup_epochs * steps_per_epoch) if cfg.epochs > 1 else 0
        return opt_, warmup_cosine(opt_, warmup, steps_per_epoch * cfg.epochs)

    def train_step(self, model: nn.Module, batch):
        x, y = batch  # x: (N, 3, S, S), y: (N,)
        n = y.shape[0]
        if self.cfg.loss == "arcface":
            _, logits, cos = model(x, y)
            loss = F.cross_entropy(logits, y)
            return loss, {"count": n, "loss": loss.detach() * n, "acc": (cos.argmax(1) == y).sum()}
        emb = model(x)
        loss = batch_hard_triplet(emb, y, self.margin)
        return loss, {"count": n, "loss": loss.detach() * n}

    def eval_step(self, model, batch):  # not used: evaluate() below replaces it
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader, ctx, cfg) -> dict[str, float]:
        """Embeddings of the held-out photos (every rank its shard, gathered), then 10-fold pair accuracy."""
        from dlbox.engine.device import autocast
        from dlbox.engine.trainer import to_device
        from dlbox.tasks.face.metrics import kfold_accuracy, pair_distances

        was = model.training
        model.eval()
        embs = []
        for x, _ in loader:
            with autocast(ctx.device, cfg.precision):
                embs.append(model(to_device(x, ctx.device, cfg.channels_last)).float().cpu())
        model.train(was)
        mine = torch.cat(embs).numpy() if embs else np.zeros((0, self.embedding_dim), np.float32)
        parts = distributed.gather_objects(mine, ctx)
        # ShardSampler gives rank r the samples r, r + W, ...: interleave the parts back into dataset order.
        emb = np.zeros((len(self.val_set), self.embedding_dim), np.float32)
        for r, part in enumerate(parts):
            emb[r :: len(parts)] = part
        dist, same = pair_distances(emb, self.pairs)
        res = kfold_accuracy(dist, same)
        self.threshold = res["threshold"]
        return {"verify_acc": res["mean"], "verify_std": res["std"], "threshold": res["threshold"]}

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: what inference needs to rebuild the embedder and its inputs."""
        return {"arch": self.cfg.model, "embedding_dim": self.embedding_dim, "width": self.cfg.width,
                "img_size": self.img_size, "threshold": self.threshold, "identities": list(self.identities),
                "val_identities": list(self.val_identities)}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.threshold = state.get("threshold")


def train_worker(cfg: FaceTrainConfig) -> dict[str, Any] | None:
    task = FaceTask(cfg)
    result = fit(task, cfg)
    if result is None:
        return None
    best_epoch = result.best.get("epoch")
    at_best = result.best_record
    return {
        "run_dir": result.run_dir, "verify_acc": result.best.get("value"), "best_epoch": best_epoch,
        "threshold": at_best.get("val/threshold"), "epochs": result.epochs, "seconds": round(result.seconds, 2),
        "images_per_sec": round(result.images_per_sec, 1), "processes": result.world_size,
        "train_identities": len(task.identities), "val_identities": len(task.val_identities),
        "val_pairs": len(task.pairs), "skipped_identities": task.skipped_identities, "model": cfg.model, "loss": cfg.loss,
    }  # fmt: skip


def train(cfg: FaceTrainConfig) -> dict[str, Any] | None:
    """Train (in the processes ``cfg`` asks for); returns the summary on rank 0."""
    if cfg.align != "none" and cfg.data:
        # Detect and align once here, before workers start, so DDP ranks only read the cache.
        from dlbox.tasks.face.data import align_files, scan_identities

        align_files([f for f, _ in scan_identities(cfg.data).samples], cfg.align)
    if cfg.model == "inception_resnet_v1" and cfg.width != 1.0:
        raise UserError("--width applies to mobileface and tinyface only")
    return distributed.run(cfg, train_worker, cfg)
