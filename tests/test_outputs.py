"""Every output path of every command is checked before any work starts (dlbox.base.outputs.check_output).

The cases are read off the command tree: each command declares what it writes (``opt(..., output="file")`` or
``"dir"``; ``declare_outputs`` for a hand-written parser). Each declared output is fed an existing file where a
folder is wanted (or a folder where a file is wanted), a place under a file, and a read-only place (a tmpfs
mounted read-only, as the full-disk tests mount theirs): exit 2, one line, no traceback, nothing written.
In-process through dlbox.cli.main: the whole walk takes about a second."""

from __future__ import annotations

import argparse
import os
import re
import subprocess

import pytest

from dlbox.base.outputs import OutputError, check_output
from dlbox.cli import build_parser
from tests.conftest import assert_user_error, run_main
from tests.test_options import _commands

PARSER = build_parser()
COMMANDS = list(_commands(PARSER))

# option names that usually name something written: such an option must say whether it is (output="file"/"dir")
# or is not (output=False)
OUTPUTISH = re.compile(r"^(out|output|.*_out|save|save_(?!every).*|dir|.*_dir|to|dst|dest|csv|heatmap|results|.*cache.*)$")


def _declared(parser) -> list[tuple[str, str, str, object]]:
    return list(parser.get_default("outputs") or [])


def _path_options(parser):
    """Actions that take a string (not a flag, not a number, not choices)."""
    for a in parser._actions:
        if a.dest in ("help", "json", "config") or isinstance(a, argparse._SubParsersAction):
            continue
        if a.nargs == 0 or a.choices or (a.type is not None and a.type is not str):
            continue
        yield a


def test_every_command_declares_its_outputs():
    undeclared = [" ".join(p) for p, parser in COMMANDS if parser.get_default("outputs") is None]
    assert not undeclared, (
        f"commands that do not declare their outputs: {undeclared}; declare them: opt(..., output='file'|'dir') "
        "in the command's config (output=False for a path that is only read), or "
        "dlbox.cliutil.declare_outputs(parser, out='file') for a hand-written parser (declare_outputs(parser) "
        "when it writes nothing)"
    )
    missing = []
    for path, parser in COMMANDS:
        known = {o[0] for o in _declared(parser)} | set(parser.get_default("not_outputs") or ())
        for a in _path_options(parser):
            if OUTPUTISH.match(a.dest) and a.dest not in known:
                missing.append(f"{' '.join(path)} {a.option_strings[0] if a.option_strings else a.dest}")
    assert not missing, (
        f"options named like outputs without a declaration: {missing}; add output='file' or output='dir' "
        "(or output=False when the command only reads it) to their opt(...)"
    )


def test_the_walk_covers_the_writers():
    walked = {(" ".join(p), o[2]) for p, parser in COMMANDS for o in _declared(parser)}
    for case in [("data sample", "--out"), ("classify train", "--runs-dir"), ("face detect", "--save-crops"),
                 ("detect predict", "--save-images"), ("face compare", "--heatmap"), ("caffe convert-imageset", "OUT"),
                 ("asr export", "--out"), ("data coco export-yolo", "--out"), ("bench", "--save")]:  # fmt: skip
        assert case in walked, case


@pytest.fixture(scope="module")
def read_only(tmp_path_factory):
    """A read-only folder: a tmpfs mounted read-only where this machine allows it (CI runs as root), else a
    folder without write permission (that works for a user who is not root)."""
    mnt = tmp_path_factory.mktemp("ro")
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(mnt)], capture_output=True)
        mounted = proc.returncode == 0
    except FileNotFoundError:
        mounted = False
    if not mounted:
        os.chmod(mnt, 0o555)
        if os.access(mnt, os.W_OK):  # root without mount: no way to make a read-only place
            pytest.skip("cannot make a read-only folder here (root without mount)")
    yield mnt
    if mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
    else:
        os.chmod(mnt, 0o755)


def _args(parser, dest: str, value: str) -> list[str]:
    """The command line: ``value`` for ``dest``, placeholders for the other positionals and required options."""
    args: list[str] = []
    for a in parser._actions:
        if a.dest in ("help",) or isinstance(a, argparse._SubParsersAction):
            continue
        if not a.option_strings:
            if a.dest == dest:
                args.append(value)
            elif a.nargs not in ("*", "?"):
                args.append(list(a.choices)[0] if a.choices else "placeholder")
        elif a.dest == dest:
            args += [a.option_strings[0], value]
        elif a.required:
            args += [a.option_strings[0], list(a.choices)[0] if a.choices else "placeholder"]
    return args


CASES = [
    pytest.param(path, parser, dest, kind, label, how, id=f"{' '.join(path)} {label} {how}")
    for path, parser in COMMANDS
    for dest, kind, label, _ in _declared(parser)
    for how in ("wrong-kind", "under-a-file", "read-only")
]


def _tree(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("path, parser, dest, kind, label, how", CASES)
def test_a_bad_output_is_one_line_before_any_work(path, parser, dest, kind, label, how, tmp_path, read_only,
                                                  monkeypatch, capsys):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("dlbox.cli.build_parser", lambda: PARSER)
    monkeypatch.setenv("DLBOX_HOME", str(tmp_path / "home"))
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "a-folder").mkdir()
    value = {"wrong-kind": tmp_path / ("a-file" if kind == "dir" else "a-folder"),
             "under-a-file": tmp_path / "a-file" / "out",
             "read-only": read_only / "out"}[how]  # fmt: skip
    before = _tree(tmp_path)
    res = run_main(capsys, *path, *_args(parser, dest, str(value)))
    line = assert_user_error(res, str(value))
    assert label in line, line
    assert _tree(tmp_path) == before, "something was written before the output was checked"
    assert list(read_only.iterdir()) == []


def test_the_check_accepts_what_can_be_written(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    assert check_output(tmp_path / "old.txt", "file") == tmp_path / "old.txt"  # replaced atomically
    assert check_output(tmp_path / "new" / "deeper" / "f.json", "file")  # parents are made by the writer
    assert check_output(tmp_path, "dir") == tmp_path
    assert check_output(tmp_path / "new-dir", "dir")
    assert check_output("s3://bucket/prefix", "dir") is None
    assert check_output(None, "file") is None


def test_the_check_names_the_path_and_what_to_do(tmp_path, read_only):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder") as e:
        check_output(tmp_path / "f", "dir", "--out")
    assert "--out" in str(e.value) and "hint:" in str(e.value)
    with pytest.raises(OutputError, match="is a folder, not a file"):
        check_output(tmp_path, "file")
    with pytest.raises(OutputError, match="read-only|permission") as e:
        check_output(read_only / "x" / "y.txt", "file")
    assert str(read_only) in str(e.value)
    with pytest.raises(ValueError):
        check_output(tmp_path, "folder")
