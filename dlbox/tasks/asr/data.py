"""Kaldi data directories: ``wav.scp``, ``text``, ``utt2spk``, optional ``segments``; ``spk2utt`` derived.

A ``wav.scp`` entry is a path, or a shell pipeline ending in ``|`` (``sox in.flac -t wav - |``): that runs a
command written in a data file, so it is refused unless the caller passes ``allow_pipes=True``. Every problem
is found before any work starts and named in one line (file, line number, what to do).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dlbox.base.errors import UserError
from dlbox.base.fileio import atomic_write_text


@dataclass
class Utterance:
    utt: str
    wav: str  # a path, or a shell pipeline ending in '|'
    text: str
    spk: str
    start: float = 0.0  # seconds into the recording (segments)
    end: float | None = None

    @property
    def is_pipe(self) -> bool:
        return self.wav.rstrip().endswith("|")


@dataclass
class DataDir:
    path: Path
    utts: list[Utterance]
    spk2utt: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.utts)


def _read_table(path: Path, needs_value: bool = True) -> dict[str, str]:
    """``KEY VALUE...`` lines -> {key: value}; duplicate keys and keys without a value are errors."""
    out: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})", "convert it with iconv -t utf-8") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if needs_value and len(parts) < 2:
            raise UserError(f"{path}:{n}: {parts[0]!r} has no value", "each line is 'UTT_ID VALUE'")
        if parts[0] in out:
            raise UserError(f"{path}:{n}: utterance id {parts[0]!r} appears twice", "keep one line per id")
        out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out


def _differ(a: set[str], b: set[str], name_a: str, name_b: str, where: Path) -> UserError:
    only_a, only_b = sorted(a - b), sorted(b - a)
    parts = []
    if only_a:
        parts.append(f"{len(only_a)} in {name_a} only (e.g. {', '.join(only_a[:3])})")
    if only_b:
        parts.append(f"{len(only_b)} in {name_b} only (e.g. {', '.join(only_b[:3])})")
    return UserError(f"{where}: utterance ids differ between {name_a} and {name_b}: {'; '.join(parts)}",
                     f"give every utterance a line in both files, or run `dlbox asr fix {where}` to keep only "
                     "the ids both have")  # fmt: skip


def read_data_dir(path: str | Path, allow_pipes: bool = False) -> DataDir:
    """Read and check a data directory (ids agree across files, no pipes unless allowed, segments valid)."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"data directory {str(root)!r} does not exist",
                        "pass a Kaldi data directory (wav.scp, text, utt2spk), e.g. from `dlbox asr prepare`")  # fmt: skip
    for name in ("wav.scp", "text"):
        if not (root / name).is_file():
            raise UserError(f"{root} has no {name}", "a data directory needs wav.scp and text (utt2spk optional)")
    wavs = _read_table(root / "wav.scp")
    texts = _read_table(root / "text", needs_value=False)
    segments: dict[str, tuple[str, float, float | None]] = {}
    if (root / "segments").is_file():
        for utt, rest in _read_table(root / "segments").items():
            f = rest.split()
            try:
                rec, start, end = f[0], float(f[1]), float(f[2])
            except (IndexError, ValueError):
                raise UserError(f"{root}/segments: bad line for {utt!r}: {rest!r}", "each line is 'UTT REC START END'") from None
            if rec not in wavs:
                raise UserError(f"{root}/segments: {utt!r} refers to recording {rec!r}, which wav.scp lacks", "add the recording to wav.scp, or run `dlbox asr fix DATA_DIR`")
            if end >= 0 and end <= start:
                raise UserError(f"{root}/segments: {utt!r} ends ({end}) before it starts ({start})", "each segments line is 'UTT REC START END' with START < END (seconds)")
            segments[utt] = (rec, start, end if end >= 0 else None)
        ids = set(segments)
    else:
        ids = set(wavs)
    if ids != set(texts):
        raise _differ(ids, set(texts), "segments" if segments else "wav.scp", "text", root)
    spk = _read_table(root / "utt2spk") if (root / "utt2spk").is_file() else {u: u for u in ids}
    if set(spk) != ids:
        raise _differ(ids, set(spk), "wav.scp", "utt2spk", root)
    if not allow_pipes:
        for rec, wav in wavs.items():
            if wav.rstrip().endswith("|") and (not segments or any(s[0] == rec for s in segments.values())):
                raise UserError(f"{root}/wav.scp: {rec!r} is a shell command ({wav[:60]!r}); refused: it comes from a "
                                "data file", "convert it to a wav file, or pass --allow-pipes if you trust this data")  # fmt: skip
    utts = []
    for u in sorted(ids):
        if segments:
            rec, start, end = segments[u]
            utts.append(Utterance(u, wavs[rec], texts[u], spk[u], start, end))
        else:
            wav = wavs[u]
            if not wav.rstrip().endswith("|") and not Path(wav).is_absolute():
                wav = str(root / wav) if (root / wav).exists() and not Path(wav).exists() else wav
            utts.append(Utterance(u, wav, texts[u], spk[u]))
    if not utts:
        raise UserError(f"{root} holds no utterances", "wav.scp and text are empty")
    spk2utt: dict[str, list[str]] = {}
    for x in utts:
        spk2utt.setdefault(x.spk, []).append(x.utt)
    return DataDir(root, utts, spk2utt)


