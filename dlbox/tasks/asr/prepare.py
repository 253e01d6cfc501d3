"""`dlbox asr prepare`: the mirrored Mandarin corpora (and a folder of your own recordings) -> Kaldi data
directories, with the splits each corpus defines, checked audio and duration statistics.

Layouts (as the archives of the hub entries extract):

- aishell: ``data_aishell/wav/{train,dev,test}/SPEAKER/*.wav`` (the per-speaker ``.tar.gz`` files inside
  ``wav/`` extracted) and ``data_aishell/transcript/aishell_transcript_v0.8.txt``.
- thchs30: ``data_thchs30/{train,dev,test}/*.wav``, transcripts in the first line of
  ``data_thchs30/data/NAME.wav.trn``.
- st-cmds: ``ST-CMDS-20170001_1-OS/*.wav`` with a ``.txt`` transcript each; the corpus defines no split, so
  the speakers are split: the last 10 (sorted) are test, the 10 before dev, the rest train.
- folder: ``WAV_DIR`` (searched recursively) and ``--transcripts FILE`` of ``NAME TEXT`` lines (NAME = the
  file name without extension); the speaker is the folder holding the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlbox.engine.progress import bar
from dlbox.errors import UserError
from dlbox.tasks.asr import audio
from dlbox.tasks.asr.data import Utterance, write_data_dir

CORPORA = ("aishell", "thchs30", "st-cmds", "folder")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def _find(root: Path, name: str) -> Path:
    """``root/name`` or ``root/*/name`` (archives extract with or without their top folder)."""
    for cand in (root / name, *root.glob(f"*/{name}")):
        if cand.exists():
            return cand
    raise UserError(f"{root} has no {name}", f"pass the folder the corpus archive was extracted into (it holds {name})")


def _aishell(root: Path) -> dict[str, list[Utterance]]:
    base = root if (root / "wav").is_dir() else _find(root, "data_aishell")
    trans = _find(base, "transcript") / "aishell_transcript_v0.8.txt"
    if not trans.is_file():
        raise UserError(f"{trans} does not exist", "extract data_aishell.tgz completely")
    texts = {}
    for line in trans.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2:
            texts[parts[0]] = parts[1]
    wav_root = base / "wav"
    if list(wav_root.glob("*.tar.gz")) and not any((wav_root / s).is_dir() for s in ("train", "dev", "test")):
        raise UserError(f"{wav_root} holds the per-speaker archives, not extracted",
                        f"extract them: for f in {wav_root}/*.tar.gz; do tar xzf $f -C {wav_root}; done")  # fmt: skip
    out = {}
    for split in ("train", "dev", "test"):
        # AISHELL-1 transcribes almost all files; those without a transcript are skipped, as its recipe does
        out[split] = [Utterance(w.stem, str(w.resolve()), texts[w.stem], w.parent.name)
                      for w in sorted((wav_root / split).rglob("*.wav")) if w.stem in texts]  # fmt: skip
    return out


def _thchs30(root: Path) -> dict[str, list[Utterance]]:
    base = root if (root / "data").is_dir() else _find(root, "data_thchs30")
    out = {}
    for split in ("train", "dev", "test"):
        utts = []
        for w in sorted((base / split).glob("*.wav")):
            trn = base / "data" / f"{w.name}.trn"
            if not trn.is_file():
                raise UserError(f"{w} has no transcript {trn}", "extract data_thchs30.tgz completely")
            text = trn.read_text(encoding="utf-8").splitlines()[0].strip()
            utts.append(Utterance(w.stem, str(w.resolve()), text, w.stem.split("_")[0]))
        out[split] = utts
    return out


def _st_cmds(root: Path) -> dict[str, list[Utterance]]:
    wavs = sorted(root.rglob("*.wav"))
    utts = []
    for w in wavs:
        txt = w.with_suffix(".txt")
        if not txt.is_file():
            raise UserError(f"{w} has no transcript {txt.name}", "extract ST-CMDS-20170001_1-OS.tar.gz completely")
        # ids look like 20170001P00001A0001: speaker P00001A
        utts.append(Utterance(w.stem, str(w.resolve()), txt.read_text(encoding="utf-8").strip(), w.stem[8:15]))
    speakers = sorted({u.spk for u in utts})
    test, dev = set(speakers[-10:]), set(speakers[-20:-10])
    return {"train": [u for u in utts if u.spk not in test | dev], "dev": [u for u in utts if u.spk in dev],
            "test": [u for u in utts if u.spk in test]}  # fmt: skip


