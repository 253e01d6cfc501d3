"""Shared pieces of the command tree: parser class with one-line errors, options from config dataclasses,
output (--json alone on stdout). Each area registers its commands in ``dlbox/<area>/commands.py``, as a list of
``Command`` specs: a typed dataclass of options (``dlbox.config.opt`` / ``positional`` fields), the library call
it runs and how its result reads; ``group`` (or ``register_commands``) turns them into subcommands."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import os
import sys
import types
import typing
from collections.abc import Callable, Sequence
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
        from dlbox.config import range_problem

        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if self.kind is int else 'a number'}, got {text!r}") from None
        problem = range_problem(value, self.bounds)  # the same check as a config field's
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{problem}, got {text}")
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
        if f.metadata.get("output") is not None:
            _declare(p, f.name, f.metadata["output"], flag(f.name), default)
    # The config class lets tests walk every option of every command; the path names the resume command.
    p.set_defaults(config_cls=cls, command_path=p.prog)
    _declare(p)


def config_from_args(cls, args: argparse.Namespace):
    """Defaults < --config FILE < the saved config of --resume RUN < options typed on the command line
    (``dlbox.config.resolve``, the one config builder)."""
    from dlbox.config import load_yaml, resolve
    from dlbox.engine import checkpoint

    names = {f.name for f in dataclasses.fields(cls)}
    typed = {k: v for k, v in vars(args).items() if k in names and v is not None}
    data: dict[str, Any] = load_yaml(args.config) if getattr(args, "config", None) else {}
    explicit = set(data) | set(typed)  # typed or in --config: these win over a cluster's environment
    saved = checkpoint.saved_config(typed["resume"]) if typed.get("resume") else None
    _check_same_task(saved, names, typed.get("resume"), args)
    cfg = resolve(cls, typed, data, saved)
    if "nproc_per_node" in names:  # a training config: what the user set wins over a cluster's environment
        cfg._typed = frozenset(explicit)  # read by dlbox.engine.cluster.explicit_fields
    return cfg


def _check_same_task(saved: dict | None, names: set[str], resume: str | None, args: argparse.Namespace) -> None:
    """A run of another task given to --resume (a classify run to `detect train`) is said to be one, not
    reported as an unknown config key of this command."""
    foreign = sorted(k for k in (saved or {}) if k not in names)
    if not foreign:
        return
    from dlbox.base.errors import UserError
    from dlbox.engine import checkpoint

    run = checkpoint.run_dir_of(checkpoint.resolve(resume))
    raise UserError(f"--resume {resume}: that run belongs to another task (its config has "
                    f"{', '.join(map(repr, foreign[:3]))}, which `{getattr(args, 'command_path', 'this command')}` "
                    "does not know)", f"resume it with its own task's train command, e.g. `dlbox {run.parent.name} "
                    f"train --resume {run}`")  # fmt: skip


def emit(args: argparse.Namespace, result: Any, render) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    else:
        print(render(result))


def add_json(p: argparse.ArgumentParser, help: str | None = None) -> None:
    p.add_argument("--json", action="store_true", help=help or "print one JSON document on stdout (nothing else there)")


@dataclasses.dataclass(frozen=True)
class Command:
    """One command as data. ``config``'s fields are its arguments; ``run(cfg)`` does the work (a library call:
    import inside it, or use ``lazy``/``call``, so that building the parser imports no torch) and returns the
    result that --json prints, or None for nothing to print; ``render(result)`` (or ``render(result, cfg)``) is
    the human output; ``exit_code(result)`` the status (default 0). A training command sets ``train`` to the title
    of its options group: its options come from ``add_config_options`` and its config from ``config_from_args``
    (``--config FILE`` and ``--resume`` merged). ``run`` may take a parameter ``as_json`` (whether --json was
    given). A command that prints as it goes (a server's address, a live watch) sets ``streams``: its
    ``run(cfg, as_json)`` prints and returns the exit status; ``json_help`` then says what --json prints."""

    name: str
    help: str
    example: str
    config: type
    run: Callable[[Any], Any]
    render: Callable[..., str] = str
    exit_code: Callable[[Any], int] | None = None
    description: str | None = None
    train: str | None = None
    streams: bool = False
    json_help: str | None = None


def register_commands(sub, commands: Sequence[Command | Callable[[Any], None]]) -> dict[str, Parser]:
    """Each spec as a subcommand of ``sub``: --help with its example, --json, its config's fields as arguments
    (a nested group's ``register`` is called with ``sub``). Returns the specs' parsers by name."""
    parsers = {}
    for c in commands:
        if not isinstance(c, Command):
            c(sub)
            continue
        p = command(sub, c.name, c.help, c.example, c.description)
        add_json(p, c.json_help)
        if c.train:
            p.add_argument("--config", help="a YAML file of options (typed options win)")
            add_config_options(p, c.config, title=c.train)
        else:
            add_fields(p, c.config)
        # config_cls: the class --config FILE fills (tests walk it for every numeric option's range)
        config_cls = c.config if c.train else _section(c.config) or c.config
        p.set_defaults(func=lambda args, c=c: run_command(c, args), config_cls=config_cls, command_path=p.prog,
                       spec=c)  # fmt: skip
        parsers[c.name] = p
    return parsers


def _section(cls) -> type | None:
    hints = typing.get_type_hints(cls)
    return next((hints[f.name] for f in dataclasses.fields(cls) if "section" in f.metadata), None)


def group(name: str, help: str, example: str, commands: Sequence[Command | Callable[[Any], None]],
          description: str | None = None) -> Callable[[Any], None]:
    """``register = group(NAME, help, example, COMMANDS)`` in an area's commands.py: the register function of the
    command group ``dlbox NAME SUBCOMMAND``. ``commands`` holds Command specs, or the ``register`` of a group
    nested inside (``dlbox text w2v ...``)."""

    def register(sub) -> None:
        p = command(sub, name, help, example, description)
        register_commands(p.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", parser_class=type(p),
                                           required=True), commands)  # fmt: skip

    return register


def run_command(c: Command, args: argparse.Namespace) -> int:
    cfg = config_from_args(c.config, args) if c.train else fields_from_args(c.config, args)
    as_json = bool(getattr(args, "json", False))
    result = c.run(cfg, as_json=as_json) if _takes_json(c.run) else c.run(cfg)
    if c.streams:  # it printed as it went; the result is the exit status
        return result or 0
    if result is None:  # e.g. a DDP worker that is not rank 0: that one reports
        return 0
    takes_cfg = _positional_params(c.render) >= 2
    emit(args, result, (lambda r: c.render(r, cfg)) if takes_cfg else c.render)
    return c.exit_code(result) if c.exit_code else 0


def _takes_json(fn) -> bool:
    try:
        return "as_json" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _positional_params(fn) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins such as str
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return 1 if any(p.kind is p.VAR_POSITIONAL for p in params) else sum(p.kind in kinds for p in params)


def add_fields(p: argparse.ArgumentParser, cls) -> None:
    """One argument per field of a declared command, shaped by its type and ``opt``/``positional`` metadata:
    ``bool`` a flag (``--x``, or ``--x/--no-x`` when it defaults to true), ``Literal[...]`` choices, ``list[T]``
    ``nargs="+"``, ``int``/``float`` a ``number`` type with the field's range (one line and exit 2 at parse
    time), no default (``REQUIRED``) a required option, a ``section`` the options of its dataclass (as a training
    command's). Defaults are the fields' own: the parsed arguments are the config."""
    from dlbox.config import BOUNDS

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        base, choices, many = _shape(hints[f.name])
        kw: dict[str, Any] = {"help": meta.get("help")}
        if "section" in meta:
            add_config_options(p, hints[f.name], title=meta["section"])
            continue
        for key in ("metavar", "nargs", "action", "const"):
            if key in meta:
                kw[key] = meta[key]
        if meta.get("choices") or choices:
            kw["choices"] = list(meta.get("choices") or choices)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        if many and "action" not in meta:
            kw.setdefault("nargs", "+")
        if base is bool and not many and "action" not in meta:
            kw["action"] = argparse.BooleanOptionalAction if default else "store_true"
        elif base in (int, float) and meta.get("action") in (None, "append"):  # a store_const takes no value
            bounds = {k: meta[k] for k in BOUNDS if k in meta}
            kw["type"] = number(base, **bounds) if bounds else base
        if meta.get("positional"):
            p.add_argument(f.name, **kw, **({} if required else {"default": default}))
        else:
            p.add_argument(meta.get("flag") or flag(f.name), dest=f.name, required=required, default=default, **kw)
        if meta.get("output") is not None:
            _declare(p, f.name, meta["output"], f.name.upper() if meta.get("positional") else
                     meta.get("flag") or flag(f.name), default)  # fmt: skip
    _declare(p)


def _declare(p: argparse.ArgumentParser, dest: str | None = None, kind: str | None = None, label: str | None = None,
             default: Any = None) -> None:
    """Record on the parser that option ``dest`` names a ``kind`` ("file"/"dir") the command writes (its
    ``outputs`` default, checked by ``check_outputs`` before the command runs). Without ``dest``: mark the
    command as having declared its outputs (possibly none)."""
    outputs = list(p.get_default("outputs") or [])
    if kind is False:  # a path-like option that is only read
        p.set_defaults(not_outputs=[*(p.get_default("not_outputs") or []), dest])
    elif dest is not None:
        if kind not in ("file", "dir"):
            raise ValueError(f"output of {dest!r} must be 'file' or 'dir', got {kind!r}")
        outputs = [o for o in outputs if o[0] != dest] + [(dest, kind, label or flag(dest), default)]
    p.set_defaults(outputs=outputs)


def declare_outputs(p: argparse.ArgumentParser, **kinds: str) -> None:
    """For a hand-written parser: ``declare_outputs(p, out="file", runs_dir="dir")`` (argparse dests), after the
    arguments are added; ``declare_outputs(p)``: the command writes nothing a user names; ``runs_dir=False``:
    that path-like option is read, not written."""
    actions = {a.dest: a for a in p._actions}
    for dest, kind in kinds.items():
        a = actions[dest]
        _declare(p, dest, kind, a.option_strings[0] if a.option_strings else (a.metavar or dest.upper()), a.default)
    _declare(p)


def check_outputs(args: argparse.Namespace) -> None:
    """Every output the command declared, checked before its function runs (``dlbox.base.outputs``). An option
    left out (None) is checked at its default, unless a run is resumed (its saved config decides)."""
    from dlbox.base.outputs import check_output

    for dest, kind, label, default in getattr(args, "outputs", None) or ():
        value = getattr(args, dest, None)
        if value is None:
            if getattr(args, "resume", None):
                continue
            value = default
        if isinstance(value, (list, tuple)):
            for v in value:
                check_output(v, kind, label)
        elif isinstance(value, (str, os.PathLike)):
            check_output(value, kind, label)


def _shape(tp) -> tuple[Any, tuple | None, bool]:
    """(item type, Literal choices or None, whether a list) of ``T``, ``T | None``, ``list[T]``, ``Literal[...]``."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        tp = args[0]
    if typing.get_origin(tp) in (list, tuple):
        return (*_shape(typing.get_args(tp)[0])[:2], True)
    if typing.get_origin(tp) is typing.Literal:
        choices = typing.get_args(tp)
        return type(choices[0]), choices, False
    return tp, None, False


def fields_from_args(cls, args: argparse.Namespace):
    """The config of a declared command from its parsed arguments (ranges and choices were checked by argparse);
    its ``validate()``, if any, refuses combinations before any work starts."""
    from dlbox.config import check_ranges

    hints = typing.get_type_hints(cls)
    cfg = cls(**{f.name: config_from_args(hints[f.name], args) if "section" in f.metadata else getattr(args, f.name)
                 for f in dataclasses.fields(cls)})  # fmt: skip
    check_ranges(cfg)  # argparse checked the typed values; this checks the defaults too (the one range check)
    if hasattr(cfg, "validate"):
        cfg.validate()
    return cfg


def lazy(ref: str) -> Callable[..., Any]:
    """``lazy("dlbox.tasks.detect.metrics:render")``: that function, imported when first called (the parser is
    built without importing the libraries, and torch)."""
    module, _, name = ref.partition(":")

    def fn(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    fn.__qualname__ = fn.__name__ = ref
    fn.ref = ref  # tests/test_cli.py resolves every one
    return fn


def call(ref: str, **renamed: str) -> Callable[[Any], Any]:
    """``run=call("pkg.mod:fn")``: ``fn`` called with the config's fields as keyword arguments;
    ``call(ref, fmt="format")`` passes the field ``format`` as ``fn``'s parameter ``fmt``."""
    target = lazy(ref)

    def run(cfg):
        kwargs = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
        for param, name in renamed.items():
            kwargs[param] = kwargs.pop(name)
        return target(**kwargs)

    run.ref = ref
    return run