def fix_data_dir(path: str | Path) -> dict[str, int]:
    """Keep only the utterances every file names (Kaldi's fix_data_dir.sh); returns the counts dropped."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"{str(root)!r} {'is a file, not' if root.exists() else 'is not'} a folder",
                        "pass a Kaldi data directory (wav.scp, text, utt2spk), e.g. data/train")  # fmt: skip
    lacking = [f for f in ("wav.scp", "text") if not (root / f).is_file()]
    if lacking:
        raise UserError(f"{str(root)!r} is not a Kaldi data directory: no {' or '.join(lacking)}",
                        "pass a folder with wav.scp and text, e.g. one written by `dlbox asr prepare`")  # fmt: skip
    wavs = _read_table(root / "wav.scp")
    texts = _read_table(root / "text", needs_value=False)
    spk = _read_table(root / "utt2spk") if (root / "utt2spk").is_file() else None
    keep = set(wavs) & set(texts) & (set(spk) if spk is not None else set(wavs))
    dropped = {"wav.scp": len(set(wavs) - keep), "text": len(set(texts) - keep),
               "utt2spk": len(set(spk) - keep) if spk is not None else 0}  # fmt: skip
    write_data_dir(root, [Utterance(u, wavs[u], texts[u], spk[u] if spk else u) for u in sorted(keep)])
    return {"kept": len(keep), "dropped": dropped}


def write_data_dir(path: str | Path, utts: list[Utterance]) -> Path:
    """Write wav.scp, text, utt2spk and spk2utt (sorted, as Kaldi's tools expect), each atomically."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    utts = sorted(utts, key=lambda x: x.utt)
    atomic_write_text(root / "wav.scp", "".join(f"{x.utt} {x.wav}\n" for x in utts))
    atomic_write_text(root / "text", "".join(f"{x.utt} {x.text}\n" for x in utts))
    atomic_write_text(root / "utt2spk", "".join(f"{x.utt} {x.spk}\n" for x in utts))
    spk2utt: dict[str, list[str]] = {}
    for x in utts:
        spk2utt.setdefault(x.spk, []).append(x.utt)
    atomic_write_text(root / "spk2utt", "".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return root


# --- the character vocabulary ----------------------------------------------------------------------------
BLANK, UNK = "<blank>", "<unk>"


def normalize_text(text: str) -> list[str]:
    """Characters of a transcript (spaces dropped: Mandarin is scored per character)."""
    return [c for c in text if not c.isspace()]


class Vocab:
    """``tokens.txt`` as sherpa-onnx reads it (``SYMBOL ID`` per line): <blank> is 0, <unk> is 1."""

    def __init__(self, tokens: list[str]):
        if tokens[:2] != [BLANK, UNK]:
            raise ValueError("tokens must start with <blank>, <unk>")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, texts: list[str]) -> Vocab:
        counts = Counter(c for t in texts for c in normalize_text(t))
        return cls([BLANK, UNK, *sorted(counts)])

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        rows = [ln.rsplit(" ", 1) for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
        return cls([s for s, _ in sorted(rows, key=lambda r: int(r[1]))])

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, "".join(f"{t} {i}\n" for i, t in enumerate(self.tokens)))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> tuple[list[int], int]:
        """Token ids and how many characters were outside the vocabulary (mapped to <unk>)."""
        ids = [self.index.get(c, 1) for c in normalize_text(text)]
        return ids, sum(1 for i in ids if i == 1)

    def decode(self, ids: list[int]) -> str:
        return "".join(self.tokens[i] for i in ids if i > 1)
