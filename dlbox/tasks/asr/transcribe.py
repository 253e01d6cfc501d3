"""`dlbox asr transcribe`: text with per-token timestamps and the real-time factor, for a wav file, a folder,
a ``wav.scp`` or a data directory; from a run, our ONNX export, or a sherpa-onnx model from the hub.

RTF = processing seconds (features + network + decoding) / audio seconds; below 1 is faster than real time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dlbox.errors import UserError
from dlbox.tasks.asr import audio, decode, features
from dlbox.tasks.asr.data import Utterance, read_data_dir

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def gather_inputs(inputs: list[str], allow_pipes: bool = False) -> list[Utterance]:
    """Files, folders (audio files inside, sorted), ``wav.scp`` files and data directories -> utterances."""
    out: list[Utterance] = []
    for spec in inputs:
        p = Path(spec)
        if p.is_dir() and (p / "wav.scp").is_file():
            out.extend(read_data_dir(p, allow_pipes=allow_pipes).utts)
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
            if not files:
                raise UserError(f"{p} holds no audio files", f"expected {', '.join(AUDIO_SUFFIXES)} files")
            out.extend(Utterance(f.stem, str(f), "", f.stem) for f in files)
        elif p.name == "wav.scp" or p.suffix == ".scp":
            if not p.is_file():
                raise UserError(f"{p} does not exist")
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                parts = line.split(maxsplit=1)
                if len(parts) < 2:
                    raise UserError(f"{p}:{n}: {parts[0]!r} has no path", "each line is 'UTT_ID PATH'")
                if parts[1].rstrip().endswith("|") and not allow_pipes:
                    raise UserError(f"{p}:{n}: {parts[0]!r} is a shell command; refused: it comes from a data file",
                                    "pass --allow-pipes if you trust this file")  # fmt: skip
                out.append(Utterance(parts[0], parts[1], "", parts[0]))
        elif p.is_file():
            out.append(Utterance(p.stem, str(p), "", p.stem))
        else:
            raise UserError(f"{spec!r} does not exist", "pass wav files, a folder, a wav.scp or a data directory")
    return out


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


def hub_recognizer(spec: str, threads: int = 2) -> SherpaRecognizer:
    """``hub:NAME`` of a sherpa-onnx model: its files through the hub's cache and mirrors (offline rules apply)."""
    from dlbox.hub import catalog, fetch
    from dlbox.hub import settings as hub_settings
    from dlbox.hub.catalog import ModelEntry

    entry = catalog.get(spec[4:])
    if not isinstance(entry, ModelEntry) or not entry.loader.startswith("sherpa-onnx:"):
        raise UserError(f"hub:{entry.name} is not a sherpa-onnx speech model",
                        "see `dlbox hub list --task speech` (loader sherpa-onnx:...)")  # fmt: skip
    paths = fetch.ensure(entry, list(entry.files), hub_settings.load())
    model = next(str(p) for n, p in paths.items() if n.endswith(".onnx"))
    return SherpaRecognizer(entry.loader.split(":", 1)[1], model, str(paths["tokens.txt"]), threads)


def load(source: str, threads: int | None = None, backend: str = "auto"):
    """A run / checkpoint / .onnx file (PyTorch or onnxruntime; ``backend='sherpa-onnx'`` for our export
    through sherpa-onnx), or ``hub:NAME``."""
    if str(source).startswith("hub:"):
        return hub_recognizer(str(source), threads or 2)
    if backend == "sherpa-onnx":
        p = Path(source)
        if p.suffix != ".onnx":
            raise UserError("--backend sherpa-onnx takes an .onnx export", "export first: dlbox asr export RUN --format onnx")
        return SherpaRecognizer("wenet-ctc", str(p), str(p.with_name("tokens.txt")), threads or 2)
    from dlbox.tasks.asr.inference import load_recognizer

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


def transcribe(source: str, inputs: list[str], beam: int = 1, allow_pipes: bool = False, threads: int | None = None,
               backend: str = "auto") -> dict[str, Any]:  # fmt: skip
    """Transcribe every input; returns {results: [...], audio_seconds, seconds, rtf, model, backend}."""
    if beam < 1:
        raise UserError(f"--beam must be at least 1, got {beam}", "1 is greedy search; 4-10 is a usual beam")
    utts = gather_inputs(inputs, allow_pipes)
    rec = load(source, threads, backend)
    if isinstance(rec, SherpaRecognizer) and beam > 1:
        raise UserError("--beam applies to dlbox's own decoder", "sherpa-onnx models decode greedily here")
    results, total_audio, total_time = [], 0.0, 0.0
    for u in utts:
        wave = audio.load(u.wav, u.start, u.end, allow_pipes=allow_pipes)
        t0 = time.perf_counter()
        r = transcribe_wave(rec, wave, beam)
        dt = time.perf_counter() - t0
        dur = len(wave) / audio.SAMPLE_RATE
        total_audio, total_time = total_audio + dur, total_time + dt
        results.append({"utt": u.utt, "file": u.wav, **r, "duration": round(dur, 3), "rtf": round(dt / dur, 4)})
    backend_name = rec.kind if isinstance(rec, SherpaRecognizer) else rec.backend
    return {"model": str(source), "backend": "sherpa-onnx" if isinstance(rec, SherpaRecognizer) else backend_name,
            "beam": beam, "results": results, "audio_seconds": round(total_audio, 3), "seconds": round(total_time, 4),
            "rtf": round(total_time / total_audio, 4) if total_audio else None}  # fmt: skip


def render(r: dict[str, Any]) -> str:
    lines = []
    for x in r["results"]:
        lines.append(f"{x['utt']}\t{x['text']}")
        if x["tokens"]:
            lines.append("\t" + " ".join(f"{t}@{s:.2f}" for t, s in zip(x["tokens"], x["timestamps"], strict=False)))
    lines.append(f"{len(r['results'])} utterance(s), {r['audio_seconds']:.1f} s of audio in {r['seconds']:.2f} s: "
                 f"RTF {r['rtf']} ({r['backend']})")  # fmt: skip
    return "\n".join(lines)
