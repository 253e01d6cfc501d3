"""A trained recogniser for inference, from a run directory, a checkpoint or our ONNX export (+ tokens.txt):
``log_probs(fbank)`` -> (T', V) per utterance, the same for PyTorch and onnxruntime; sherpa-onnx recognisers
(our export, hub models); one utterance through any of them (``transcribe_wave``); and ``predictor()``, what
``dlbox serve`` runs (the results of `asr transcribe --json`)."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlbox.base.errors import UserError, not_found
from dlbox.models.weights import WeightsSource, is_reference, resolve_weights
from dlbox.runtime.exported import RunsExported, is_export
from dlbox.runtime.inputs import default_name, int_option, no_more_options
from dlbox.runtime.predictor import Sample, TensorSpec
from dlbox.tasks.asr import audio, decode, features
from dlbox.tasks.asr.data import Vocab
from dlbox.tasks.asr.model import MIN_FRAMES, SUBSAMPLING


@dataclass
class Recognizer(RunsExported):
    vocab: Vocab
    model: Any = None  # CtcModel (PyTorch)
    exported: Any = None  # dlbox.runtime.exported.Exported of a dlbox export
    source: str = ""
    subsampling: int = SUBSAMPLING
    cmvn_mode: str = "global"

    def log_probs(self, feats: np.ndarray) -> np.ndarray:
        """(T, 80) raw fbank -> (T', V) log-probabilities."""
        if len(feats) < MIN_FRAMES:
            raise UserError(f"the audio is too short ({len(feats) * 10} ms)", f"the model needs at least {MIN_FRAMES * 10} ms")
        x = feats[None].astype(np.float32)
        x_lens = np.array([len(feats)], dtype=np.int64)
        if self.exported is not None:
            out = self.exported.run({"x": x, "x_lens": x_lens})
            return out["log_probs"][0, : int(out["log_probs_lens"][0])]
        import torch

        with torch.no_grad():
            lp, lens = self.model(torch.from_numpy(x), torch.from_numpy(x_lens))
        return lp[0, : int(lens[0])].numpy()


def load_recognizer(source: str | Path, threads: int | None = None) -> Recognizer:
    """A run directory (best.pt), a checkpoint file, or an .onnx export with tokens.txt beside it (also
    ``models:/NAME/VERSION``: the registered export)."""
    if str(source).startswith("models:/"):
        from dlbox.models import mlflow_registry

        source = mlflow_registry.local_path(str(source))
    p = Path(source)
    if is_export(p):
        return _load_export(p, threads)
    import torch

    from dlbox.engine import checkpoint
    from dlbox.tasks.asr.model import build

    ckpt = checkpoint.resolve(p, "best.pt") if p.is_dir() else checkpoint.resolve(p)
    state = checkpoint.load(ckpt)
    ts = state.get("task_state") or {}
    if state.get("task") != "asr" or "tokens" not in ts:
        raise UserError(f"{source} is not a dlbox asr run", "pass the run directory of `dlbox asr train`, or an .onnx export")
    if threads:
        torch.set_num_threads(threads)
    model = build(ts["hparams"])
    model.load_state_dict(state["model"])
    model.eval()
    return Recognizer(Vocab(ts["tokens"]), model=model, source=str(ckpt), cmvn_mode=ts.get("cmvn_mode", "global"))


def _load_export(p: Path, threads: int | None) -> Recognizer:
    """An export through the one loader; its tokens from the tokens.txt beside it (sherpa-onnx's layout), else
    from its metadata (``classes``)."""
    from dlbox.runtime.exported import load_exported

    if not p.is_file():
        raise UserError(f"{p} {not_found(p)}", "export one with `dlbox asr export RUN --format onnx`")
    ex = load_exported(p, threads=threads, task="asr")
    tokens = p.with_name("tokens.txt")
    if tokens.is_file():
        vocab = Vocab.load(tokens)
    elif ex.meta.get("classes"):
        vocab = Vocab(list(ex.meta["classes"]))
    else:
        raise UserError(f"{p} has no tokens.txt beside it", "keep the tokens.txt that `dlbox asr export` wrote next to the model")
    extra = ex.meta.get("extra", {})
    return Recognizer(vocab, exported=ex, source=str(p), subsampling=int(extra.get("subsampling_factor", SUBSAMPLING)),
                      cmvn_mode=extra.get("cmvn_mode", "global"))  # fmt: skip


def export_meta(rec: Recognizer) -> dict[str, Any]:
    """The export metadata (docs/export.md) of a recogniser: an export's own, else what exporting would write."""
    from dlbox.runtime.export import ExportMeta, InputFacts, weights_sha256

    if rec.exported is not None:
        return rec.exported.meta
    meta = ExportMeta(
        "asr", "ctc", [InputFacts("x", [-1, -1, features.NUM_BINS], "float32", "NTC"), InputFacts("x_lens", [-1], "int64", "N")],
        classes=list(rec.vocab.tokens),
        preprocessing={"sample_rate": 16000, "features": f"{features.NUM_BINS}-bin log-mel fbank, 25 ms window, 10 ms "
                       "shift (dlbox.tasks.asr.features, samples in 16-bit range); CMVN is inside the graph"},
        extra={"hparams": rec.model.hparams if rec.model is not None else {}, "cmvn_mode": rec.cmvn_mode,
               "subsampling_factor": rec.subsampling, "blank": 0, "decoding": "CTC, blank 0"},
        weights_sha256=weights_sha256(rec.model) if rec.model is not None else "",
    )  # fmt: skip
    return meta.to_dict()


# Recognisers of any kind (ours, sherpa-onnx's) and one utterance through them: `asr transcribe`, `asr evaluate`
# and the predictor below share these.


class SherpaRecognizer:
    """A sherpa-onnx OfflineRecognizer: our export (``model.onnx`` + ``tokens.txt``) or a hub model."""

    def __init__(self, kind: str, model: str, tokens: str, threads: int = 2):
        import sherpa_onnx

        make = {
            "wenet-ctc": lambda: sherpa_onnx.OfflineRecognizer.from_wenet_ctc(model=model, tokens=tokens, num_threads=threads),
            "paraformer": lambda: sherpa_onnx.OfflineRecognizer.from_paraformer(paraformer=model, tokens=tokens, num_threads=threads),
            "zipformer-ctc": lambda: sherpa_onnx.OfflineRecognizer.from_zipformer_ctc(model=model, tokens=tokens, num_threads=threads),
            "telespeech-ctc": lambda: sherpa_onnx.OfflineRecognizer.from_telespeech_ctc(model=model, tokens=tokens, num_threads=threads),
            "sense-voice": lambda: sherpa_onnx.OfflineRecognizer.from_sense_voice(model=model, tokens=tokens, num_threads=threads, use_itn=True),
        }  # fmt: skip
        if kind not in make:
            raise UserError(f"unknown sherpa-onnx model type {kind!r}", f"one of {', '.join(make)}")
        self.kind, self.recognizer, self.source = kind, make[kind](), model

    def transcribe(self, wave) -> dict[str, Any]:
        s = self.recognizer.create_stream()
        s.accept_waveform(audio.SAMPLE_RATE, wave)
        self.recognizer.decode_stream(s)
        r = s.result
        return {"text": r.text, "tokens": list(r.tokens), "timestamps": [round(t, 3) for t in r.timestamps]}


def hub_recognizer(spec: str | WeightsSource, threads: int = 2) -> SherpaRecognizer:
    """``hub:NAME`` of a sherpa-onnx model: its files through the hub's cache and mirrors (offline rules apply)."""
    src = spec if isinstance(spec, WeightsSource) else resolve_weights(spec)
    if src.kind != "sherpa-onnx":
        raise UserError(f"{src.spec} is not a sherpa-onnx speech model",
                        "see `dlbox hub list --task speech` (loader sherpa-onnx:...)")  # fmt: skip
    return SherpaRecognizer(src.loader.split(":", 1)[1], str(src.path), str(src.files["tokens.txt"]), threads)


def load(source: str, threads: int | None = None, backend: str = "auto"):
    """A run / checkpoint / .onnx file (PyTorch or onnxruntime; ``backend='sherpa-onnx'`` for our export
    through sherpa-onnx), ``hub:NAME``, or ``models:/NAME/VERSION`` (``@ALIAS``): a registered export, downloaded
    once with its tokens.txt."""
    if str(source).startswith("models:/"):
        from dlbox.models import mlflow_registry

        source = mlflow_registry.local_path(str(source))
    elif is_reference(source):  # hub:NAME
        return hub_recognizer(resolve_weights(source), threads or 2)
    if backend == "sherpa-onnx":
        p = Path(source)
        if p.suffix != ".onnx":
            raise UserError("--backend sherpa-onnx takes an .onnx export", "export first: dlbox asr export RUN --format onnx")
        return SherpaRecognizer("wenet-ctc", str(p), str(p.with_name("tokens.txt")), threads or 2)
    return load_recognizer(source, threads)


def transcribe_wave(rec, wave, beam: int = 1) -> dict[str, Any]:
    """One 16 kHz mono utterance -> {text, tokens, timestamps (s), ...} with our decoder or sherpa-onnx's."""
    if isinstance(rec, SherpaRecognizer):
        return rec.transcribe(wave)
    feats = features.fbank(wave)
    if rec.cmvn_mode == "speaker":  # no speaker here: the utterance's own statistics
        feats = features.Cmvn.compute([feats]).apply(feats)
    hyp = decode.decode(rec.log_probs(feats), beam)
    step = rec.subsampling * features.FRAME_SHIFT_S
    tokens = [rec.vocab.tokens[i] for i in hyp.ids]
    keep = [k for k, t in enumerate(tokens) if t not in ("<unk>",)]
    return {"text": "".join(tokens[k] for k in keep), "tokens": [tokens[k] for k in keep],
            "timestamps": [round(hyp.frames[k] * step, 3) for k in keep], "score": round(hyp.score, 3)}  # fmt: skip


class AsrPredictor:
    """Per utterance ``{"text", "tokens", "timestamps" (s), "score", "duration", "rtf"}`` (``score`` only from
    dlbox's own decoder), the fields of `asr transcribe --json`'s result (with ``file`` when the sample's info
    has one). Options of ``predict``: ``beam`` (default 1, greedy; dlbox models only)."""

    task = "asr"

    def __init__(self, rec: Any, name: str):
        self.rec, self.name = rec, name
        own = isinstance(rec, Recognizer)
        self.meta = {**(export_meta(rec) if own else {"task": "asr", "model_name": rec.kind, "classes": []}),
                     "backend": rec.backend if own else "sherpa-onnx"}  # fmt: skip
        self.inputs = [TensorSpec("x", "FP32", (-1, -1, 80)), TensorSpec("x_lens", "INT64", (-1,))] if own else []
        self.outputs = [TensorSpec("log_probs", "FP32", (-1, -1, len(rec.vocab))),
                        TensorSpec("log_probs_lens", "INT64", (-1,))] if own else []  # fmt: skip

    def decode(self, payload: bytes, content_type: str | None = None, **options: Any) -> Sample:
        no_more_options(dict(options), "no decode options")
        if not payload:
            raise UserError("the body is empty", "send a WAV, FLAC or OGG file")
        data, sr = audio._read(io.BytesIO(payload), "the body", 0.0, None)
        if data.shape[0] == 0:
            raise UserError("the audio holds no samples", "send a WAV file with samples in it")
        wave = audio.resample(data.mean(axis=1), sr)  # what `asr transcribe` does with a file
        return Sample(wave, {"duration": round(len(wave) / audio.SAMPLE_RATE, 3)})

    def predict(self, samples: list[Sample], **options: Any) -> list[dict[str, Any]]:
        beam = int_option(options, "beam", 1, 1, 64)
        no_more_options(options, "beam")
        if beam > 1 and not isinstance(self.rec, Recognizer):
            raise UserError("beam applies to dlbox's own decoder", "sherpa-onnx models decode greedily here")
        out = []
        for s in samples:
            t0 = time.perf_counter()
            r = transcribe_wave(self.rec, s.data, beam)
            dt = time.perf_counter() - t0
            dur = len(s.data) / audio.SAMPLE_RATE
            out.append({**({"file": s.info["file"]} if "file" in s.info else {}), **r, "duration": round(dur, 3),
                        "rtf": round(dt / dur, 4)})  # fmt: skip
        return out

    def infer(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not isinstance(self.rec, Recognizer):
            raise UserError("a sherpa-onnx model has no tensor-level interface here", "send audio to predict instead")
        no_more_options({k: 0 for k in tensors if k not in ("x", "x_lens")}, "x (N, T, 80) FP32, x_lens (N,) INT64")
        if "x" not in tensors or "x_lens" not in tensors:
            raise UserError("missing input tensor x or x_lens", "send x (N, T, 80) raw fbank and x_lens (N,)")
        x = np.ascontiguousarray(tensors["x"], dtype=np.float32)
        x_lens = np.ascontiguousarray(tensors["x_lens"], dtype=np.int64)
        if x.ndim != 3 or x.shape[2] != 80 or x_lens.shape != (len(x),):
            raise UserError(f"x must be (N, T, 80) and x_lens (N,), got {tuple(x.shape)} and {tuple(x_lens.shape)}")
        if self.rec.exported is not None:
            return self.rec.exported.run({"x": x, "x_lens": x_lens})
        import torch

        with torch.no_grad():
            lp, lens = self.rec.model(torch.from_numpy(x), torch.from_numpy(x_lens))
        return {"log_probs": lp.numpy(), "log_probs_lens": lens.numpy()}


def predictor(source: str | Path, name: str | None = None, threads: int | None = None, backend: str = "auto") -> AsrPredictor:
    """A ``dlbox.runtime.predictor.Predictor`` for a run, checkpoint, export or sherpa-onnx hub:NAME: audio bytes
    -> the transcript with timestamps, as `asr transcribe --json` gives it."""
    return AsrPredictor(load(str(source), threads, backend), name or default_name(source))
