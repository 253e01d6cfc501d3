"""`dlbox asr transcribe`: text with per-token timestamps and the real-time factor, for a wav file, a folder,
a ``wav.scp`` or a data directory; from a run, our ONNX export, or a sherpa-onnx model from the hub.

RTF = processing seconds (features + network + decoding) / audio seconds; below 1 is faster than real time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError, not_found
from dlbox.tasks.asr import audio
from dlbox.tasks.asr.data import Utterance, read_data_dir
from dlbox.tasks.asr.inference import SherpaRecognizer, hub_recognizer, load, transcribe_wave  # noqa: F401 (re-exported)

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
                raise UserError(f"{p} {not_found(p)}", "pass wav files, a folder of them, a wav.scp or a data directory")
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
