"""One command path: every command of the tree is a declared ``Command`` spec, and every library function a spec
names lazily ("module:function", imported only when the command runs) exists. The targets are found in their
modules' source (ast) rather than imported: importing every library behind the CLI takes a minute on 2 cores."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

from dlbox.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
REF = re.compile(r"""\b(?:lazy|call)\(\s*["'](dlbox\.[\w.]+:\w+)["']""")


def _leaves(parser: argparse.ArgumentParser, path: str = "dlbox"):
    """(command path, parser) of every command that runs something."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if parser.get_default("func") is not None:
        yield path, parser
    for sub in subs:
        for name, p in sub.choices.items():
            yield from _leaves(p, f"{path} {name}")


COMMANDS = list(_leaves(build_parser()))


def _defined(tree: ast.Module) -> set[str]:
    """Top-level names of a module: functions, classes, assignments, imports."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _missing(ref: str) -> str | None:
    """Why ``module:name`` does not resolve, or None."""
    module, _, name = ref.partition(":")
    base = ROOT.joinpath(*module.split("."))
    source = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
    if source is None:
        return f"{ref}: no module {module}"
    if name not in _defined(ast.parse(source.read_text())):
        return f"{ref}: {module} has no {name}"
    return None


def test_the_walk_finds_the_command_tree():
    paths = {p for p, _ in COMMANDS}
    assert {"dlbox bench", "dlbox notebook", "dlbox board", "dlbox env gpu", "dlbox demo", "dlbox env test"} <= paths
    assert len(paths) > 40


@pytest.mark.parametrize("path,parser", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_is_a_declared_spec_whose_targets_resolve(path, parser):
    spec = parser.get_default("spec")
    assert spec is not None, f"{path} is registered by hand: declare it as a dlbox.cliutil.Command"
    for fn in (spec.run, spec.render, spec.exit_code):
        ref = getattr(fn, "ref", None)
        assert ref is None or _missing(ref) is None, _missing(ref)


def test_every_lazy_reference_in_the_sources_resolves():
    refs = {m for f in (ROOT / "dlbox").rglob("*.py") for m in REF.findall(f.read_text())}
    assert len(refs) > 20
    missing = [m for m in map(_missing, sorted(refs)) if m]
    assert not missing, missing


def test_a_wrong_reference_is_found():
    assert _missing("dlbox.cliutil:no_such_function") and _missing("dlbox.no_such_module:x")
    assert _missing("dlbox.cliutil:lazy") is None
