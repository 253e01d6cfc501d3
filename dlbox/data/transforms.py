"""Augmentation presets (torchvision transforms v2) and evaluation transforms."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PRESETS = ("none", "light", "standard")


def build_transforms(preset: str, img_size: int, mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD, train: bool = True) -> v2.Compose:  # fmt: skip
    """PIL image -> normalised float tensor (3, img_size, img_size).

    Evaluation (and ``none``): resize to 1/0.875 of the size and centre-crop, as ImageNet models expect; images
    already at most that size (small sample data) are resized straight to the size instead, keeping the whole
    object. light: random resized crop (scale 0.7-1) and horizontal flip. standard: random resized crop
    (0.25-1), flip and TrivialAugmentWide.
    """
    if preset not in PRESETS:
        from dlbox.base.errors import UserError, close_matches

        raise UserError(f"unknown augment preset {preset!r}", close_matches(preset, PRESETS) or f"one of {', '.join(PRESETS)}")
    tail = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    rgb = _ToRGB()
    if not train or preset == "none":
        return v2.Compose([rgb, _EvalResize(img_size), *tail])
    if preset == "light":
        aug = [v2.RandomResizedCrop(img_size, scale=(0.7, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    else:
        aug = [v2.RandomResizedCrop(img_size, scale=(0.25, 1.0), antialias=True), v2.RandomHorizontalFlip(),
               v2.TrivialAugmentWide()]  # fmt: skip
    return v2.Compose([rgb, *aug, *tail])


class _ToRGB(torch.nn.Module):
    """Grayscale, palette and RGBA images become RGB (models take 3 channels)."""

    def forward(self, im):
        return im.convert("RGB") if hasattr(im, "convert") and im.mode != "RGB" else im


class _EvalResize(torch.nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.big = v2.Compose([v2.Resize(int(round(size / 0.875)), antialias=True), v2.CenterCrop(size)])
        self.small = v2.Resize((size, size), antialias=True)

    def forward(self, im):
        w, h = im.size if hasattr(im, "size") and not callable(im.size) else (im.shape[-1], im.shape[-2])
        return self.big(im) if min(w, h) > self.size / 0.875 else self.small(im)
