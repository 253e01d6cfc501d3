"""Protobuf text format (what .prototxt files are), read without protobuf or caffe.proto compiled.

The result is a tree of ``Msg``: every field is a list of values (text format does not say which fields are
repeated; the schema does, so readers ask for ``get`` (the last value, as protobuf keeps for a singular
field) or ``all``). Scalars become str (quoted strings and enum names), int, float or bool.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError, not_found

_TOKEN = re.compile(
    r"""\s+|\#[^\n]*|(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|(?P<word>[A-Za-z0-9_.+\-]+)|(?P<punct>[{}\[\]:<>,;])""",
    re.S,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


class Msg:
    """One message: field name -> list of values (scalars or ``Msg``)."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, list[Any]] | None = None):
        self.fields: dict[str, list[Any]] = fields if fields is not None else {}

    def add(self, name: str, value: Any) -> None:
        self.fields.setdefault(name, []).append(value)

    def has(self, name: str) -> bool:
        return bool(self.fields.get(name))

    def get(self, name: str, default: Any = None) -> Any:
        values = self.fields.get(name)
        return values[-1] if values else default

    def all(self, name: str) -> list[Any]:
        return list(self.fields.get(name, []))

    def msg(self, name: str) -> Msg:
        """The sub-message ``name`` (an empty one when absent, so defaults apply)."""
        value = self.get(name)
        return value if isinstance(value, Msg) else Msg()

    def __repr__(self) -> str:
        return f"Msg({self.fields!r})"


def _unescape(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n in _ESCAPES:
                out.append(_ESCAPES[n])
                i += 2
                continue
            m = re.match(r"[0-7]{1,3}", s[i + 1 :])
            if m:
                out.append(chr(int(m.group(), 8)))
                i += 1 + len(m.group())
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _scalar(word: str) -> Any:
    if word in ("true", "True"):
        return True
    if word in ("false", "False"):
        return False
    try:
        return int(word, 0) if not re.fullmatch(r"[+-]?0\d+", word) else int(word, 8)
    except ValueError:
        pass
    try:
        return float(word.rstrip("fF")) if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fF]?|[+-]?(inf|nan|infinity)", word, re.I) else word
    except ValueError:
        return word


class _Tokens:
    def __init__(self, text: str, where: str):
        self.where = where
        self.items: list[tuple[str, Any, int]] = []  # (kind, value, line)
        line, pos = 1, 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                self.fail(f"unexpected character {text[pos]!r}", line)
            if m.lastgroup == "str":
                self.items.append(("str", _unescape(m.group()[1:-1]), line))
            elif m.lastgroup:
                self.items.append((m.lastgroup, m.group(), line))
            line += m.group().count("\n")
            pos = m.end()
        self.i = 0
        self.last_line = line

    def fail(self, what: str, line: int | None = None):
        line = self.last_line if line is None else line
        raise UserError(f"{self.where}:{line}: {what}", "a Caffe .prototxt is protobuf text format: `name: value` and `name { ... }`")

    def peek(self) -> tuple[str, Any, int] | None:
        return self.items[self.i] if self.i < len(self.items) else None

    def next(self) -> tuple[str, Any, int]:
        tok = self.peek()
        if tok is None:
            self.fail("unexpected end of file")
        self.i += 1
        return tok

    def accept(self, punct: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "punct" and tok[1] == punct:
            self.i += 1
            return True
        return False


def _message(tokens: _Tokens, close: str | None) -> Msg:
    msg = Msg()
    while True:
        tok = tokens.peek()
        if tok is None:
            if close:
                tokens.fail(f"missing {close!r}")
            return msg
        if tok[0] == "punct" and tok[1] == close:
            tokens.i += 1
            return msg
        kind, name, line = tokens.next()
        if kind != "word" or not re.fullmatch(r"[A-Za-z_]\w*", name):
            tokens.fail(f"expected a field name, got {name!r}", line)
        colon = tokens.accept(":")
        if tokens.accept("{"):
            msg.add(name, _message(tokens, "}"))
        elif tokens.accept("<"):
            msg.add(name, _message(tokens, ">"))
        elif colon and tokens.accept("["):
            while not tokens.accept("]"):
                msg.add(name, _value(tokens))
                tokens.accept(",")
        elif colon:
            msg.add(name, _value(tokens))
        else:
            tokens.fail(f"expected ':' or '{{' after {name!r}", line)
        tokens.accept(",") or tokens.accept(";")


def _value(tokens: _Tokens) -> Any:
    if tokens.accept("{"):
        return _message(tokens, "}")
    kind, value, line = tokens.next()
    if kind == "str":
        # Adjacent string literals concatenate, as in protobuf.
        while (tok := tokens.peek()) and tok[0] == "str":
            value += tokens.next()[1]
        return value
    if kind != "word":
        tokens.fail(f"expected a value, got {value!r}", line)
    return _scalar(value)


def parse(text: str, where: str = "<prototxt>") -> Msg:
    """Parse protobuf text format into a ``Msg`` tree; syntax errors name the file and line."""
    return _message(_Tokens(text, where), None)


def parse_file(path: str | Path) -> Msg:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{str(p)!r} {not_found(p)}", "pass the path of a .prototxt file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{p} is not a text file", "a .prototxt is text; the binary weights are the .caffemodel") from None
    return parse(text, str(p))
