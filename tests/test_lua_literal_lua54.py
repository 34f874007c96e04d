"""The literal evaluator against Lua 5.4 itself (lupa): every literal form, its value and type exactly
as Lua computes it, at the edges (64-bit integer limits, float formatting, escapes, table stores)."""

from __future__ import annotations

import math

import pytest
from lupa import lua54

from auditor.lua.literal import LIST_BATCH, Lit, Table, Unknown
from tests.test_lua_literal import evaluate

LUA = lua54.LuaRuntime()
LUA_BYTES = lua54.LuaRuntime(encoding=None)  # strings as bytes: not every Lua string is UTF-8


def lua_value(expr: str) -> object:
    return LUA.execute(f"return {expr}")


def lua_table(expr: str) -> dict[object, object]:
    table = lua_value(expr)
    return {k: table[k] for k in table}  # type: ignore[union-attr]


def same(ours: object, lua: object) -> bool:
    if isinstance(lua, float) and math.isnan(lua):
        return isinstance(ours, float) and math.isnan(ours)
    return ours == lua and type(ours) is type(lua)


STRINGS = [
    r"'\a\b\f\n\r\t\v\\\"\''",
    "'a\\\nb'",  # backslash-newline
    "'a\\\rb'",  # backslash-CR
    "'a\\\n\rb'",
    "'a\\z \t\r\n\f\vb'",
    "'a\\z'",
    r"'\x41\x7a\xfF'",
    r"'\65\0651\9\09\009\255'",
    r"'\u{48}\u{7FF}\u{FFFF}\u{10FFFF}'",
    "[[\nx]]",
    "[[\r\nx]]",
    "[[\n\rx]]",
    "[[\rx]]",
    "[[\n\nx]]",
    "[==[a]]b]=]c]==]",
    "[=[\nline]=]",
    "''",
    "'plain'",
]


@pytest.mark.parametrize("expr", STRINGS)
def test_strings_as_lua_reads_them(expr: str) -> None:
    ours = evaluate(expr)
    assert isinstance(ours, Lit)
    raw = LUA_BYTES.execute(f"return {expr}")
    if all(ord(c) < 256 for c in ours.value):  # type: ignore[union-attr]
        assert ours.value == raw.decode("latin-1")  # \xNN and \ddd are bytes
    else:
        assert ours.value == raw.decode("utf-8")


def test_backslash_cr_lf_is_never_misread() -> None:
    """tree-sitter-lua reads a backslash before CR LF otherwise than Lua: the value is not guessed."""
    ours = evaluate("'a\\\r\nb'")
    assert isinstance(ours, Unknown) or ours.value == LUA.execute("return 'a\\\r\nb'")


NUMBERS = [
    "0",
    "9223372036854775807",  # int64 max: an integer
    "9223372036854775808",  # int64 max + 1: a float
    "18446744073709551615",
    "0x7fffffffffffffff",
    "0x8000000000000000",  # wraps to int64 min
    "0xffffffffffffffff",
    "0x1ffffffffffffffff",  # wraps modulo 2^64
    "0X10",
    "0xA",
    "1e2",
    "1E+2",
    "1e-2",
    ".5",
    "5.",
    "3.0",
    "0x.8",
    "0x1P-1",
    "0x1p4",
    "-9223372036854775807",
    "-9223372036854775808",  # minus of a float: a float
    "- -5",
    "-0x8000000000000000",
    "-3.5",
]


@pytest.mark.parametrize("expr", NUMBERS)
def test_numbers_as_lua_reads_them(expr: str) -> None:
    ours = evaluate(expr)
    assert isinstance(ours, Lit)
    assert same(ours.value, lua_value(expr)), (ours.value, lua_value(expr))


