"""MTCNN face detection (Zhang et al. 2016): P-Net, R-Net, O-Net cascade -> boxes, scores, 5 landmarks.

Our own implementation of the cascade; the networks' module names are those of facenet-pytorch so that the
weight files it ships (``facenet_pytorch/data/{pnet,rnet,onet}.pt``, MIT licence) load as they are. The
stages follow the original MATLAB/facenet code: an image pyramid scanned by P-Net (12 px windows, stride 2),
NMS per scale then across scales, box regression and squaring, R-Net on 24x24 crops, O-Net on 48x48 crops
(landmarks), and a final "Min"-overlap NMS. Coordinates are pixels of the input image, (x1, y1, x2, y2).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms

from dlbox.base.errors import UserError

WEIGHT_FILES = ("pnet.pt", "rnet.pt", "onet.pt")
HUB_ENTRY = "mtcnn"


class PNet(nn.Module):
    """12x12 proposal net, fully convolutional: (N, 3, H, W) -> box offsets (N, 4, h, w), face prob (N, 2, h, w)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """24x24 refinement net: (N, 3, 24, 24) -> box offsets (N, 4), face prob (N, 2)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The weights were converted from Caffe/TF, which flatten (W, H, C): permute before flattening.
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """48x48 output net: (N, 3, 48, 48) -> box offsets (N, 4), landmarks (N, 10: 5 x then 5 y), face prob (N, 2)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), F.softmax(self.dense6_1(x), dim=1)


@dataclass
class Face:
    box: np.ndarray  # (4,) x1, y1, x2, y2 in input pixels
    score: float
    landmarks: np.ndarray  # (5, 2) x, y: left eye, right eye, nose, left mouth corner, right mouth corner

    def as_dict(self) -> dict:
        return {"box": [round(float(v), 2) for v in self.box], "score": round(self.score, 5),
                "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks]}  # fmt: skip


def find_weights(weights_dir: str | Path | None = None) -> dict[str, Path]:
    """The three weight files: ``weights_dir``, else $DLBOX_MTCNN_WEIGHTS, else the installed facenet-pytorch
    wheel's data folder (located without importing it), else the hub entry ``mtcnn`` (cache/mirrors)."""
    candidates: list[Path] = []
    for d in (weights_dir, os.environ.get("DLBOX_MTCNN_WEIGHTS")):
        if d:
            candidates.append(Path(d))
            break
    else:
        spec = importlib.util.find_spec("facenet_pytorch")
        if spec is not None and spec.submodule_search_locations:
            candidates.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    for d in candidates:
        if all((d / f).is_file() for f in WEIGHT_FILES):
            return {f: d / f for f in WEIGHT_FILES}
    if weights_dir is not None:
        raise UserError(f"{weights_dir} does not hold {', '.join(WEIGHT_FILES)}",
                        "pass the folder with the three MTCNN files (facenet-pytorch's data/ folder)")  # fmt: skip
    from dlbox.hub import catalog, fetch
    from dlbox.hub import settings as hub_settings

    entry = catalog.get(HUB_ENTRY)
    paths = fetch.ensure(entry, list(entry.files), hub_settings.load())
    return {f: Path(paths[f]) for f in WEIGHT_FILES}


def _load(net: nn.Module, path: Path) -> nn.Module:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as e:  # a truncated or foreign file: say which one
        raise UserError(f"cannot load MTCNN weights {path}: {str(e).splitlines()[0][:120]}",
                        "reinstall facenet-pytorch or fetch them again with `dlbox hub download mtcnn`") from None  # fmt: skip
    return net.eval()


class MTCNN:
    """``MTCNN().detect(image) -> [Face, ...]`` sorted by score, highest first. ``image``: PIL or (H, W, 3) uint8."""

    def __init__(self, min_face_size: int = 20, thresholds=(0.6, 0.7, 0.7), factor: float = 0.709,
                 weights_dir: str | Path | None = None, device: str | torch.device = "cpu"):  # fmt: skip
        if min_face_size < 12:
            raise UserError(f"--min-face-size must be at least 12 pixels, got {min_face_size}",
                            "MTCNN's smallest window is 12 px")  # fmt: skip
        self.min_face_size, self.thresholds, self.factor = min_face_size, tuple(thresholds), factor
        self.device = torch.device(device)
        files = find_weights(weights_dir)
        self.pnet = _load(PNet(), files["pnet.pt"]).to(self.device)
        self.rnet = _load(RNet(), files["rnet.pt"]).to(self.device)
        self.onet = _load(ONet(), files["onet.pt"]).to(self.device)

    def scales(self, h: int, w: int) -> list[float]:
        """The pyramid: the smallest face maps to 12 px, then shrink by ``factor`` while the image is >= 12 px."""
        m = 12.0 / self.min_face_size
        minl, s, out = min(h, w) * m, m, []
        while minl >= 12:
            out.append(s)
            s, minl = s * self.factor, minl * self.factor
        return out

    @torch.no_grad()
    def detect(self, image) -> list[Face]:
        arr = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise UserError(f"expected an RGB image, got an array of shape {arr.shape}")
        img = torch.as_tensor(np.array(arr, dtype=np.uint8), device=self.device).permute(2, 0, 1)[None].float()  # (1,3,H,W)
        h, w = arr.shape[:2]
        boxes = self._stage1(img, h, w)  # (N, 5): x1 y1 x2 y2 score
        if len(boxes):
            boxes = self._stage2(img, boxes, h, w)
        if not len(boxes):
            return []
        boxes, points = self._stage3(img, boxes, h, w)
        return [Face(b[:4].numpy(), float(b[4]), p.numpy()) for b, p in zip(boxes, points, strict=True)]

    # --- the three stages ---------------------------------------------------------------------------------
    def _stage1(self, img, h, w) -> torch.Tensor:
        found = []
        for scale in self.scales(h, w):
            x = F.interpolate(img, size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
            reg, prob = self.pnet(_normalise(x))  # (1, 4, h', w'), (1, 2, h', w')
            cand = _window_boxes(reg[0], prob[0, 1], scale, self.thresholds[0])  # (K, 9)
            found.append(cand[nms(cand[:, :4], cand[:, 4], 0.5)])
        cand = torch.cat(found) if found else torch.zeros(0, 9, device=img.device)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)]
        # Regression here uses the width without +1 (as the reference cascade does at this stage).
        wh = (cand[:, 2:4] - cand[:, 0:2]).repeat(1, 2)
        boxes = torch.cat([cand[:, :4] + cand[:, 5:9] * wh, cand[:, 4:5]], dim=1)
        return _square(boxes)

    def _stage2(self, img, boxes, h, w) -> torch.Tensor:
        crops, boxes = _crops(img, boxes, h, w, 24)
        if not len(boxes):
            return boxes
        reg, prob = _batched(self.rnet, crops)
        keep = prob[:, 1] > self.thresholds[1]
        boxes = torch.cat([boxes[keep, :4], prob[keep, 1:2]], dim=1)
        reg = reg[keep]
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_regress(boxes[pick], reg[pick]))

    def _stage3(self, img, boxes, h, w) -> tuple[torch.Tensor, torch.Tensor]:
        crops, boxes = _crops(img, boxes, h, w, 48)
        if not len(boxes):
            return boxes, torch.zeros(0, 5, 2)
        reg, pts, prob = _batched(self.onet, crops)
        keep = prob[:, 1] > self.thresholds[2]
        boxes, reg, pts = torch.cat([boxes[keep, :4], prob[keep, 1:2]], dim=1), reg[keep], pts[keep]
        # Landmarks are fractions of the (pre-regression) box; the box spans x1..x2 inclusive (+1).
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = torch.stack([bw * pts[:, :5] + boxes[:, 0:1] - 1, bh * pts[:, 5:] + boxes[:, 1:2] - 1], dim=2)  # (N,5,2)
        boxes = _regress(boxes, reg)
        pick = nms_min(boxes[:, :4], boxes[:, 4], 0.7)
        return boxes[pick].cpu(), points[pick].cpu()


