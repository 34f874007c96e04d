"""The literal evaluator: Lua literals become Python values with exact positions; the rest is Unknown."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.lua.literal import Evaluator, Lit, Table, Unknown, decode_string, parse_number
from auditor.lua.syntax import LineIndex, parse


def evaluate(expr: str):  # type: ignore[no-untyped-def]
    source = f"local x = {expr}".encode()
    tree = parse(source)
    node = tree.root_node.children[0].named_children[0].child_by_field_name("name")
    assign = tree.root_node.children[0].named_children[0]
    value_node = assign.named_children[-1].named_children[0]
    assert node is None or node
    return Evaluator(LineIndex(source)).eval(value_node)


@pytest.mark.parametrize(
    ("lua", "expected"),
    [
        (r"'a\tb'", "a\tb"),
        (r'"\65\066\x43"', "ABC"),
        (r'"\u{48}\u{E9}\u{1F600}"', "Hé😀"),
        ('"a\\z   \n   b"', "ab"),
        ('"line\\\nnext"', "line\nnext"),
        ("[[\nfirst line]]", "first line"),
        ("[==[a]]b]==]", "a]]b"),
        (r"'\\'", "\\"),
        (r"'\''", "'"),
    ],
)
def test_strings_decode_every_escape(lua: str, expected: str) -> None:
    value = evaluate(lua)
    assert isinstance(value, Lit)
    assert value.value == expected


@pytest.mark.parametrize(
    ("lua", "expected"),
    [
        ("42", 42),
        ("0x10", 16),
        ("0xffffffffffffffff", -1),
        ("0x1p4", 16.0),
        ("0xA.8p0", 10.5),
        ("1e3", 1000.0),
        ("3.5", 3.5),
        ("-7", -7),
        ("9223372036854775808", 9.223372036854776e18),
    ],
)
def test_numbers_follow_lua_rules(lua: str, expected: float) -> None:
    value = evaluate(lua)
    assert isinstance(value, Lit)
    assert value.value == expected
    assert type(value.value) is type(expected)


def test_table_keeps_positions_and_unknowns() -> None:
    value = evaluate(
        "{ listen = '0.0.0.0:25', relay_hosts = { '10.0.0.0/8', other }, [\"k\"] = true, 5 }"
    )
    assert isinstance(value, Table)
    relay = value.get("relay_hosts")
    assert isinstance(relay, Table)
    first, second = relay.array()
    assert isinstance(first, Lit) and first.value == "10.0.0.0/8"
    assert (first.span.line, first.span.column) == (1, 52)
    assert isinstance(second, Unknown) and second.source == "other"
    entry = value.entry("listen")
    assert entry is not None and entry.key_span is not None
    assert (entry.key_span.line, entry.key_span.column) == (1, 13)
    assert value.get("k") == Lit(True, value.get("k").span)  # type: ignore[union-attr]
    assert value.array()[0].py() == 5


def test_non_literals_are_unknown_never_guessed() -> None:
    for expr in ("foo", "foo()", "a + 1", "os.getenv('X')", "function() end", "...", "t[1]"):
        assert isinstance(evaluate(expr), Unknown), expr


def test_concatenation_of_literals_and_negation() -> None:
    assert evaluate("'/var/spool' .. '/data'").value == "/var/spool/data"  # type: ignore[union-attr]
    assert evaluate("'x' .. 1").value == "x1"  # type: ignore[union-attr]
    assert isinstance(evaluate("'x' .. y"), Unknown)


def test_columns_count_characters_on_non_ascii_lines() -> None:
    expr = "{ 'é', 'ü', 'target' }"
    value = evaluate(expr)
    assert isinstance(value, Table)
    expected = len("local x = ") + expr.index("'target'") + 1
    assert value.array()[2].span.column == expected  # bytes would give 2 more


def test_deep_nesting_is_bounded() -> None:
    value = evaluate("{" * 500 + "}" * 500)
    assert isinstance(value, Table)  # the inner levels beyond the bound become Unknown


def test_py_conversion() -> None:
    assert evaluate("{1, 2, 3}").py() == [1, 2, 3]  # type: ignore[union-attr]
    assert evaluate("{}").py() == {}  # type: ignore[union-attr]
    assert evaluate("{a = {b = 'c'}}").py() == {"a": {"b": "c"}}  # type: ignore[union-attr]


_LUA_ESCAPES = {"\n": "\\n", "\t": "\\t", "\\": "\\\\", "'": "\\'", "\r": "\\r"}


def lua_quote(text: str) -> str:
    out = []
    for ch in text:
        if ch in _LUA_ESCAPES:
            out.append(_LUA_ESCAPES[ch])
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\{ord(ch):03d}")
        elif ord(ch) > 127 and ord(ch) % 2:
            out.append(f"\\u{{{ord(ch):X}}}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_string_round_trips(text: str) -> None:
    assert decode_string(lua_quote(text)) == text


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integers_round_trip(n: int) -> None:
    assert parse_number(str(n)) == n
    if n >= 0:
        assert parse_number(hex(n)) == n


@given(st.floats(min_value=0, allow_nan=False, allow_infinity=False))
def test_hex_floats_round_trip(x: float) -> None:
    assert parse_number(x.hex()) == x or (math.isclose(parse_number(x.hex()), x))


def test_table_equality_does_not_depend_on_its_lookup_index() -> None:
    """Reading a field builds an index inside the table; two equal tables stay equal (a cached
    model, whose tables were never read, compares equal to the one the rules read)."""
    read, unread = evaluate("{ a = 1, 'x' }"), evaluate("{ a = 1, 'x' }")
    assert isinstance(read, Table) and read.get("a") == Lit(1, read.get("a").span)  # type: ignore[union-attr]
    assert read == unread
    assert read != evaluate("{ a = 2, 'x' }")
