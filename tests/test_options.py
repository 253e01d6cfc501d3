"""Every numeric option of every command is checked before work starts: a value out of range, NaN or
infinity is one line and exit 2, and no run directory or file is made.

The cases are read off the command tree itself (config dataclass fields and ``number(...)`` argparse types),
so a new command or option is covered, and one that declares no range fails here."""

from __future__ import annotations

import argparse
import dataclasses
import typing

import pytest

from dlbox.cli import build_parser
from dlbox.cliutil import Bounded, flag
from tests.conftest import assert_user_error, run_main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))
    if parser._defaults.get("func") is not None:
        yield path, parser


def _numeric(tp) -> type | None:
    args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
    return args[0] if args[0] in (int, float) else None


def _options(root: argparse.ArgumentParser | None = None):
    """(command path, parser, option, kind, bounds) for every numeric option."""
    for path, parser in _commands(root or build_parser()):
        cls = parser._defaults.get("config_cls")
        fields = {}
        if cls is not None:
            hints = typing.get_type_hints(cls)
            fields = {flag(f.name): (f, _numeric(hints[f.name])) for f in dataclasses.fields(cls)}
        for action in parser._actions:
            if not action.option_strings:
                continue
            opt = action.option_strings[0]
            if opt in fields and fields[opt][1] is not None:
                f, kind = fields[opt]
                yield path, parser, opt, kind, {k: f.metadata[k] for k in ("ge", "gt", "le", "lt") if k in f.metadata}
            elif isinstance(action.type, Bounded):
                yield path, parser, opt, action.type.kind, action.type.bounds
            elif action.type in (int, float):
                yield path, parser, opt, action.type, {}


def _bad_values(kind: type, bounds: dict) -> list[str]:
    low, high = [], []
    if "ge" in bounds:
        low.append(str(kind(bounds["ge"] - 1) if kind is int else bounds["ge"] - 0.5))
    if "gt" in bounds:
        low.append(str(kind(bounds["gt"])))
    if "le" in bounds:  # the upper bound + 1 (an int option gets an exact integer, e.g. 2**63 for a seed)
        high.append(str(int(bounds["le"]) + 1) if kind is int else repr(float(bounds["le"]) * 2 + 1))
    if "lt" in bounds:
        high.append(str(int(bounds["lt"])) if kind is int else repr(float(bounds["lt"])))
    bad = low[:1] + high[:1]  # one value below and one above the range per option
    if kind is float:
        bad.append("nan")
    return bad


def _placeholders(parser: argparse.ArgumentParser, skip: str) -> tuple[list[str], list[str]]:
    """(required options, positionals): placeholder values so that only the bad option can be at fault. The
    positionals go last: one that takes the rest of the line (``nargs="..."``) would swallow the options."""
    args: list[str] = []
    options: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.dest in ("help", "config_cls"):
            continue
        if not action.option_strings:
            n = 2 if action.nargs in ("+", 2) else 1
            value = list(action.choices)[0] if action.choices else "placeholder"
            args += [value] * n if action.nargs != "*" and action.nargs != "?" else []
        elif action.required and action.option_strings[0] != skip:
            options += [action.option_strings[0], action.choices[0] if action.choices else "placeholder"]
    return options, args


PARSER = build_parser()  # built once: parsing does not change a parser, and building it costs ~0.1 s

CASES = [
    pytest.param(path, parser, opt, value, id=f"{' '.join(path)} {opt} {value}")
    for path, parser, opt, kind, bounds in _options(PARSER)
    for value in (_bad_values(kind, bounds) or ["declares-no-range"])
]


def test_every_numeric_option_declares_its_range():
    missing = [f"{' '.join(p)} {o}" for p, _, o, _, b in _options() if not b]
    assert not missing, f"numeric options without a range (opt(..., ge=/gt=/le=/lt=) or number(...)): {missing}"


def test_every_numeric_option_has_both_bounds():
    """An upper bound too: `--workers 1e12` or `--beam 1e12` must not run on without end."""
    low = [f"{' '.join(p)} {o}" for p, _, o, _, b in _options() if not {"ge", "gt"} & set(b)]
    high = [f"{' '.join(p)} {o}" for p, _, o, _, b in _options() if not {"le", "lt"} & set(b)]
    assert not low, f"numeric options without a lower bound (opt(..., ge= or gt=)): {low}"
    assert not high, f"numeric options without an upper bound (opt(..., le= or lt=), e.g. le=256): {high}"


def test_the_walk_covers_the_train_commands():
    walked = {(" ".join(p), o) for p, _, o, _, _ in _options()}
    for cmd in ("classify train", "detect train", "env test"):
        for opt in ("--lr", "--epochs", "--batch-size", "--save-every", "--max-restarts", "--dist-timeout"):
            assert (cmd, opt) in walked, (cmd, opt)


@pytest.mark.parametrize("path, parser, opt, value", CASES)
def test_a_bad_value_is_one_line_before_any_work(path, parser, opt, value, tmp_path, monkeypatch, capsys):
    if value == "declares-no-range":
        pytest.fail(f"{' '.join(path)} {opt} declares no range")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("dlbox.cli.build_parser", lambda: PARSER)
    options, positionals = _placeholders(parser, opt)
    args = [*path, *options, f"{opt}={value}", *positionals]
    if any(a.option_strings == ["--runs-dir"] for a in parser._actions):
        args += ["--runs-dir", str(tmp_path / "runs")]
    res = run_main(capsys, *args)
    line = assert_user_error(res, opt.lstrip("-").split("-")[0])
    assert opt in line or opt.replace("--", "") in line, line
    assert list(tmp_path.iterdir()) == [], "something was written before the option was checked"
