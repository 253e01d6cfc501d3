"""The command tree: help with examples everywhere, one-line user errors, --json alone on stdout."""

from __future__ import annotations

import argparse
import json

import pytest

from dlbox.cli import build_parser, main
from tests.conftest import assert_user_error


def _command_paths(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _command_paths(sub, (*prefix, name))


COMMANDS = sorted(_command_paths(build_parser()))


def test_top_level_help_lists_every_command_with_a_description(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for path in COMMANDS:
        if len(path) == 1:
            assert f"    {path[0]} " in out


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_help_has_an_example(path, capsys):
    with pytest.raises(SystemExit) as e:
        main([*path, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and f"dlbox {' '.join(path)}" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: dlbox" in capsys.readouterr().out


def test_bad_option_value_is_one_line_exit_2(cli):
    assert_user_error(cli("env", "test", "--precision", "fp64"), "fp64", "hint:")


def test_unknown_option_is_one_line_exit_2(cli):
    assert_user_error(cli("env", "test", "--epochz", "3"), "--epochz")


def test_missing_data_path_is_one_line_exit_2(cli, tmp_path):
    missing = tmp_path / "nope"
    assert_user_error(cli("env", "test", "--framework", "torch", "--data", missing), str(missing), "hint:")


def test_missing_resume_path_is_one_line_exit_2(cli, tmp_path):
    assert_user_error(cli("env", "test", "--resume", tmp_path / "gone"), "does not exist")


def test_out_of_range_value_is_one_line_exit_2(cli):
    assert_user_error(cli("env", "test", "--nnodes", "2", "--node-rank", "5"), "--node-rank 5")


def test_unknown_config_key_names_the_near_match(cli, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epoch: 3\n")
    line = assert_user_error(cli("env", "test", "--config", cfg), "'epoch'")
    assert "did you mean 'epochs'" in line


def test_env_json_is_the_only_thing_on_stdout(cli):
    res = cli("env", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)  # fails if anything else shares stdout
    assert report["torch"]


def test_python_dash_m_and_version(cli):
    res = cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("dlbox ")