def _folder(root: Path, transcripts: str | None) -> dict[str, list[Utterance]]:
    if not transcripts:
        raise UserError("prepare folder needs --transcripts FILE", "a file of 'NAME TEXT' lines, NAME = the file name without extension")
    tfile = Path(transcripts)
    if not tfile.is_file():
        raise UserError(f"transcripts file {transcripts!r} does not exist")
    texts = {}
    for n, line in enumerate(tfile.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.strip().split(maxsplit=1)
        if not parts:
            continue
        if len(parts) < 2:
            raise UserError(f"{tfile}:{n}: {parts[0]!r} has no text", "each line is 'NAME TEXT'")
        texts[parts[0]] = parts[1]
    files = {f.stem: f for f in sorted(root.rglob("*")) if f.suffix.lower() in AUDIO_SUFFIXES}
    missing = sorted(set(texts) - set(files))
    untranscribed = sorted(set(files) - set(texts))
    if missing:
        raise UserError(f"{len(missing)} transcript(s) have no audio file in {root} (e.g. {', '.join(missing[:3])})",
                        "name each recording NAME.wav after its transcript line")  # fmt: skip
    if not texts:
        raise UserError(f"{tfile} has no transcripts")
    utts = [Utterance(k, str(files[k].resolve()), texts[k], files[k].parent.name or "spk") for k in sorted(texts)]
    return {"": utts, "_untranscribed": untranscribed}  # type: ignore[dict-item]


def prepare(corpus: str, corpus_dir: str, out: str, transcripts: str | None = None) -> dict[str, Any]:
    """Write one data directory per split under ``out`` (``out`` itself for ``folder``); a summary with duration
    statistics. Every file is opened first: an empty or unreadable one is an error naming it."""
    if corpus not in CORPORA:
        raise UserError(f"unknown corpus {corpus!r}", f"one of {', '.join(CORPORA)}")
    root = Path(corpus_dir)
    if not root.is_dir():
        raise UserError(f"{corpus_dir!r} is not a folder", "pass the folder the corpus was extracted into")
    splits = {"aishell": _aishell, "thchs30": _thchs30, "st-cmds": _st_cmds}[corpus](root) if corpus != "folder" \
        else _folder(root, transcripts)  # fmt: skip
    skipped = splits.pop("_untranscribed", [])
    if not any(splits.values()):
        raise UserError(f"no audio with transcripts found under {root} for {corpus}", "check the folder layout (see --help)")
    summary: dict[str, Any] = {"corpus": corpus, "out": str(out), "splits": {}}
    for split, utts in splits.items():
        durations = []
        pbar = bar(len(utts), f"checking {split or 'audio'}", unit="file")
        for u in utts:
            if Path(u.wav).stat().st_size == 0:
                raise UserError(f"{u.wav} is an empty file", "re-record it or remove it from the corpus folder")
            durations.append(audio.info(u.wav)[0])
            pbar.update(1)
        pbar.close()
        target = Path(out) / split if split else Path(out)
        write_data_dir(target, utts)
        summary["splits"][split or "data"] = {"dir": str(target), **audio.duration_stats(durations)}
    if skipped:
        summary["untranscribed"] = len(skipped)
    return summary


def render(r: dict[str, Any]) -> str:
    lines = [f"{r['corpus']} -> {r['out']}"]
    for name, s in r["splits"].items():
        if s["utterances"]:
            lines.append(f"  {name:<6} {s['utterances']:>7} utterances  {s['hours']:.2f} h  mean {s['mean_s']:.2f} s  "
                         f"min {s['min_s']:.2f} s  max {s['max_s']:.2f} s  -> {s['dir']}")  # fmt: skip
        else:
            lines.append(f"  {name:<6} no utterances")
    if r.get("untranscribed"):
        lines.append(f"  {r['untranscribed']} audio file(s) without a transcript were left out")
    return "\n".join(lines)
