"""`dlbox asr prepare`: the mirrored Mandarin corpora (and a folder of your own recordings) -> Kaldi data
directories, with the splits each corpus defines, checked audio and duration statistics.

Layouts (as the archives of the hub entries extract):

- aishell: ``data_aishell/wav/{train,dev,test}/SPEAKER/*.wav`` (the per-speaker ``.tar.gz`` files inside
  ``wav/`` extracted) and ``data_aishell/transcript/aishell_transcript_v0.8.txt``; as Kaldi's
  egs/aishell/s5/local/aishell_data_prep.sh: utterance = file name, speaker = its folder, files without a
  transcript left out.
- thchs30: ``data_thchs30/{train,dev,test}/*.wav``, transcripts in the first line (the words) of
  ``data_thchs30/data/NAME.wav.trn``; ids as Kaldi's egs/thchs30: ``A2_33.wav`` is utterance ``A02_033`` of
  speaker ``A02``.
- st-cmds: ``ST-CMDS-20170001_1-OS/*.wav`` with a ``.txt`` transcript (and a ``.metadata``) each, named
  ``20170001P00001A0001``: speaker ``P00001`` (characters 9-14, as Kaldi's multi_cn and lhotse read it). The
  corpus defines no split, so speakers are held out: the last 10 (sorted) are test, the 10 before dev, the
  rest train (on a corpus of fewer than 100 speakers, a tenth of them each; under 3 speakers, all train).
- folder: ``WAV_DIR`` (searched recursively) and ``--transcripts FILE`` of ``NAME TEXT`` lines (NAME = the
  file name without extension); the speaker is the folder holding the file.

The corpora's transcripts are normalised as WeNet's and lhotse's recipes do: full-width letters and digits
become ASCII, Latin letters upper case, punctuation (not spoken) dropped; spaces between words are kept (WER).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError, not_found
from dlbox.base.progress import bar
from dlbox.tasks.asr import audio
from dlbox.tasks.asr.data import Utterance, write_data_dir

CORPORA = ("aishell", "thchs30", "st-cmds", "folder")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def normalize_transcript(text: str) -> str:
    """Full-width ASCII -> ASCII (ＫＴＶ -> KTV), upper case, punctuation dropped, runs of spaces -> one."""
    text = "".join(chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else " " if c == "\u3000" else c for c in text)
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text.upper())
    return " ".join(text.split())


def _find(root: Path, name: str) -> Path:
    """``root/name`` or ``root/*/name`` (archives extract with or without their top folder)."""
    for cand in (root / name, *root.glob(f"*/{name}")):
        if cand.exists():
            return cand
    raise UserError(f"{root} has no {name}", f"pass the folder the corpus archive was extracted into (it holds {name})")


def _aishell(root: Path) -> dict[str, Any]:
    base = root if (root / "wav").is_dir() else _find(root, "data_aishell")
    trans = _find(base, "transcript") / "aishell_transcript_v0.8.txt"
    if not trans.is_file():
        raise UserError(f"{trans} {not_found(trans)}", "extract data_aishell.tgz completely")
    texts = {}
    for line in trans.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2:
            texts[parts[0]] = normalize_transcript(parts[1])
    wav_root = base / "wav"
    if list(wav_root.glob("*.tar.gz")) and not any((wav_root / s).is_dir() for s in ("train", "dev", "test")):
        raise UserError(f"{wav_root} holds the per-speaker archives, not extracted",
                        f"extract them: for f in {wav_root}/*.tar.gz; do tar xzf $f -C {wav_root}; done")  # fmt: skip
    if not any((wav_root / s).is_dir() for s in ("train", "dev", "test")):
        raise UserError(f"{wav_root} has no train/, dev/ or test/ folder", "extract data_aishell.tgz and the archives in wav/")
    out: dict[str, Any] = {"_untranscribed": []}
    for split in ("train", "dev", "test"):
        # AISHELL-1 transcribes almost all files; those without a transcript are left out (and counted), as
        # its recipe does
        wavs = sorted((wav_root / split).rglob("*.wav"))
        out[split] = [Utterance(w.stem, str(w.resolve()), texts[w.stem], w.parent.name) for w in wavs if w.stem in texts]
        out["_untranscribed"] += [w.stem for w in wavs if w.stem not in texts]
    return out


