"""A small Conformer-style CTC model: CMVN -> 4x convolutional subsampling -> blocks of self-attention,
depthwise convolution and feed-forward -> per-frame log-probabilities over the characters (blank = 0).

The forward signature is the one sherpa-onnx expects of a WeNet CTC model, so the ONNX export is this module
as it is: ``(x (N, T, 80) raw fbank, x_lens (N,) int64) -> (log_probs (N, T', V), log_probs_lens (N,))``.
CMVN lives in buffers, so the exported graph normalises its own input.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

SUBSAMPLING = 4
MIN_FRAMES = 7  # the two stride-2 3x3 convolutions need 7 frames for one output


def subsampled_lengths(x_lens: torch.Tensor) -> torch.Tensor:
    return ((x_lens - 1) // 2 - 1) // 2


class Subsampling(nn.Module):
    """(N, T, F) -> (N, T', d) with T' = ((T - 1) // 2 - 1) // 2."""

    def __init__(self, feat_dim: int, channels: int, d_model: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, channels, 3, 2), nn.ReLU(), nn.Conv2d(channels, channels, 3, 2), nn.ReLU())
        f = ((feat_dim - 1) // 2 - 1) // 2
        self.out = nn.Linear(channels * f, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x.unsqueeze(1))  # (N, C, T', F')
        n, c, t, f = x.shape
        return self.out(x.transpose(1, 2).reshape(n, t, c * f))


class SelfAttention(nn.Module):
    """Multi-head self-attention with a key padding mask, in plain ops (exports to any ONNX runtime)."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.h, self.dk).permute(2, 0, 3, 1, 4)  # each (N, H, T, dk)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dk)  # (N, H, T, T)
        scores = scores.masked_fill(pad[:, None, None, :], -1e4)
        att = self.drop(scores.softmax(dim=-1))
        return self.proj((att @ v).transpose(1, 2).reshape(n, t, d))


class ConvModule(nn.Module):
    """Pointwise -> GLU -> depthwise -> LayerNorm -> SiLU -> pointwise; padded frames are zeroed first so
    they cannot leak into real ones."""

    def __init__(self, d: int, kernel: int, dropout: float):
        super().__init__()
        self.pw1 = nn.Conv1d(d, 2 * d, 1)
        self.dw = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d)
        self.norm = nn.LayerNorm(d)
        self.pw2 = nn.Conv1d(d, d, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        x = x.masked_fill(pad[:, :, None], 0.0).transpose(1, 2)  # (N, d, T)
        x = F.glu(self.pw1(x), dim=1)
        x = self.dw(x.masked_fill(pad[:, None, :], 0.0))
        x = F.silu(self.norm(x.transpose(1, 2))).transpose(1, 2)
        return self.drop(self.pw2(x).transpose(1, 2))


class Block(nn.Module):
    def __init__(self, d: int, heads: int, kernel: int, dropout: float):
        super().__init__()
        self.n1, self.att = nn.LayerNorm(d), SelfAttention(d, heads, dropout)
        self.n2, self.conv = nn.LayerNorm(d), ConvModule(d, kernel, dropout)
        self.n3 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.SiLU(), nn.Dropout(dropout), nn.Linear(4 * d, d), nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.att(self.n1(x), pad))
        x = x + self.conv(self.n2(x), pad)
        return x + self.ff(self.n3(x))


class CtcModel(nn.Module):
    def __init__(self, vocab_size: int, feat_dim: int = 80, d_model: int = 144, layers: int = 2, heads: int = 4,
                 kernel: int = 15, dropout: float = 0.1, channels: int = 32):  # fmt: skip
        super().__init__()
        self.hparams: dict[str, Any] = {"vocab_size": vocab_size, "feat_dim": feat_dim, "d_model": d_model, "layers": layers,
                                        "heads": heads, "kernel": kernel, "dropout": dropout, "channels": channels}  # fmt: skip
        self.register_buffer("cmvn_mean", torch.zeros(feat_dim))
        self.register_buffer("cmvn_istd", torch.ones(feat_dim))
        self.subsample = Subsampling(feat_dim, channels, d_model)
        self.blocks = nn.ModuleList(Block(d_model, heads, kernel, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def set_cmvn(self, mean, istd) -> None:
        self.cmvn_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.cmvn_istd.copy_(torch.as_tensor(istd, dtype=torch.float32))

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (N, T, 80) raw fbank, x_lens: (N,) int64 -> log_probs (N, T', V), log_probs_lens (N,) int64."""
        x = (x - self.cmvn_mean) * self.cmvn_istd
        h = self.subsample(x)  # (N, T', d)
        lens = subsampled_lengths(x_lens)
        pad = torch.arange(h.shape[1], device=h.device)[None, :] >= lens[:, None]  # (N, T') True = padding
        for block in self.blocks:
            h = block(h, pad)
        return self.head(self.norm(h)).log_softmax(dim=-1), lens


def build(hparams: dict[str, Any]) -> CtcModel:
    return CtcModel(**hparams)
