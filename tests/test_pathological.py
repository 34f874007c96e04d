"""Valid but pathological input is audited in bounded time, or reported, never a hang or a crash.

Lua accepts suffix chains of any length (`t.b.b.b...`, `t()()()`, `t[1][1]`, `t:m():m()`): its
parser loops over them, but they are 10,000 levels deep in the syntax tree. Time bounds are CPU
seconds and generous (a shared machine); the quadratic and cubic walks they guard against took
minutes at these sizes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from auditor.lua.facts import MAX_TOKENS, TooComplex, estimated_tokens, extract
from tests.conftest import audit, codes_at, run_cli, write_tree

CHAIN = 10_000
CPU_BOUND_S = 10.0


def _timed_audit(root: Path):  # type: ignore[no-untyped-def]
    start = time.process_time()
    result = audit(root)
    return result, time.process_time() - start


@pytest.mark.parametrize(
    "link",
    [".b", "()", "[1]", ":m()", "['k']"],
    ids=["field", "call", "index", "method", "string-index"],
)
def test_long_suffix_chains_are_audited_in_bounded_time(tmp_path: Path, link: str) -> None:
    write_tree(tmp_path, {"init.lua": "local v = t" + link * CHAIN + "\nreturn v\n"})
    result, cpu = _timed_audit(tmp_path)
    assert codes_at(result.findings, "E1") == []
    assert cpu < CPU_BOUND_S, f"{cpu:.1f} s of CPU"


def test_long_chain_as_a_call_statement_and_on_kumo(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": "local kumo = require 'kumo'\n"
            + "t" + ".b" * CHAIN + "()\n"
            + "local x = kumo" + ".b" * CHAIN + "\n"
            + "kumo" + ":m()" * CHAIN + "\n"
        },
    )  # fmt: skip
    result, cpu = _timed_audit(tmp_path)
    assert codes_at(result.findings, "E1") == []
    assert cpu < CPU_BOUND_S, f"{cpu:.1f} s of CPU"
    # the first links of the chain are still resolved like any other name
    paths = {m.path for m in result.context.model.modules["init.lua"].facts.members}
    assert ("kumo", "b") in paths and ("kumo", "b", "b") in paths


def test_chain_links_resolve_like_short_ones() -> None:
    facts = extract(b"local kumo = require 'kumo'\nkumo.a.b('x')\nlocal y = kumo.c\ny.d()\n")
    assert [c.callee for c in facts.calls if c.callee[0] == "kumo"] == [
        ("kumo", "a", "b"),
        ("kumo", "c", "d"),
    ]


def test_long_binary_chain_is_not_recursive(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "local v = 1" + " + 1" * 100_000 + "\nreturn v\n"})
    result, cpu = _timed_audit(tmp_path)
    assert codes_at(result.findings, "E1") == []
    assert cpu < CPU_BOUND_S, f"{cpu:.1f} s of CPU"


def test_huge_one_line_policy_is_e102_quickly(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "f(1) " * 750_000 + "\n"})  # 3.75 MB, under the size limit
    start = time.monotonic()
    proc = run_cli("check", str(tmp_path), env={"KUMO_AUDIT_NO_CACHE": "1"})
    elapsed = time.monotonic() - start
    assert proc.returncode == 1, proc.stderr
    assert "E102" in proc.stdout and "per-file budget" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert elapsed < 30, f"{elapsed:.1f} s"


def test_budget_counts_tokens_not_bytes() -> None:
    with pytest.raises(TooComplex):
        extract(b"v=1;" * (MAX_TOKENS // 3))
    # long comments and strings are cheap to parse, and within the budget
    text = b"-- " + b"x" * 4_000_000 + b"\nlocal s = '" + b"y" * 1_000_000 + b"'\n"
    assert estimated_tokens(text) < 20
    assert extract(text).has_error is False


def test_one_line_policy_under_the_budget_is_linear(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "local t = {} " + "t.x = 1 " * 20_000})
    result, cpu = _timed_audit(tmp_path)
    assert codes_at(result.findings, "E1") == []
    assert cpu < CPU_BOUND_S * 2, f"{cpu:.1f} s of CPU"


@pytest.mark.parametrize(
    "loader",
    [
        "local shaping = require 'policy-extras.shaping'\n"
        "local s = shaping:setup_with_automation { extra_files = "
        "{ '/opt/kumomta/etc/policy/shaping.toml' } }\n",
        "local kumo = require 'kumo'\n"
        "local d = kumo.toml_load '/opt/kumomta/etc/policy/shaping.toml'\n",
    ],
    ids=["helper", "toml_load"],
)
def test_deeply_dotted_toml_header_is_e102_quickly(tmp_path: Path, loader: str) -> None:
    """Valid TOML over the per-file budget cannot be audited (E102), as an over-budget Lua file;
    it is not reported as a file that does not parse (E103)."""
    write_tree(
        tmp_path,
        {"init.lua": loader, "shaping.toml": "[" + ".".join(["a"] * 50_000) + "]\nx = 1\n"},
    )
    result, cpu = _timed_audit(tmp_path)
    problems = [
        (f.code, f.path, f.line, f.column) for f in result.findings if f.code[:3] in ("E10", "E30")
    ]
    assert problems == [("E102", "shaping.toml", 1, 1)]
    assert cpu < CPU_BOUND_S, f"{cpu:.1f} s of CPU"


def test_dotted_header_at_the_limit_is_audited_and_one_more_part_is_e102(tmp_path: Path) -> None:
    from auditor.data.locate import TOML_MAX_KEY_DEPTH, DataTooComplex, load_located

    load_located("[" + ".".join(["a"] * TOML_MAX_KEY_DEPTH) + "]\nx = 1\n", "toml")
    with pytest.raises(DataTooComplex) as over:
        load_located("x = 1\n" + "[" + ".".join(["a"] * (TOML_MAX_KEY_DEPTH + 1)) + "]\n", "toml")
    assert (over.value.line, over.value.column) == (2, 1)


def test_dotted_keys_up_to_the_limit_are_read(tmp_path: Path) -> None:
    from auditor.data.locate import TOML_MAX_KEY_DEPTH, load_located

    located = load_located("[" + ".".join(["a"] * TOML_MAX_KEY_DEPTH) + "]\nx = 1\n", "toml")
    node = located.value
    for _ in range(TOML_MAX_KEY_DEPTH):
        node = node["a"]
    assert node == {"x": 1}