def _thchs30_ids(stem: str) -> tuple[str, str]:
    """``A2_33`` -> (``A02_033``, ``A02``): Kaldi's zero-padded ids (so utterances sort by speaker)."""
    m = re.fullmatch(r"([A-Z]+)(\d+)_(\d+)", stem)
    if not m:
        return stem, stem.split("_")[0]
    spk = f"{m[1]}{int(m[2]):02d}"
    return f"{spk}_{int(m[3]):03d}", spk


def _thchs30(root: Path) -> dict[str, list[Utterance]]:
    base = root if (root / "data").is_dir() else _find(root, "data_thchs30")
    if not (base / "data").is_dir():
        raise UserError(f"{base} has no data/ folder (the .wav.trn transcripts)", "extract data_thchs30.tgz completely")
    out = {}
    for split in ("train", "dev", "test"):
        utts = []
        for w in sorted((base / split).glob("*.wav")):
            trn = base / "data" / f"{w.name}.trn"
            if not trn.is_file():
                raise UserError(f"{w} has no transcript {trn}", "extract data_thchs30.tgz completely")
            lines = trn.read_text(encoding="utf-8").splitlines()
            if not lines or not lines[0].strip():
                raise UserError(f"{trn} is empty", "its first line holds the words of the utterance")
            utt, spk = _thchs30_ids(w.stem)
            utts.append(Utterance(utt, str(w.resolve()), normalize_transcript(lines[0]), spk))
        out[split] = utts
    return out


ST_CMDS_NAME = re.compile(r"\d{8}(P\d{5})[A-Z]\d{4}")  # 20170001P00001A0001: corpus, speaker, session + number


def _st_cmds(root: Path) -> dict[str, list[Utterance]]:
    wavs = sorted(root.rglob("*.wav"))
    utts = []
    for w in wavs:
        m = ST_CMDS_NAME.fullmatch(w.stem)
        if not m:
            raise UserError(f"{w} is not named like an ST-CMDS utterance (20170001P00001A0001.wav)",
                            "pass the folder ST-CMDS-20170001_1-OS.tar.gz was extracted into, and nothing else")  # fmt: skip
        txt = w.with_suffix(".txt")
        if not txt.is_file():
            raise UserError(f"{w} has no transcript {txt.name}", "extract ST-CMDS-20170001_1-OS.tar.gz completely")
        utts.append(Utterance(w.stem, str(w.resolve()), normalize_transcript(txt.read_text(encoding="utf-8")), m[1]))
    speakers = sorted({u.spk for u in utts})
    k = min(10, len(speakers) // 10) or (1 if len(speakers) >= 3 else 0)
    test, dev = set(speakers[len(speakers) - k :]), set(speakers[len(speakers) - 2 * k : len(speakers) - k])
    return {"train": [u for u in utts if u.spk not in test | dev], "dev": [u for u in utts if u.spk in dev],
            "test": [u for u in utts if u.spk in test]}  # fmt: skip


def _folder(root: Path, transcripts: str | None) -> dict[str, list[Utterance]]:
    if not transcripts:
        raise UserError("prepare folder needs --transcripts FILE", "a file of 'NAME TEXT' lines, NAME = the file name without extension")
    tfile = Path(transcripts)
    if not tfile.is_file():
        raise UserError(f"transcripts file {transcripts!r} {not_found(tfile)}", "pass the transcripts file with --transcripts (lines 'UTT_ID text')")
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
        raise UserError(f"{tfile} has no transcripts", "each line is 'UTT_ID text'; check the file and --transcripts")
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
