"""`dlbox detect train`: train tinydet from scratch or fine-tune a torchvision detector on a COCO directory.

Reads top to bottom: config -> data (train/val splits, classes) -> model and weights -> optimiser with
warm-up + cosine -> loss per batch -> COCO evaluation each epoch (pycocotools, gathered over ranks) -> the
engine's loop -> sample images with boxes in TensorBoard -> a summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlbox.base.errors import UserError
from dlbox.base.progress import log
from dlbox.data import coco
from dlbox.data.remote import resolve_data
from dlbox.engine import distributed
from dlbox.engine.schedule import warmup_cosine
from dlbox.engine.task import Task
from dlbox.engine.trainer import fit, to_device
from dlbox.tasks.detect import models, tinydet
from dlbox.tasks.detect.config import DetectConfig
from dlbox.tasks.detect.data import CocoDetection, collate, load_split
from dlbox.tasks.detect.inference import detect_torch
from dlbox.tasks.detect.metrics import coco_eval, to_coco_results

MAIN_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


class DetectTask(Task):
    """Object detection for the engine."""

    name = "detect"
    find_unused_parameters = False

    def __init__(self, cfg: DetectConfig):
        self.cfg = cfg
        self.best_metric = f"val/{cfg.best}"
        data = str(resolve_data(cfg.data))  # s3://bucket/prefix: synced into the local cache first
        train_data, root, train_file = load_split(data, "train")
        coco.validate_for_training(train_data, str(train_file))
        self.classes = coco.class_names(train_data)
        self.cat_ids = [int(c["id"]) for c in sorted(train_data["categories"], key=lambda c: c["id"])]
        val_data, val_root, val_name = None, root, None
        if Path(data).is_dir() and "val" in coco.split_files(data):
            val_data, val_root, val_file = load_split(data, "val")
            coco.validate_for_training(val_data, str(val_file))
            val_name = str(val_file)
        elif cfg.val_split > 0:
            parts = coco.split(train_data, 1 - cfg.val_split, cfg.val_split, 0.0, seed=cfg.seed)
            train_data, val_data, val_name = parts["train"], parts["val"], f"{train_file} (val split {cfg.val_split})"
            if not val_data["images"]:
                val_data = None
        if cfg.max_images is not None:
            keep = {int(im["id"]) for im in sorted(train_data["images"], key=lambda im: im["id"])[: cfg.max_images]}
            train_data = coco.restrict(train_data, keep)
        size = cfg.size
        self.train_set = CocoDetection(train_data, root, self.classes, size, train=cfg.augment == "flip", name=str(train_file))
        self.val_set = CocoDetection(val_data, val_root, self.classes, size, name=val_name) if val_data else None
        # Ground truth for COCOeval keeps crowd boxes; category ids as in the training json.
        self.val_gt = self._gt_in_train_ids(val_data) if val_data else None
        self.weights_meta: dict[str, Any] = {}
        self.collate_fn = collate

    def _gt_in_train_ids(self, data: dict[str, Any]) -> dict[str, Any]:
        """The validation ground truth with its category ids mapped (by name) to the training json's."""
        by_name = dict(zip(self.classes, self.cat_ids, strict=True))
        old = coco.categories_by_id(data)
        gt = coco.with_defaults(data)
        gt["categories"] = [{"id": by_name[n], "name": n} for n in self.classes]
        for a in gt["annotations"]:
            a["category_id"] = by_name[old[int(a["category_id"])]]
        return gt

    # --- the engine's Task protocol -------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        cfg = self.cfg
        model, self.weights_meta = models.build(cfg.model, self.classes, cfg.size, cfg.weights, cfg.fine_tune,
                                               cfg.weights_backbone, cfg.roi_batch)
        return model

    def datasets(self):
        return self.train_set, self.val_set

    def configure_optimizers(self, model: nn.Module, steps_per_epoch: int):
        cfg = self.cfg
        kind = cfg.optimizer if cfg.optimizer != "auto" else ("adamw" if cfg.model == models.DEFAULT_MODEL else "sgd")
        lr = cfg.lr if cfg.lr is not None else (3e-3 if kind == "adamw" else 0.01)
        wd = cfg.weight_decay if cfg.weight_decay is not None else (0.05 if kind == "adamw" else 1e-4)
        params = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim > 1]  # conv/linear weights; norms and biases are not decayed
        groups = [{"params": decay, "weight_decay": wd}, {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
        if kind == "sgd":
            optimizer = torch.optim.SGD(groups, lr=lr, momentum=0.9)
        else:
            optimizer = torch.optim.AdamW(groups, lr=lr)
        warmup = int(cfg.warmup_epochs * steps_per_epoch) if cfg.epochs > 1 else 0
        return optimizer, warmup_cosine(optimizer, warmup, steps_per_epoch * cfg.epochs)

    def train_step(self, model: nn.Module, batch):
        images, targets = batch  # images (N, 3, S, S) in [0, 1]; targets: boxes (K, 4) xyxy, labels (K,)
        n = images.shape[0]
        if self.cfg.model == models.DEFAULT_MODEL:
            loss, parts = tinydet.loss(model(images), targets, tuple(images.shape[-2:]))
        else:
            tv_targets = [{"boxes": t["boxes"], "labels": t["labels"] + 1} for t in targets]  # 0 = background
            parts = model(list(images), tv_targets)
            loss = sum(parts.values())
            parts = {k: v.detach() for k, v in parts.items()}
        sums = {"count": n, "loss": loss.detach() * n}
        sums.update({k: v * n for k, v in parts.items()})
        return loss, sums

    def before_evaluate(self, model: nn.Module, ctx) -> None:
        """DDP keeps parameters in step but each rank's last forward moved its own BatchNorm statistics: average
        them, so every rank evaluates (and rank 0 saves) the same model."""
        if ctx.distributed:
            import torch.distributed as dist

            from dlbox.engine.batchnorm import bn_layers

            for m in bn_layers(model):
                for buf in (m.running_mean, m.running_var):
                    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                    buf /= ctx.world_size

    def eval_step(self, model: nn.Module, batch):  # the engine calls evaluate() instead (COCO mAP)
        return {"count": batch[0].shape[0]}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader, ctx, cfg) -> dict[str, float]:
        """COCO metrics over the whole validation set: each rank predicts its shard, rank 0 runs COCOeval."""
        results = self.predict_loader(model, loader, ctx)
        gathered = distributed.gather_objects(results, ctx)
        metrics = None
        if ctx.is_main:
            dets = [d for part in gathered for d in part]
            m = coco_eval(self.val_gt, dets)
            metrics = {k: m[k] for k in MAIN_METRICS if m.get(k) is not None}
        return distributed.broadcast_object(metrics, ctx)

    def predict_loader(self, model: nn.Module, loader, ctx) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        images_meta = {int(im["id"]): im for im in self.val_set.images}
        for images, targets in loader:
            images = to_device(images, ctx.device, self.cfg.channels_last)
            for (boxes, scores, labels), t in zip(detect_torch(model, self.cfg.model, images), targets, strict=True):
                iid = int(t["image_id"])
                im = images_meta[iid]
                boxes = boxes / float(t["scale"])
                boxes[:, 0::2] = boxes[:, 0::2].clip(0, im["width"])
                boxes[:, 1::2] = boxes[:, 1::2].clip(0, im["height"])
                cats = np.array([self.cat_ids[int(k)] for k in labels], dtype=np.int64)
                results += to_coco_results(iid, boxes, scores, cats)
        return results

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: what evaluate/predict/export need to rebuild the detector."""
        return {"classes": list(self.classes), "category_ids": list(self.cat_ids), "model_name": self.cfg.model,
                "img_size": self.cfg.size}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state.get("classes", self.classes)) != list(self.classes):
            raise UserError(f"the run was trained on classes {state['classes']} but the data has {self.classes}",
                            "resume with the data the run was started with")  # fmt: skip


def log_sample_images(task: DetectTask, run_dir: str, step: int) -> int:
    """The best checkpoint's detections on a few validation images, drawn, in the run's TensorBoard
    (the engine owns the per-epoch scalars; the images are written once the run has its best.pt)."""
    import numpy as np
    from PIL import Image

    from dlbox.engine.metrics import summary_writer
    from dlbox.tasks.detect.draw import draw_detections
    from dlbox.tasks.detect.inference import load_detector

    n = min(task.cfg.tb_images, len(task.val_set) if task.val_set is not None else 0)
    if n == 0:
        return 0
    det = load_detector(run_dir)
    writer = summary_writer(Path(run_dir) / "tensorboard")
    try:
        for i in range(n):
            image, _ = task.val_set[i]  # (3, S, S) in [0, 1]
            boxes, scores, labels = det.detect(image[None])[0]
            keep = scores >= 0.3
            pil = Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
            drawn = draw_detections(pil, boxes[keep], scores[keep], [det.classes[k] for k in labels[keep]])
            writer.add_image(f"val/detections/{i}", np.asarray(drawn), step, dataformats="HWC")
    finally:
        writer.close()
    return n


def train_worker(cfg: DetectConfig) -> dict[str, Any] | None:
    task = DetectTask(cfg)
    result = fit(task, cfg)
    if result is None:
        return None
    best_epoch = result.best.get("epoch")
    record = result.best_record
    images = log_sample_images(task, result.run_dir, int(record.get("step", 0))) if record else 0
    return {
        "run_dir": result.run_dir,
        "model": cfg.model,
        "AP50": record.get("val/AP50"),
        "AP": record.get("val/AP"),
        "best_epoch": best_epoch,
        "epochs": result.epochs,
        "seconds": round(result.seconds, 2),
        "images_per_sec": round(result.images_per_sec, 1),
        "processes": result.world_size,
        "identical_weights": result.identical_weights,
        "classes": list(task.classes),
        "img_size": cfg.size,
        "tensorboard_images": images,
    }


def train(cfg: DetectConfig) -> dict[str, Any] | None:
    """Train (in the processes ``cfg`` asks for); returns the summary on rank 0."""
    if cfg.resume:
        log(f"resuming {cfg.resume}")
    return distributed.run(cfg, train_worker, cfg)


def render(r: dict[str, Any]) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}"

    return (
        f"{'run':<12} {r['run_dir']}\n{'model':<12} {r['model']} ({len(r['classes'])} classes, {r['img_size']} px)\n"
        f"{'val AP50':<12} {pct(r['AP50'])}\n{'val AP':<12} {pct(r['AP'])}\n"
        f"{'best epoch':<12} {r['best_epoch']} of {r['epochs']}\n"
        f"{'time':<12} {r['seconds']:.1f} s ({r['images_per_sec']:.0f} images/s, {r['processes']} process(es))"
    )
