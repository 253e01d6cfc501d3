"""FLOP counting against a model whose FLOPs are counted by hand."""

from __future__ import annotations

import torch

from dlbox.bench.flops import TRAIN_FACTOR, forward_flops, step_flops
from dlbox.bench.models import TinyNet, tiny_flops


def test_flop_counter_matches_the_hand_count_of_the_tiny_cnn():
    # batch 2 at 32x32: conv1 3->8 (3x3) at 32x32, conv2 8->16 (3x3, stride 2) at 16x16, linear 16->10;
    # a multiply-add is 2 FLOPs
    by_hand = 2 * 2 * 32 * 32 * 8 * 3 * 9 + 2 * 2 * 16 * 16 * 16 * 8 * 9 + 2 * 2 * 16 * 10
    assert by_hand == 2_065_024
    assert forward_flops(TinyNet(), torch.randn(2, 3, 32, 32)) == by_hand


def test_hand_formula_follows_the_stride_on_odd_sizes():
    # 31x31 input: the stride-2 conv (padding 1) gives 16x16
    assert forward_flops(TinyNet(), torch.randn(3, 3, 31, 31)) == tiny_flops(3, 31, 31)
    assert (
        tiny_flops(3, 31, 31) == 2 * 3 * 31 * 31 * 8 * 3 * 9 + 2 * 3 * 16 * 16 * 16 * 8 * 9 + 2 * 3 * 16 * 10
    )


def test_a_training_step_counts_three_forwards():
    assert TRAIN_FACTOR == 3
    assert step_flops(1000, "train") == 3000 and step_flops(1000, "infer") == 1000


def test_resnet50_counts_the_published_4_1_gmac_per_image():
    from dlbox.bench.models import build

    gflop = forward_flops(build("resnet50"), torch.randn(1, 3, 224, 224)) / 1e9
    assert 8.0 < gflop < 8.4  # 4.1 GMAC x 2
