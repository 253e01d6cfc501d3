"""The options of `dlbox asr train` (torch-free, so the CLI registers them without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dlbox.config import opt
from dlbox.engine.config import EngineConfig
from dlbox.errors import UserError


@dataclass
class AsrConfig(EngineConfig):
    data: str | None = opt(None, "training data: a Kaldi data directory (wav.scp, text, utt2spk[, segments])")
    dev: str | None = opt(None, "development data directory: CER after every epoch picks best.pt")
    allow_pipes: bool = opt(False, "run the shell commands of `wav.scp` lines ending in '|' (they come from a data file)")
    cmvn: Literal["global", "speaker", "none"] = opt(
        "global", "global: mean/variance over the training set, stored in the model (and its ONNX export); "
        "speaker: per speaker from utt2spk, as Kaldi's apply-cmvn (not inside the export)")  # fmt: skip
    d_model: int = opt(144, "width of the encoder", ge=8)
    layers: int = opt(2, "self-attention + convolution blocks", ge=1)
    heads: int = opt(4, "attention heads", ge=1)
    kernel: int = opt(15, "depthwise convolution kernel of each block (frames after subsampling)", ge=1)
    dropout: float = opt(0.1, "dropout", ge=0, lt=1)
    spec_augment: bool = opt(True, "SpecAugment: random frequency and time masks on training features")
    speed_perturb: bool = opt(False, "speed perturbation: each epoch plays every utterance at 0.9, 1.0 or 1.1x")
    feature_cache: str | None = opt(
        None, "folder caching every utterance's fbank on disk (computed once, read back by later runs; a changed "
        "wav or option makes a new entry); about the size of the 16-bit audio. Default: recomputed each run")  # fmt: skip
    lr: float = opt(2e-3, "peak learning rate (AdamW)", gt=0)
    weight_decay: float = opt(0.01, "weight decay", ge=0)
    warmup_epochs: float = opt(1.0, "linear warm-up, then cosine decay to 0", ge=0)
    max_duration: float = opt(30.0, "skip training utterances longer than this (seconds)", gt=0)
    epochs: int = opt(30, "epochs", ge=1)
    batch_size: int = opt(16, "utterances per batch and process (padded to the longest)", ge=1)

    def validate(self) -> None:
        super().validate()
        if not self.data and not self.resume:
            raise UserError("--data is required", "pass a Kaldi data directory, e.g. --data data/train")
        if self.d_model % self.heads:
            raise UserError(f"--d-model {self.d_model} is not a multiple of --heads {self.heads}", "e.g. --d-model 144 --heads 4")
        if self.layers < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise UserError("--layers must be >= 1 and --kernel an odd number >= 1")
        if not 0 <= self.dropout < 1:
            raise UserError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.feature_cache and Path(self.feature_cache).exists() and not Path(self.feature_cache).is_dir():
            raise UserError(f"--feature-cache {self.feature_cache!r} is a file, not a folder", "pass a folder (created if missing)")