OPERATIONS = [
    "not nil",
    "not false",
    "not 0",
    "not ''",
    "not true",
    "nil or 'x'",
    "false or 1",
    "0 or 1",
    "'' or 1",
    "'a' or nil",
    "0 and 'x'",
    "'' and 'x'",
    "false and 'x'",
    "nil and 'x'",
    "1 and 2 or 3",
    "false and 2 or 3",
    "'a' .. 'b'",
    "'a' .. 1",
    "1 .. 2",
    "'a' .. 1.0",
    "'a' .. 1.5",
    "'a' .. -0.0",
    "'a' .. 0.1234567890123456",
    "'a' .. 1e15",
    "'a' .. 1e100",
    "'a' .. 123456789012345.0",
    "'a' .. 9223372036854775807",
    "'a' .. 9223372036854775808",
    "'a' .. 0x10",
    "tostring(3.0)",
    "tostring(0.1)",
    "tostring(42)",
    "tostring('s')",
    "tonumber('25')",
    "tonumber('0x10')",
    "tonumber(' 7 ')",
    "tonumber('1e2')",
    "tonumber(12)",
    "('a')",
    "(1) .. (2)",
]


@pytest.mark.parametrize("expr", OPERATIONS)
def test_operations_as_lua_computes_them(expr: str) -> None:
    ours = evaluate(expr)
    assert isinstance(ours, Lit), ours
    assert same(ours.value, lua_value(expr)), (ours.value, lua_value(expr))


@pytest.mark.parametrize(
    "expr",
    [
        "'a' .. true",  # an error in Lua: never a value
        "'a' .. nil",
        "tostring(true)",
        "tostring(nil)",
        "tostring()",
        "tostring(1, 2)",
        "-'a'",
        "-true",
        "not x",
        "x and 1",
        "1 + 1",
        "#'abc'",
    ],
)
def test_what_is_not_evaluated_stays_unknown(expr: str) -> None:
    assert isinstance(evaluate(expr), Unknown)


TABLES = [
    "{}",
    "{1, 2, 3}",
    "{1, nil, 3}",
    "{nil, nil, 3}",
    "{a = 1, b = nil, c = 3}",
    "{[1] = 'a', 'b'}",
    "{'b', [1] = 'a'}",  # positional items are stored after the keyed fields around them
    "{'b', [2] = 'a', 'c'}",
    "{[1.0] = 'f', [2] = 'i'}",
    "{['x'] = 1, x = 2}",
    "{x = 1, ['x'] = 2}",
    "{[true] = 1, [false] = 0}",
    "{1, 2; 3}",
    "{a = {b = {c = 'd'}}}",
]


def plain(value: object) -> object:
    if isinstance(value, Table):
        return {k: plain(e.value) for k, e in value._keyed().items()}
    assert isinstance(value, Lit)
    return value.value


@pytest.mark.parametrize("expr", TABLES)
def test_tables_store_what_lua_stores(expr: str) -> None:
    ours = evaluate(expr)
    assert isinstance(ours, Table)

    def lua_plain(table: object) -> object:
        if lua54.lua_type(table) == "table":
            return {k: lua_plain(table[k]) for k in table}  # type: ignore[attr-defined,index]
        return table

    assert plain(ours) == lua_plain(lua_value(expr))


def test_positional_items_are_stored_in_batches() -> None:
    items = ", ".join(f"'p{i}'" for i in range(1, LIST_BATCH + 3))
    for where in (LIST_BATCH - 1, LIST_BATCH, LIST_BATCH + 1, LIST_BATCH + 2):
        # an explicit [1] after `where` positional items: before the first batch is stored, or after
        parts = items.split(", ")
        expr = "{" + ", ".join([*parts[:where], "[1] = 'k'", *parts[where:]]) + "}"
        ours = evaluate(expr)
        assert isinstance(ours, Table)
        assert ours.get(1).value == lua_value(expr)[1], where  # type: ignore[union-attr,index]
    assert LUA.execute("return #{" + items + "}") == LIST_BATCH + 2


def test_table_py_and_array() -> None:
    table = evaluate("{1, 2, nil, 4}")
    assert isinstance(table, Table)
    assert [v.value for v in table.array()] == [1, 2]  # type: ignore[union-attr]
    assert table.py() == {1: 1, 2: 2, 4: 4}  # not a sequence: a dict
    assert evaluate("{[1] = 'a', [2] = 'b'}").py() == ["a", "b"]  # type: ignore[union-attr]
    assert evaluate("{[2] = 'b'}").py() == {2: "b"}  # type: ignore[union-attr]
    assert evaluate("{[true] = 1}").py() == {True: 1}  # type: ignore[union-attr]
    mixed = evaluate("{'a', x = 1}")
    assert mixed.py() == {1: "a", "x": 1}  # type: ignore[union-attr]
    assert [k for k, _ in mixed.fields()] == ["x"]  # type: ignore[union-attr]
    unknown_key = evaluate("{[k] = 1, 'a'}")
    assert isinstance(unknown_key, Table) and unknown_key.has_unknown_keys
    assert unknown_key.py() == ["a"]
    assert not evaluate("{'a'}").has_unknown_keys  # type: ignore[union-attr]


