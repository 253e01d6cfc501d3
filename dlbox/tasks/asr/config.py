"""The options of `dlbox asr train` (torch-free, so the CLI registers them without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dlbox.base.errors import UserError
from dlbox.config import REQUIRED, opt, positional
from dlbox.engine.config import EngineConfig
from dlbox.tasks.asr.prepare import CORPORA


@dataclass
class AsrConfig(EngineConfig):
    data: str | None = opt(None, "training data: a Kaldi data directory (wav.scp, text, utt2spk[, segments])")
    dev: str | None = opt(None, "development data directory: CER after every epoch picks best.pt")
    allow_pipes: bool = opt(False, "run the shell commands of `wav.scp` lines ending in '|' (they come from a data file)")
    cmvn: Literal["global", "speaker", "none"] = opt(
        "global", "global: mean/variance over the training set, stored in the model (and its ONNX export); "
        "speaker: per speaker from utt2spk, as Kaldi's apply-cmvn (not inside the export)")  # fmt: skip
    d_model: int = opt(144, "width of the encoder", ge=8, le=2048)
    layers: int = opt(2, "self-attention + convolution blocks", ge=1, le=48)
    heads: int = opt(4, "attention heads", ge=1, le=64)
    kernel: int = opt(15, "depthwise convolution kernel of each block (frames after subsampling)", ge=1, le=63)
    dropout: float = opt(0.1, "dropout", ge=0, lt=1)
    spec_augment: bool = opt(True, "SpecAugment: random frequency and time masks on training features")
    speed_perturb: bool = opt(False, "speed perturbation: each epoch plays every utterance at 0.9, 1.0 or 1.1x")
    feature_cache: str | None = opt(
        None, "folder caching every utterance's fbank on disk (computed once, read back by later runs; a changed "
        "wav or option makes a new entry); about the size of the 16-bit audio. Default: recomputed each run", output="dir")  # fmt: skip
    lr: float = opt(2e-3, "peak learning rate (AdamW)", gt=0, le=1e4)
    weight_decay: float = opt(0.01, "weight decay", ge=0, le=10)
    warmup_epochs: float = opt(1.0, "linear warm-up, then cosine decay to 0", ge=0, le=100_000)
    max_duration: float = opt(30.0, "skip training utterances longer than this (seconds)", gt=0, le=3600)
    epochs: int = opt(30, "epochs", ge=1, le=100_000)
    batch_size: int = opt(16, "utterances per batch and process (padded to the longest)", ge=1, le=65536)

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
        if self.feature_cache:
            from dlbox.base.outputs import check_output

            check_output(self.feature_cache, "dir", "--feature-cache")


# The other commands' arguments (`dlbox asr prepare|synth|fix|transcribe|evaluate|export`), declared for
# dlbox.cliutil.Command.
MODEL = "a run directory, a checkpoint, an .onnx export (tokens.txt beside it), or hub:NAME"
BEAM = "1: greedy search; N > 1: CTC prefix beam search of width N"
THREADS = "intra-op threads (default: the runtime's)"
Backend = Literal["auto", "sherpa-onnx"]
BACKEND = "auto: PyTorch for runs, onnxruntime for .onnx; sherpa-onnx: an .onnx export through sherpa-onnx"
ALLOW_PIPES = "run wav.scp entries that are shell commands (trusted data only)"


@dataclass(kw_only=True)
class PrepareArgs:
    corpus: str = positional("which corpus layout", choices=CORPORA)
    corpus_dir: str = positional("the folder the corpus was extracted into (for folder: the recordings)", output=False)
    out: str = opt(REQUIRED, "where the data directories go (train/, dev/, test/)", output="dir")
    transcripts: str | None = opt(None, "folder only: a file of 'NAME TEXT' lines")


@dataclass(kw_only=True)
class SynthArgs:
    out: str = opt(REQUIRED, "output folder", output="dir")
    train: int = opt(240, "training utterances (default: 240)", ge=1, le=100_000)
    test: int = opt(40, "test utterances, sentences not in training (default: 40)", ge=1, le=100_000)
    seed: int = opt(0, "(default: 0)", ge=0, le=2**32 - 1)


@dataclass(kw_only=True)
class FixArgs:
    data: str = positional("a Kaldi data directory (rewritten in place)")


@dataclass(kw_only=True)
class TranscribeArgs:
    model: str = positional(MODEL)
    beam: int = opt(1, BEAM, ge=1, le=1000)
    threads: int | None = opt(None, THREADS, ge=1, le=1024)
    backend: Backend = opt("auto", BACKEND)
    allow_pipes: bool = opt(False, ALLOW_PIPES)
    inputs: list[str] = positional("wav/flac files, folders, a wav.scp, or a data directory")


@dataclass(kw_only=True)
class EvaluateArgs:
    model: str = positional(MODEL)
    beam: int = opt(1, BEAM, ge=1, le=1000)
    threads: int | None = opt(None, THREADS, ge=1, le=1024)
    backend: Backend = opt("auto", BACKEND)
    allow_pipes: bool = opt(False, ALLOW_PIPES)
    data: str = opt(REQUIRED, "a Kaldi data directory with reference text")
    worst: int = opt(5, "how many of the worst utterances to list (default: 5)", ge=0, le=10**6)
    out: str | None = opt(None, "write every utterance's reference, hypothesis and CER to this TSV file", output="file")


@dataclass(kw_only=True)
class ExportArgs:
    model: str = positional("a run directory or checkpoint")
    format: Literal["onnx"] = opt("onnx", "(default: onnx)")
    out: str | None = opt(None, "output file (default: RUN/model.onnx; tokens.txt goes beside it)", output="file")
    register: str | None = opt(None, "also register model.onnx + tokens.txt as the next version of NAME in MLflow's "
                               "model registry (docs/track.md)", metavar="NAME")