# --- helpers ---------------------------------------------------------------------------------------------
def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - 127.5) * 0.0078125  # pixels to about [-1, 1], as the networks were trained


def _batched(net: nn.Module, x: torch.Tensor, size: int = 512):
    outs = [net(x[i : i + size]) for i in range(0, len(x), size)]
    return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))


def _window_boxes(reg: torch.Tensor, prob: torch.Tensor, scale: float, threshold: float) -> torch.Tensor:
    """P-Net output cells over ``threshold`` -> (K, 9): box in image pixels, score, 4 offsets.

    reg: (4, h, w), prob: (h, w). Cell (y, x) sees the 12x12 window at (2x, 2y) of the scaled image."""
    mask = prob >= threshold
    yx = mask.nonzero()  # (K, 2)
    xy = yx.flip(1).to(reg.dtype)
    q1 = ((2 * xy + 1) / scale).floor()
    q2 = ((2 * xy + 12) / scale).floor()
    return torch.cat([q1, q2, prob[mask][:, None], reg[:, mask].T], dim=1)


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply the (N, 4) offsets, fractions of the box size (inclusive pixel extent, +1)."""
    wh = torch.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1], dim=1).repeat(1, 2)
    out = boxes.clone()
    out[:, :4] = boxes[:, :4] + reg * wh
    return out


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square of its longer side, about the same centre."""
    out = boxes.clone()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2:4] = out[:, 0:2] + side[:, None]
    return out


def _crops(img: torch.Tensor, boxes: torch.Tensor, h: int, w: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of the boxes (clipped to the image, 1-based inclusive like the reference) resized to size x size,
    normalised; the boxes that gave a non-empty crop."""
    b = boxes[:, :4].trunc().int().cpu().numpy()
    x1, y1 = np.maximum(b[:, 0], 1), np.maximum(b[:, 1], 1)
    x2, y2 = np.minimum(b[:, 2], w), np.minimum(b[:, 3], h)
    ok = (y2 > y1 - 1) & (x2 > x1 - 1)
    crops = [F.interpolate(img[:, :, y1[k] - 1 : y2[k], x1[k] - 1 : x2[k]], size=(size, size), mode="area")
             for k in np.flatnonzero(ok)]  # fmt: skip
    if not crops:
        return torch.zeros(0, 3, size, size, device=img.device), boxes[:0]
    return _normalise(torch.cat(crops)), boxes[torch.as_tensor(ok, device=boxes.device)]


def nms_min(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """NMS where overlap = intersection / the smaller area (MTCNN's last stage), inclusive pixel extents.

    Drops a box inside a larger one with a higher score, which IoU-NMS keeps. Indices by decreasing score."""
    if not len(boxes):
        return torch.zeros(0, dtype=torch.long)
    b, s = boxes.detach().cpu().double(), scores.detach().cpu().double()
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    order = torch.argsort(s, descending=True, stable=True)
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(int(i))
        iw = (torch.minimum(b[i, 2], b[rest, 2]) - torch.maximum(b[i, 0], b[rest, 0]) + 1).clamp(min=0)
        ih = (torch.minimum(b[i, 3], b[rest, 3]) - torch.maximum(b[i, 1], b[rest, 1]) + 1).clamp(min=0)
        overlap = iw * ih / torch.minimum(area[i], area[rest])
        order = rest[overlap <= threshold]
    return torch.as_tensor(keep, dtype=torch.long)
