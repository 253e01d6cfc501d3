"""Precision per device: bf16 where the hardware has it, fp16 with loss scaling on older GPUs."""

from __future__ import annotations

import contextlib

import pytest
import torch

from dlbox.engine.device import effective_precision, grad_scaler


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_the_cpu_keeps_the_precision_asked_for(precision):
    assert effective_precision(precision, torch.device("cpu")) == precision


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp16")])
def test_bf16_on_a_gpu_without_bf16_units_becomes_fp16_with_loss_scaling(monkeypatch, native, expected):
    asked = {}

    def supported(including_emulation=True):
        asked["emulation"] = including_emulation
        return native

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    monkeypatch.setattr(torch.cuda, "device", lambda d: contextlib.nullcontext())
    assert effective_precision("bf16", torch.device("cuda", 0)) == expected
    assert asked["emulation"] is False  # emulated bf16 (a V100's) is slower than fp32: not taken as native
    assert effective_precision("fp32", torch.device("cuda", 0)) == "fp32"


def test_only_fp16_scales_the_loss():
    assert grad_scaler(torch.device("cpu"), "fp16").is_enabled()
    assert not grad_scaler(torch.device("cpu"), "bf16").is_enabled()