def span_of(value: object) -> tuple[int, int, int, int]:
    span = value.span  # type: ignore[attr-defined]
    return (span.line, span.column, span.end_line, span.end_column)


def test_every_result_has_the_span_of_its_expression() -> None:
    # `local x = ` is 10 characters: expressions start at column 11
    for expr in ("nil", "true", "not nil", "-3", "'a' .. 'b'", "(1)", "a + 1", "x or 1", "f()"):
        value = evaluate(expr)
        assert span_of(value) == (1, 11, 1, 11 + len(expr)), expr


def test_a_default_after_or_holds_when_the_left_side_is_nil() -> None:
    value = evaluate("os.getenv('PORT') or '25'")
    assert isinstance(value, Lit) and value.value == "25" and value.when == "PORT is unset"
    value = evaluate("port or 25")
    assert isinstance(value, Lit) and value.value == 25 and value.when == "port is nil"
    assert isinstance(evaluate("port or nil"), Unknown)  # no default: still unknown
    chained = evaluate("a or (os.getenv('B') or 'c')")
    assert isinstance(chained, Lit) and chained.value == "c" and chained.when == "B is unset"
    assert isinstance(evaluate("'x' .. (os.getenv('B') or 'c')"), Lit)


def test_what_is_known_of_a_computed_string() -> None:
    value = evaluate("'/opt/' .. dir .. '/x.toml'")
    assert isinstance(value, Unknown) and (value.prefix, value.suffix) == ("/opt/", "/x.toml")
    value = evaluate("tostring('/a/' .. dir)")
    assert isinstance(value, Unknown) and (value.prefix, value.suffix) == ("/a/", "")
    env = evaluate("os.getenv('HOME')")
    assert isinstance(env, Unknown) and env.env == "HOME" and env.source == "os.getenv('HOME')"
    assert evaluate("os.getenv(name)").env is None  # type: ignore[union-attr]
    assert evaluate("tostring(os.getenv('X') or 'd')").env is None  # type: ignore[union-attr]


def test_results_after_and_or_keep_their_condition() -> None:
    value = evaluate("flag and 'a' or 'b'")
    assert isinstance(value, Lit) and value.value == "b" and value.when == "flag is false or nil"
    joined = evaluate("(os.getenv('X') or 'a') .. 'b'")
    assert isinstance(joined, Lit) and joined.value == "ab" and joined.when == "X is unset"
    right = evaluate("'b' .. (os.getenv('X') or 'a')")
    assert isinstance(right, Lit) and right.value == "ba" and right.when == "X is unset"


def test_unknown_calls_keep_their_span_and_source() -> None:
    for expr in ("os.getenv(1)", "tostring(true)", "tostring(a, b)", "f(1)"):
        value = evaluate(expr)
        assert isinstance(value, Unknown) and value.source == expr
        assert span_of(value) == (1, 11, 1, 11 + len(expr))
    long = "some_function_with_a_long_name(argument_one, argument_two, argument_three)"
    value = evaluate(long)
    assert isinstance(value, Unknown) and value.source == long[:57] + "..."


def test_nesting_up_to_the_bound_is_evaluated() -> None:
    from auditor.lua.literal import MAX_DEPTH

    def innermost(levels: int) -> object:
        value = evaluate("{" * levels + "}" * levels)
        for _ in range(levels - 1):
            assert isinstance(value, Table)
            value = value.entries[0].value
        return value

    assert isinstance(innermost(MAX_DEPTH + 1), Table)  # depths 0..MAX_DEPTH
    assert isinstance(innermost(MAX_DEPTH + 2), Unknown)
