"""tinydet: a small anchor-free detector for CPUs and embedded boards (the tiny-YOLO role).

Design (see docs/detect.md):
- Backbone: plain 3x3 conv + BatchNorm + ReLU, stride-2 downsampling and residual blocks per stage,
  widths 16-32-64-128 (~0.5 M parameters). Dense 3x3 convolutions rather than depthwise ones: with so few
  channels they are faster on CPUs, in PyTorch training and in onnxruntime alike.
- Neck: a two-level FPN (stride 8 and 16, 64 channels): small objects (8 px) get a stride-8 cell of their
  own, large ones (64+ px) the wider receptive field of stride 16.
- Head (anchor-free like FCOS, shared by both levels): a box tower predicting objectness and the distances
  (l, t, r, b) from the cell centre to the box sides (softplus x stride), and a separate class tower
  predicting class logits; score = sigmoid(objectness) x softmax(class).
- Assignment: cells inside the box within 1.5 strides of its centre, on the level(s) whose size range
  holds the box; the cell holding the centre is always positive, so a 5 px box still gets one. A cell
  claimed by two boxes takes the smaller one.
- Loss: sigmoid focal loss on objectness (all cells), cross-entropy on the class and GIoU on the box
  (positive cells).
- Post-processing (`postprocess`): top-k, score threshold, class-wise NMS (torchvision's batched_nms),
  written with traceable tensor ops so the *same* function runs eagerly in PyTorch and inside the exported
  ONNX graph (NonMaxSuppression), which is what the parity check compares.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, generalized_box_iou_loss, sigmoid_focal_loss

STRIDES = (8, 16)
# Box sizes (longest side, input pixels) each level is trained on; the overlap lets mid-size boxes learn both.
SIZE_RANGES = ((0.0, 64.0), (32.0, float("inf")))
CENTER_RADIUS = 1.5  # in strides
# Loss weights: the class term is doubled so shape recognition does not lag behind localisation.
CLS_WEIGHT, BOX_WEIGHT = 2.0, 2.0


def conv_bn(cin: int, cout: int, k: int = 3, s: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.a = conv_bn(c, c // 2, 1)
        self.b = nn.Sequential(nn.Conv2d(c // 2, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return F.relu(x + self.b(self.a(x)))


class TinyDet(nn.Module):
    """``forward(x)`` with x (N, 3, H, W) RGB in [0, 1], H and W multiples of 16, returns raw head outputs
    (class logits (N, A, C), box distances (N, A, 4), objectness logits (N, A)) over A = H/8*W/8 + H/16*W/16
    cells (stride 8 first)."""

    def __init__(self, num_classes: int, widths: tuple[int, int, int, int] = (16, 32, 64, 128), neck: int = 64):
        super().__init__()
        self.num_classes = num_classes
        w1, w2, w3, w4 = widths
        self.register_buffer("mean", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1))
        self.stem = conv_bn(3, w1, 3, 2)  # /2
        self.stage2 = nn.Sequential(conv_bn(w1, w2, 3, 2), Residual(w2))  # /4
        self.stage3 = nn.Sequential(conv_bn(w2, w3, 3, 2), Residual(w3), Residual(w3))  # /8
        self.stage4 = nn.Sequential(conv_bn(w3, w4, 3, 2), Residual(w4), Residual(w4))  # /16
        self.lat3, self.lat4 = conv_bn(w3, neck, 1), conv_bn(w4, neck, 1)
        self.smooth3, self.smooth4 = conv_bn(neck, neck), conv_bn(neck, neck)
        # Decoupled towers: classification (which shape) and localisation (where, how big) need different
        # features; sharing one tower made the class loss stall near chance for several epochs.
        self.box_tower = nn.Sequential(conv_bn(neck, neck), conv_bn(neck, neck))
        self.cls_tower = nn.Sequential(conv_bn(neck, neck), conv_bn(neck, neck))
        self.cls = nn.Conv2d(neck, num_classes, 1)
        self.reg = nn.Conv2d(neck, 4, 1)
        self.obj = nn.Conv2d(neck, 1, 1)
        nn.init.constant_(self.obj.bias, -4.6)  # prior probability 0.01: focal loss starts stable
        nn.init.normal_(self.obj.weight, std=0.01)
        nn.init.normal_(self.cls.weight, std=0.01)
        nn.init.normal_(self.reg.weight, std=0.01)
        nn.init.zeros_(self.reg.bias)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        c3 = self.stage3(self.stage2(self.stem(x)))  # (N, 64, H/8, W/8)
        c4 = self.stage4(c3)  # (N, 128, H/16, W/16)
        p4 = self.lat4(c4)
        p3 = self.lat3(c3) + F.interpolate(p4, size=c3.shape[-2:], mode="nearest")
        return [self.smooth3(p3), self.smooth4(p4)]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls, reg, obj = [], [], []
        for f in self.features(x):
            t = self.box_tower(f)
            n = t.shape[0]
            cls.append(self.cls(self.cls_tower(f)).flatten(2).transpose(1, 2))  # (N, h*w, C)
            reg.append(self.reg(t).flatten(2).transpose(1, 2))  # (N, h*w, 4)
            obj.append(self.obj(t).reshape(n, -1))  # (N, h*w)
        return torch.cat(cls, 1), torch.cat(reg, 1), torch.cat(obj, 1)

    def detect(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded boxes (N, A, 4) xyxy in input pixels and scores (N, A, C)."""
        cls, reg, obj = self(x)
        pts, strides = points(x.shape[-2], x.shape[-1], x.device)
        boxes = decode(reg, pts, strides)
        scores = torch.sigmoid(obj)[..., None] * torch.softmax(cls, -1)
        return boxes, scores


