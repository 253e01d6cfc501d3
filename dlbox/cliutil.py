"""Shared pieces of the command tree: parser class with one-line errors, options from config dataclasses,
output (--json alone on stdout). Each area registers its commands in ``dlbox/<area>/commands.py``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from typing import Any


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage dumps."""

    def error(self, message: str) -> typing.NoReturn:
        sys.stderr.write(f"error: {message} (hint: see '{self.prog} --help')\n")
        sys.exit(2)


class Bounded:
    """An argparse ``type``: a number within a range. A bad value is one line and exit 2 at parse time,
    before any work starts (``number(int, ge=1)``); NaN and infinity are refused for floats."""

    def __init__(self, kind: type, **bounds: float):
        self.kind, self.bounds = kind, bounds
        self.__name__ = kind.__name__  # argparse names the type in its messages

    def __call__(self, text: str):
        import math

        from dlbox.config import BOUNDS, bounds_text

        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if self.kind is int else 'a number'}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if any(not ok(value, self.bounds[k]) for k, (_, ok) in BOUNDS.items() if k in self.bounds):
            raise argparse.ArgumentTypeError(f"must be {bounds_text(self.bounds)}, got {text}")
        return value


def number(kind: type, **bounds: float) -> Bounded:
    return Bounded(kind, **bounds)


def command(sub, name: str, help: str, example: str, description: str | None = None) -> Parser:
    return sub.add_parser(
        name, help=help, description=description or help, epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_options(p: argparse.ArgumentParser, cls, title: str) -> None:
    """One option per dataclass field. Defaults are None so only what the user typed overrides the config
    (a YAML --config file, or the saved config of a run being resumed); help shows the real default.
    Engine fields go into their own group, after the command's own."""
    from dlbox.engine.config import EngineConfig

    engine_fields = {f.name for f in dataclasses.fields(EngineConfig)}
    own = p.add_argument_group(title)
    engine = p.add_argument_group("training engine") if issubclass(cls, EngineConfig) else own
    hints = typing.get_type_hints(cls)
    for f in sorted(dataclasses.fields(cls), key=lambda f: f.name in engine_fields):
        group = engine if f.name in engine_fields and cls is not EngineConfig else own
        tp, default = hints[f.name], f.default
        args = typing.get_args(tp)
        origin = typing.get_origin(tp)
        kw: dict[str, Any] = {"default": None, "dest": f.name}
        if tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif origin is typing.Literal:
            kw["choices"] = list(args)
        else:
            base = next((a for a in args if a is not type(None)), tp)
            kw["type"] = base if base in (int, float, str) else str
            kw["metavar"] = {int: "N", float: "X"}.get(base, "STR")
        text = f.metadata.get("help", "")
        kw["help"] = text if default is None or "default" in text else f"{text} (default: {default})"
        group.add_argument(flag(f.name), **kw)
    # The config class lets tests walk every option of every command; the path names the resume command.
    p.set_defaults(config_cls=cls, command_path=p.prog)


def config_from_args(cls, args: argparse.Namespace):
    """Defaults < --config FILE < the saved config of --resume RUN < options typed on the command line."""
    from dlbox.config import from_dict, load_yaml
    from dlbox.engine import checkpoint

    names = {f.name for f in dataclasses.fields(cls)}
    typed = {k: v for k, v in vars(args).items() if k in names and v is not None}
    data: dict[str, Any] = load_yaml(args.config) if getattr(args, "config", None) else {}
    if typed.get("resume"):
        data.update(checkpoint.saved_config(typed["resume"]))
    data.update(typed)
    return from_dict(cls, data)


def emit(args: argparse.Namespace, result: Any, render) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    else:
        print(render(result))


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout (nothing else there)")
