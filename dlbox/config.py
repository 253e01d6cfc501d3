"""Typed configs: one dataclass per command, unknown keys refused with a near-match hint.

A config is built from defaults, then an optional YAML file, then explicit command-line options
(argparse defaults are ``None`` so that only what the user typed overrides). The resolved config
is saved in the run directory.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from dlbox.base.errors import UserError, close_matches, not_found

C = TypeVar("C")


REQUIRED: Any = dataclasses.MISSING  # ``opt(REQUIRED, help)``: an option the command line must give


def opt(default: Any, help: str | None, *, ge: float | None = None, gt: float | None = None,
        le: float | None = None, lt: float | None = None, flag: str | None = None, metavar: str | None = None,
        nargs: str | None = None, action: str | None = None, const: Any = None, choices: Any = None,
        output: str | bool | None = None):
    """A dataclass field with its --help text (read by the CLI) and, for numbers, its range.

    Every int or float option declares a range (``ge``/``gt``/``le``/``lt``): values outside it, and NaN or
    infinity for floats, are refused when the config is built, before any work starts. The other keywords
    shape the option of a declared command (``dlbox.cliutil.Command``) where its type does not say it all:
    ``flag`` when it is not ``--field-name``, argparse's ``metavar``, ``nargs`` (``list[str]`` is ``+``),
    ``action="append"`` for a repeatable option (``"store_const"`` with ``const``: a shorthand that sets the
    option of the same name, e.g. ``--t2s`` for ``--opencc t2s``), ``choices`` when they are not a ``Literal``.
    ``output="file"`` or ``"dir"``: the option names something the command writes; it is checked before the
    command runs (``dlbox.base.outputs.check_output``). ``output=False``: a path-like name that is not written."""
    meta = {"help": help, **{k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}}
    cli = {"flag": flag, "metavar": metavar, "nargs": nargs, "action": action, "const": const, "choices": choices,
           "output": output}  # fmt: skip
    return _field(default, {**meta, **{k: v for k, v in cli.items() if v is not None}})


@dataclasses.dataclass
class NoOptions:
    """The config of a command without options of its own."""


def positional(help: str | None = None, *, default: Any = REQUIRED, nargs: str | None = None,
               metavar: str | None = None, choices: Any = None, output: str | bool | None = None):
    """A positional argument of a declared command: ``list[str]`` takes one or more (``nargs="+"``),
    ``nargs="?"`` or ``"*"`` with a default makes it optional."""
    cli = {"nargs": nargs, "metavar": metavar, "choices": choices, "output": output}
    return _field(default, {"help": help, "positional": True, **{k: v for k, v in cli.items() if v is not None}})


def section(title: str):
    """A field holding a whole options dataclass (its type): one option per field in a group ``title``
    (``dlbox.cliutil.add_config_options``), read with ``--config FILE`` (a field ``config`` of the command) under
    the options typed."""
    return dataclasses.field(metadata={"section": title})


def _field(default: Any, meta: dict[str, Any]):
    if default is REQUIRED:
        return dataclasses.field(metadata=meta)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


BOUNDS = {"ge": (">=", lambda v, b: v >= b), "gt": (">", lambda v, b: v > b),
          "le": ("<=", lambda v, b: v <= b), "lt": ("<", lambda v, b: v < b)}  # fmt: skip


def bounds_text(meta) -> str:
    """'> 0', '>= 1 and <= 65535', ... ('' when the field declares no range)."""
    def num(v) -> str:
        return str(v) if isinstance(v, int) else f"{v:g}"

    return " and ".join(f"{sym} {num(meta[k])}" for k, (sym, _) in BOUNDS.items() if k in meta)


def range_problem(value: Any, meta) -> str | None:
    """The one range check (config fields and argparse ``number`` types alike): what ``value`` must be when it is
    NaN, infinite or outside the declared range ("must be >= 1 and <= 10"), None when it is fine."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if any(k in meta and not ok(value, meta[k]) for k, (_, ok) in BOUNDS.items()):
        return f"must be {bounds_text(meta)}"
    return None


def check_range(name: str, value: Any, meta, default: Any = None) -> None:
    """Refuse a number outside the field's declared range, and a float that is NaN or infinite."""
    problem = range_problem(value, meta)
    if problem is None:
        return
    flag = "--" + name.replace("_", "-")
    rng = bounds_text(meta)
    if problem == "must be a finite number":
        raise UserError(f"{flag} {problem}, got {value}", f"use a value {rng}" if rng else None)
    good = f"e.g. {flag} {default:g} (the default)" if isinstance(default, (int, float)) else f"use a value {rng}"
    raise UserError(f"{flag} {problem}, got {value:g}", good)


def check_ranges(cfg) -> None:
    """Every numeric field of ``cfg`` inside its declared range (see ``opt``)."""
    for f in dataclasses.fields(cfg):
        check_range(f.name, getattr(cfg, f.name), f.metadata, f.default)


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """Check and convert one value to its declared type (int -> float is fine, 'yes' -> bool is not)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, value, arg)
            except UserError as e:
                errors.append(e)
        raise errors[0]
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = close_matches(str(value), [str(c) for c in choices]) or f"one of {', '.join(map(str, choices))}"
            raise UserError(f"{name}: {value!r} is not a valid value", hint)
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{name}: expected a list, got {value!r}", "write it as a YAML list, e.g. [a, b]")
        (item,) = typing.get_args(tp)[:1] or (Any,)
        return [_coerce(name, v, item) for v in value]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{name}: expected true or false, got {value!r}", "write true or false")
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    if tp in (int, float, str):
        raise UserError(f"{name}: expected {tp.__name__}, got {value!r}", "check the value's type in the config file (see the command's --help)")
    return value


def from_dict(cls: type[C], data: dict[str, Any], *, base: C | None = None) -> C:
    """Build ``cls`` from ``data``; unknown keys are refused with the nearest valid key as a hint."""
    types_ = _field_types(cls)
    for key in data:
        if key not in types_:
            hint = close_matches(key, types_) or f"valid keys: {', '.join(sorted(types_))}"
            raise UserError(f"unknown config key {key!r} for {cls.__name__}", hint)
    values = dataclasses.asdict(base) if base is not None else {}
    values.update({k: _coerce(k, v, types_[k]) for k, v in data.items()})
    cfg = cls(**values)
    check_ranges(cfg)
    if hasattr(cfg, "validate"):
        cfg.validate()
    return cfg


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file {str(p)!r} {not_found(p)}", "check the path given to --config")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"config file {str(p)!r} is not valid YAML: {str(e).splitlines()[0]}", "check the indentation and quoting near that line") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {str(p)!r} must hold a mapping of keys to values", "write one 'key: value' per line, e.g. 'epochs: 3'")
    return data


def resolve(cls: type[C], cli: dict[str, Any], config_file: str | Path | dict[str, Any] | None = None,
            saved: dict[str, Any] | None = None) -> C:
    """The one config builder: defaults < YAML file (a path, or its contents) < ``saved`` (the config of a run
    being resumed) < explicit command-line options (those not None)."""
    data = dict(config_file) if isinstance(config_file, dict) else load_yaml(config_file) if config_file else {}
    data.update(saved or {})
    data.update({k: v for k, v in cli.items() if v is not None and k in _field_types(cls)})
    return from_dict(cls, data)


def to_dict(cfg) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_yaml(cfg_or_dict, path: str | Path) -> None:
    from dlbox.base.fileio import atomic_write_text

    data = cfg_or_dict if isinstance(cfg_or_dict, dict) else to_dict(cfg_or_dict)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