def points(h: int, w: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres (A, 2) as (x, y) in input pixels and their strides (A,), stride 8 first."""
    pts, strides = [], []
    for s in STRIDES:
        hh, ww = -(-h // s), -(-w // s)
        ys, xs = torch.meshgrid(torch.arange(hh, device=device), torch.arange(ww, device=device), indexing="ij")
        pts.append(torch.stack([xs.reshape(-1), ys.reshape(-1)], 1).float() * s + s / 2)
        strides.append(torch.full((hh * ww,), float(s), device=device))
    return torch.cat(pts), torch.cat(strides)


def decode(reg: torch.Tensor, pts: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    ltrb = F.softplus(reg) * strides[:, None]  # (N, A, 4), distances >= 0
    return torch.cat([pts - ltrb[..., :2], pts + ltrb[..., 2:]], -1)


@torch.no_grad()
def assign(gt: torch.Tensor, pts: torch.Tensor, strides: torch.Tensor, img_w: int) -> torch.Tensor:
    """For each cell the index of its box in ``gt`` (G, 4) xyxy, or -1 (background). Returns (A,)."""
    A = pts.shape[0]
    if gt.numel() == 0:
        return torch.full((A,), -1, dtype=torch.long, device=pts.device)
    cx, cy = (gt[:, 0] + gt[:, 2]) / 2, (gt[:, 1] + gt[:, 3]) / 2  # (G,)
    size = torch.maximum(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1])
    px, py, s = pts[:, 0:1], pts[:, 1:2], strides[:, None]  # (A, 1)
    level_ok = torch.zeros(A, gt.shape[0], dtype=torch.bool, device=pts.device)
    offset = 0
    forced = []
    for st, (lo, hi) in zip(STRIDES, SIZE_RANGES, strict=True):
        n = int((strides == st).sum())
        ok = (size >= lo) & (size <= hi)  # (G,)
        level_ok[offset : offset + n] = ok[None, :]
        # The cell holding the box centre on this level.
        ww = -(-img_w // st)
        hh = n // ww
        col = (cx / st).long().clamp(0, ww - 1)
        row = (cy / st).long().clamp(0, hh - 1)
        forced.append((offset + row * ww + col, ok))
        offset += n
    inside = (px > gt[:, 0]) & (px < gt[:, 2]) & (py > gt[:, 1]) & (py < gt[:, 3])  # (A, G)
    near = ((px - cx).abs() < CENTER_RADIUS * s) & ((py - cy).abs() < CENTER_RADIUS * s)
    cand = inside & near & level_ok
    g_idx = torch.arange(gt.shape[0], device=pts.device)
    for idx, ok in forced:
        cand[idx[ok], g_idx[ok]] = True
    area = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]))[None, :].expand(A, -1)
    cost = torch.where(cand, area, torch.full_like(area, float("inf")))
    best, matched = cost.min(1)
    return torch.where(torch.isfinite(best), matched, torch.full_like(matched, -1))


def loss(model_out, targets: list[dict[str, torch.Tensor]], img_hw: tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its parts: objectness (focal, all cells), class (cross-entropy, positive cells), box
    (GIoU, positive cells); the first normalised by the number of positives, the others averaged over them."""
    cls, reg, obj = model_out
    pts, strides = points(img_hw[0], img_hw[1], cls.device)
    boxes = decode(reg, pts, strides)  # (N, A, 4)
    obj_t = torch.zeros_like(obj)
    pos_pred, pos_gt, pos_cls, pos_lbl = [], [], [], []
    for i, t in enumerate(targets):
        m = assign(t["boxes"], pts, strides, img_hw[1])
        pos = m >= 0
        if pos.any():
            obj_t[i, pos] = 1.0
            pos_pred.append(boxes[i, pos])
            pos_gt.append(t["boxes"][m[pos]])
            pos_cls.append(cls[i, pos])
            pos_lbl.append(t["labels"][m[pos]])
    num_pos = max(sum(len(p) for p in pos_pred), 1)
    l_obj = sigmoid_focal_loss(obj, obj_t, alpha=0.25, gamma=2.0, reduction="sum") / num_pos
    if pos_pred:
        l_box = generalized_box_iou_loss(torch.cat(pos_pred), torch.cat(pos_gt), reduction="mean")
        l_cls = F.cross_entropy(torch.cat(pos_cls), torch.cat(pos_lbl))
    else:
        l_box = l_cls = reg.sum() * 0.0
    total = l_obj + CLS_WEIGHT * l_cls + BOX_WEIGHT * l_box
    return total, {"loss_obj": l_obj.detach(), "loss_cls": l_cls.detach(), "loss_box": l_box.detach()}


def postprocess(boxes: torch.Tensor, scores: torch.Tensor, score_thresh: float = 0.05, iou_thresh: float = 0.6,
                pre_nms: int = 1000, max_det: int = 100) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image: boxes (A, 4), scores (A, C) -> kept boxes (K, 4), scores (K,), labels (K,) int64.

    Only traceable ops (static top-k size, masks, batched_nms), so torch.onnx.export puts it in the graph."""
    C = scores.shape[1]
    flat = scores.reshape(-1)
    k = min(pre_nms, flat.shape[0])
    top, idx = flat.topk(k)
    keep = top > score_thresh
    top, idx = top[keep], idx[keep]
    anchor = torch.div(idx, C, rounding_mode="floor")
    label = idx - anchor * C
    b = boxes[anchor]
    kept = batched_nms(b, top, label, iou_thresh)[:max_det]
    return b[kept], top[kept], label[kept]


class ExportWrapper(nn.Module):
    """(1, 3, S, S) in [0, 1] -> boxes (K, 4) xyxy input pixels, scores (K,), labels (K,): the whole detector."""

    def __init__(self, model: TinyDet, score_thresh: float, iou_thresh: float, max_det: int):
        super().__init__()
        self.model, self.score_thresh, self.iou_thresh, self.max_det = model, score_thresh, iou_thresh, max_det

    def forward(self, images: torch.Tensor):
        boxes, scores = self.model.detect(images)
        return postprocess(boxes[0], scores[0], self.score_thresh, self.iou_thresh, max_det=self.max_det)
