"""Commands declared as data (dlbox.cliutil.Command): a dataclass's fields become the arguments, with their types'
shape, and the spec's run/render/exit_code make the command."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Literal

import pytest

from dlbox.base.errors import UserError
from dlbox.cliutil import Bounded, Command, Parser, call, group, register_commands
from dlbox.config import REQUIRED, opt, positional, section


@dataclass(kw_only=True)
class CopyArgs:
    source: str = positional("what to copy")
    extra: list[str] = positional("more of it")
    out: str = opt(REQUIRED, "where to")
    mode: Literal["fast", "safe"] = opt("safe", "how")
    times: int = opt(1, "how often", ge=1, le=3)
    ratio: float | None = opt(None, "a share", gt=0, lt=1)
    verbose: bool = opt(False, "say more")
    tags: list[str] | None = opt(None, "labels", action="append", metavar="TAG")
    origin: str | None = opt(None, "where from", flag="--from")

    def validate(self) -> None:
        if self.source == self.out:
            raise UserError("source and --out are the same", "give another --out")


def copy(source, extra, out, mode, times, ratio, verbose, tags, origin):
    return {"files": [source, *extra], "out": out, "mode": mode, "times": times, "ratio": ratio,
            "verbose": verbose, "tags": tags, "origin": origin}  # fmt: skip


COPY = Command("copy", "copy things", "tool copy a b --out c", CopyArgs,
               call("tests.test_cliutil:copy"), lambda r: f"copied {len(r['files'])} to {r['out']}",
               exit_code=lambda r: 3 if r["mode"] == "fast" else 0)  # fmt: skip


def _tree(*commands: Command) -> Parser:
    p = Parser(prog="tool")
    register_commands(p.add_subparsers(dest="cmd", parser_class=Parser), commands)
    return p


def _action(parser: argparse.ArgumentParser, path: str, dest: str) -> argparse.Action:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[path]
    return next(a for a in sub._actions if a.dest == dest)


def _run(capsys, parser, *argv):
    capsys.readouterr()
    try:
        args = parser.parse_args(list(argv))
        rc = args.func(args)
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_fields_become_arguments_of_their_shape():
    p = _tree(COPY)
    assert _action(p, "copy", "source").option_strings == [] and _action(p, "copy", "source").nargs is None
    assert _action(p, "copy", "extra").nargs == "+"
    assert _action(p, "copy", "out").required
    assert _action(p, "copy", "mode").choices == ["fast", "safe"] and _action(p, "copy", "mode").default == "safe"
    times = _action(p, "copy", "times")
    assert isinstance(times.type, Bounded) and times.type.kind is int and times.type.bounds == {"ge": 1, "le": 3}
    assert _action(p, "copy", "ratio").type.bounds == {"gt": 0, "lt": 1}
    assert isinstance(_action(p, "copy", "verbose"), argparse._StoreTrueAction)
    assert isinstance(_action(p, "copy", "tags"), argparse._AppendAction) and _action(p, "copy", "tags").metavar == "TAG"
    assert _action(p, "copy", "origin").option_strings == ["--from"]
    assert _action(p, "copy", "json").option_strings == ["--json"]


def test_parsed_arguments_are_the_config_the_library_gets(capsys):
    rc, out, err = _run(capsys, _tree(COPY), "copy", "a", "b", "c", "--out", "d", "--times", "2", "--tags", "x",
                        "--tags", "y", "--from", "here", "--verbose", "--json")  # fmt: skip
    assert rc == 0 and err == ""
    assert json.loads(out) == {"files": ["a", "b", "c"], "out": "d", "mode": "safe", "times": 2, "ratio": None,
                               "verbose": True, "tags": ["x", "y"], "origin": "here"}  # fmt: skip


def test_render_is_the_human_output_and_exit_code_comes_from_the_result(capsys):
    rc, out, _ = _run(capsys, _tree(COPY), "copy", "a", "b", "--out", "d", "--mode", "fast")
    assert (rc, out) == (3, "copied 2 to d\n")


def test_a_render_of_two_parameters_also_gets_the_config(capsys):
    spec = Command("copy", "copy things", "tool copy a b --out c", CopyArgs, call("tests.test_cliutil:copy"),
                   lambda r, cfg: f"{cfg.mode} x{cfg.times}")  # fmt: skip
    assert _run(capsys, _tree(spec), "copy", "a", "b", "--out", "d", "--times", "3")[1] == "safe x3\n"


@pytest.mark.parametrize("argv, fragment", [
    (["--mode", "slow"], "invalid choice: 'slow'"),
    (["--times", "4"], "--times: must be >= 1 and <= 3, got 4"),
    (["--times", "two"], "--times: expected an integer, got 'two'"),
    (["--ratio", "nan"], "--ratio: must be a finite number"),
])  # fmt: skip
def test_a_bad_value_is_one_line_exit_2(argv, fragment, capsys):
    rc, out, err = _run(capsys, _tree(COPY), "copy", "a", "b", "--out", "d", *argv)
    assert rc == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and fragment in err, err


def test_a_missing_argument_is_one_line_exit_2(capsys):
    rc, _, err = _run(capsys, _tree(COPY), "copy", "a")
    assert rc == 2 and len(err.splitlines()) == 1 and "required: extra, --out" in err, err


def test_validate_refuses_a_combination_before_the_run():
    calls = []
    spec = Command("copy", "copy things", "tool copy a b --out c", CopyArgs, lambda cfg: calls.append(cfg))
    p = _tree(spec)
    args = p.parse_args(["copy", "a", "b", "--out", "a"])
    with pytest.raises(UserError, match="the same"):
        args.func(args)
    assert calls == []


def test_help_shows_the_example_and_the_fields_help(capsys):
    rc, out, _ = _run(capsys, _tree(COPY), "copy", "--help")
    assert rc == 0 and "example:\n  tool copy a b --out c" in out
    assert "how often" in out and "--from ORIGIN" in out and "{fast,safe}" in out


def test_the_parser_records_the_config_class_and_command_path():
    args = _tree(COPY).parse_args(["copy", "a", "b", "--out", "d"])
    assert args.config_cls is CopyArgs and args.command_path == "tool copy"


@dataclass
class Knobs:
    width: int = opt(4, "how wide", ge=1)
    fancy: bool = opt(False, "dress up")


@dataclass(kw_only=True)
class DrawArgs:
    canvas: str = positional("where")
    config: str | None = opt(None, "a YAML file of options")
    width: int | None = opt(None, "a shorthand for --width 8", flag="--wide", action="store_const", const=8)
    knobs: Knobs = section("drawing")


def test_a_section_is_options_of_its_own_dataclass_under_a_config_file(tmp_path, capsys):
    spec = Command("draw", "draw", "tool draw c", DrawArgs, lambda c: {"canvas": c.canvas, **vars(c.knobs)})
    (tmp_path / "k.yaml").write_text("width: 5\nfancy: true\n")
    p = _tree(spec)
    assert json.loads(_run(capsys, p, "draw", "c", "--json")[1]) == {"canvas": "c", "width": 4, "fancy": False}
    assert json.loads(_run(capsys, p, "draw", "c", "--config", str(tmp_path / "k.yaml"), "--width", "6", "--json")[1]) == {
        "canvas": "c", "width": 6, "fancy": True}  # typed options win over the file
    assert json.loads(_run(capsys, p, "draw", "c", "--wide", "--json")[1])["width"] == 8
    assert p.parse_args(["draw", "c"]).config_cls is Knobs  # the class --config FILE fills


def test_a_training_command_reads_config_files_and_refuses_bad_values_in_one_line(tmp_path):
    spec = Command("fit", "fit", "tool fit", Knobs, lambda cfg: vars(cfg), train="fitting")
    p = _tree(spec)
    (tmp_path / "k.yaml").write_text("width: 7\n")
    args = p.parse_args(["fit", "--config", str(tmp_path / "k.yaml"), "--fancy"])
    assert args.config_cls is Knobs
    from dlbox.cliutil import config_from_args

    assert vars(config_from_args(Knobs, args)) == {"width": 7, "fancy": True}
    args = p.parse_args(["fit", "--width", "0"])
    with pytest.raises(UserError, match="--width must be >= 1, got 0"):
        args.func(args)


def test_a_group_holds_commands_and_nested_groups(capsys):
    p = Parser(prog="tool")
    nested = group("more", "more tools", "tool files more copy a b --out c", [COPY])
    register = group("files", "file tools", "tool files copy a b --out c", [COPY, nested])
    register(p.add_subparsers(dest="cmd", parser_class=Parser))
    args = p.parse_args(["files", "more", "copy", "a", "b", "--out", "c"])
    assert (args.files_command, args.more_command, args.command_path) == ("more", "copy", "tool files more copy")
    rc, _, err = _run(capsys, p, "files")
    assert rc == 2 and "required: SUBCOMMAND" in err and len(err.splitlines()) == 1
