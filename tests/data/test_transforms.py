"""Augmentation presets and evaluation transforms: PIL image -> normalised float tensor of the input size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dlbox.base.errors import UserError
from dlbox.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms


def _noise(size, mode="RGB") -> Image.Image:
    channels = {"RGB": 3, "L": 1}[mode]
    arr = np.random.default_rng(0).integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(arr.squeeze(-1) if channels == 1 else arr, mode)


@pytest.mark.parametrize("preset", ["none", "light", "standard"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("size", [(40, 40), (300, 200)], ids=["small", "large"])
def test_every_preset_gives_a_float_tensor_of_the_input_size(preset, train, size):
    x = build_transforms(preset, 32, train=train)(_noise(size))
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32


def test_grayscale_images_become_three_channels():
    x = build_transforms("light", 24, train=True)(_noise((30, 30), "L"))
    assert x.shape == (3, 24, 24)
    assert torch.allclose(x[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0], x[1] * IMAGENET_STD[1] + IMAGENET_MEAN[1], atol=1e-5)


def test_normalisation_uses_the_given_mean_and_std():
    grey = Image.new("RGB", (32, 32), (128, 128, 128))
    x = build_transforms("none", 32, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0), train=False)(grey)
    assert torch.allclose(x.mean(dim=(1, 2)), torch.tensor([128 / 255 / 0.5 - 1, (128 / 255 - 0.25) / 0.25, 128 / 255]), atol=1e-4)


def test_evaluation_is_deterministic_and_training_augments():
    im = _noise((64, 64))
    ev = build_transforms("standard", 48, train=False)
    tr = build_transforms("standard", 48, train=True)
    assert torch.equal(ev(im), ev(im))
    torch.manual_seed(0)
    assert not torch.equal(tr(im), tr(im))


def test_large_images_are_centre_cropped_keeping_their_aspect_at_evaluation():
    im = Image.new("RGB", (400, 200), (0, 0, 0))
    im.paste((255, 255, 255), (0, 0, 60, 200))  # a white band on the left, outside the centre crop
    x = build_transforms("none", 64, mean=(0, 0, 0), std=(1, 1, 1), train=False)(im)
    assert x.shape == (3, 64, 64) and x.max() < 0.05


def test_an_unknown_preset_is_a_user_error():
    with pytest.raises(UserError, match="did you mean 'light'"):
        build_transforms("lite", 32)
