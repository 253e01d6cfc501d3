"""What is done to each article (or line): markup removal, OpenCC conversion, tokenization, line layout.

``Steps`` is the plain description (picklable, saved in checkpoints); ``processor(steps)`` builds the tools
once per process (jieba's dictionary, the OpenCC tables) and caches them, so pool workers forked after the
parent built them inherit them for free and spawned ones build them once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from dlbox.tasks.text import markup

Layout = Literal["article", "sentence", "line"]


@dataclass(frozen=True)
class Steps:
    markup: bool = False  # wikitext in: strip the markup first
    opencc: str | None = None  # an OpenCC config (t2s, s2twp, ...) or None
    lang: str | None = None  # None: no tokenization (wiki2txt, convert); "zh" or "en"
    keep_latin: bool = False
    keep_digits: bool = False
    user_dict: str | None = None
    segmenter: str = "jieba"
    # article: one article a line; sentence: one sentence a line; line: one output line per input line
    # (kept even when empty, so `convert` maps line n to line n).
    layout: Layout = "article"

    def as_dict(self) -> dict:
        return asdict(self)


class Processor:
    def __init__(self, steps: Steps):
        from dlbox.tasks.text import tokens

        self.steps = steps
        self.convert = tokens.converter(steps.opencc) if steps.opencc else None
        if steps.lang == "zh":
            self.tokenize = tokens.ZhSegmenter(steps.segmenter, steps.keep_latin, steps.keep_digits, steps.user_dict)
        elif steps.lang == "en":
            self.tokenize = lambda text: tokens.en_tokens(text, steps.keep_digits)
        else:
            self.tokenize = None

    def lines(self, text: str) -> tuple[list[str], int]:
        """The output lines of one input item, and how many tokens they hold."""
        s = self.steps
        if s.markup:
            text = markup.strip_markup(text)
        if self.convert is not None:
            text = self.convert(text)
        if s.layout == "sentence":
            units = markup.sentences(text)
        elif s.layout == "article":
            units = [text]
        else:
            units = [text.rstrip("\r\n")]
        out, n_tokens = [], 0
        for unit in units:
            if self.tokenize is not None:
                toks = self.tokenize(unit)
                line = " ".join(toks)
                n_tokens += len(toks)
            elif s.layout == "line":
                line = unit  # convert: the line as it was, only converted
                n_tokens += len(unit.split())
            else:
                toks = unit.split()
                line = " ".join(toks)
                n_tokens += len(toks)
            if line or s.layout == "line":
                out.append(line)
        return out, n_tokens

    def chunk(self, items: list[str]) -> tuple[str, int, int]:
        """A chunk of input items -> (its output text, lines, tokens)."""
        lines: list[str] = []
        n_tokens = 0
        for item in items:
            got, n = self.lines(item)
            lines.extend(got)
            n_tokens += n
        return "".join(ln + "\n" for ln in lines), len(lines), n_tokens


_CACHE: dict[Steps, Processor] = {}


def processor(steps: Steps) -> Processor:
    if steps not in _CACHE:
        _CACHE[steps] = Processor(steps)
    return _CACHE[steps]


def init_worker(steps: Steps) -> None:
    """Pool initializer: Ctrl-C is the parent's to handle (it saves a checkpoint); build the tools once."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    processor(steps)


def work(args: tuple[Steps, list[str]]) -> tuple[str, int, int]:
    steps, items = args
    return processor(steps).chunk(items)
