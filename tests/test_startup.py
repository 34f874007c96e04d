"""What a check loads before any work: the Lua grammar without its package's resource machinery,
argparse without `shutil`, and the same grammar and help text as the standard way."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import sys
from auditor.cli import build_parser
from auditor.lua.syntax import parse
parse(b"local x = 1")
build_parser("check")
print(" ".join(m for m in ("importlib.resources", "shutil", "tempfile", "tree_sitter_lua")
               if m in sys.modules))
"""


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=60,
    )


def test_parsing_and_the_parser_load_no_resource_machinery() -> None:
    proc = _python(PROBE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == []


def test_directly_loaded_grammar_is_the_packages_grammar() -> None:
    import tree_sitter_lua
    from tree_sitter import Language

    from auditor.lua.syntax import lua_language, parse

    ours, theirs = lua_language(), Language(tree_sitter_lua.language())
    assert (ours.name, ours.abi_version, ours.node_kind_count, ours.field_count) == (
        theirs.name,
        theirs.abi_version,
        theirs.node_kind_count,
        theirs.field_count,
    )
    kinds = range(ours.node_kind_count)
    assert [ours.node_kind_for_id(i) for i in kinds] == [theirs.node_kind_for_id(i) for i in kinds]
    tree = parse(b"local t = { a = f(1) }\n")
    assert not tree.root_node.has_error
    assert tree.root_node.child(0).type == "variable_declaration"


def test_help_follows_the_terminal_width() -> None:
    """Help is wrapped to COLUMNS, as argparse's own formatter does (a usage group or a list of
    choices is never broken)."""
    heights = {}
    for columns in (50, 120):
        proc = _python(
            "from auditor.cli import main; main(['check', '--help'])", COLUMNS=str(columns)
        )
        lines = proc.stdout.splitlines()
        assert proc.returncode == 0 and len(lines) > 10, proc.stderr
        heights[columns] = len(lines)
        overlong = [line.strip() for line in lines if len(line) > columns - 2]
        # only what argparse never breaks: one usage group, or an option with its choices
        assert all(
            (text.startswith("[") and text.endswith("]")) or "{" in text for text in overlong
        ), overlong
    assert heights[50] > heights[120]
