"""`dlbox asr evaluate`: CER (and WER where the transcripts are space-separated words) over a data directory,
with substitutions, deletions and insertions apart, characters outside the vocabulary counted, and the worst
utterances listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlbox.base.fileio import atomic_write_text
from dlbox.tasks.asr import audio
from dlbox.tasks.asr.data import read_data_dir
from dlbox.tasks.asr.metrics import Errors, cer, wer
from dlbox.tasks.asr.transcribe import SherpaRecognizer, load, transcribe_wave


def evaluate(source: str, data: str, beam: int = 1, allow_pipes: bool = False, worst: int = 5, out: str | None = None,
             threads: int | None = None, backend: str = "auto") -> dict[str, Any]:  # fmt: skip
    """Score ``source`` on the data directory ``data``; with ``out``, per-utterance results go to a TSV file."""
    d = read_data_dir(data, allow_pipes=allow_pipes)
    rec = load(source, threads, backend)
    vocab = None if isinstance(rec, SherpaRecognizer) else rec.vocab
    total_c, total_w, oov, rows = Errors(), Errors(), 0, []
    words = any(" " in u.text.strip() for u in d.utts)
    for u in d.utts:
        wave = audio.load(u.wav, u.start, u.end, allow_pipes=allow_pipes)
        hyp = transcribe_wave(rec, wave, beam)["text"]
        c = cer(u.text, hyp)
        total_c += c
        if words:
            total_w += wer(u.text, hyp)
        if vocab is not None:
            oov += vocab.encode(u.text)[1]
        rows.append({"utt": u.utt, "ref": u.text, "hyp": hyp, "cer": round(c.rate, 4), "errors": c.total})
    ranked = sorted(rows, key=lambda r: (-r["errors"], r["utt"]))
    result = {"model": str(source), "data": str(data), "utterances": len(rows), "beam": beam,
              "cer": total_c.as_dict(), "wer": total_w.as_dict() if words else None,
              "out_of_vocabulary": oov, "worst": ranked[:worst]}  # fmt: skip
    if out:
        text = "utt\tref\thyp\tcer\n" + "".join(f"{r['utt']}\t{r['ref']}\t{r['hyp']}\t{r['cer']}\n" for r in rows)
        atomic_write_text(Path(out), text)
        result["out"] = str(out)
    return result


def render(r: dict[str, Any]) -> str:
    c = r["cer"]
    lines = [f"CER {100 * c['rate']:.2f}% over {c['reference_length']} characters of {r['utterances']} utterances "
             f"(S {c['substitutions']}, D {c['deletions']}, I {c['insertions']})"]  # fmt: skip
    if r["wer"]:
        w = r["wer"]
        lines.append(f"WER {100 * w['rate']:.2f}% (S {w['substitutions']}, D {w['deletions']}, I {w['insertions']})")
    if r["out_of_vocabulary"]:
        lines.append(f"{r['out_of_vocabulary']} reference character(s) are outside the model's vocabulary "
                     "(mapped to <unk>: always errors)")  # fmt: skip
    if r["worst"]:
        lines.append("worst utterances:")
        lines += [f"  {w['utt']}  errors {w['errors']}  ref {w['ref']}  hyp {w['hyp']}" for w in r["worst"]]
    return "\n".join(lines)
