"""Hypothesis strategies: Lua 5.4 source from a grammar (every statement kind, every literal form, deep
nesting, long chains), optionally damaged by one edit, and random TOML/JSON data files."""

from __future__ import annotations

import json
import math
import string
from typing import Any

from hypothesis import strategies as st

NAMES = ("a", "b", "cfg", "kumo", "msg", "x1", "_t", "shaping", "relay_hosts", "password")
EVENTS = ("init", "smtp_server_message_received", "get_queue_config", "get_egress_path_config")
KUMO_CALLS = (
    "kumo.start_esmtp_listener",
    "kumo.define_spool",
    "kumo.make_queue_config",
    "kumo.configure_local_logs",
    "kumo.set_config_monitor_globs",
    "kumo.make_egress_path",
)

name = st.sampled_from(NAMES)


def _escape(text: str, quote: str) -> str:
    out = []
    for ch in text:
        if ch in (quote, "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\{ord(ch)}")
        else:
            out.append(ch)
    return "".join(out)


@st.composite
def lua_string(draw: st.DrawFn) -> str:
    text = draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12))
    form = draw(st.sampled_from(("single", "double", "long", "escapes")))
    if form == "single":
        return "'" + _escape(text, "'") + "'"
    if form == "double":
        return '"' + _escape(text, '"') + '"'
    if form == "long":
        level = "=" * draw(st.integers(0, 3))
        body = text.replace("]", " ")
        return f"[{level}[{body}]{level}]"
    return draw(
        st.sampled_from(
            ('"\\x41\\65\\u{48}\\z   x"', "'\\a\\b\\f\\n\\r\\t\\v\\\\'", '"\\u{10FFFF}"', "'\\0'")
        )
    )


number = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.integers(0, 2**64).map(lambda i: hex(i)),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(("1e308", "1e-5", ".5", "3.", "0x1p4", "0xA.8p0", "1E+2", "9" * 40)),
)

literal = st.one_of(st.sampled_from(("nil", "true", "false", "...")), number, lua_string())


def expression(depth: int) -> st.SearchStrategy[str]:
    if depth <= 0:
        return st.one_of(literal, name)
    sub = st.deferred(lambda: expression(depth - 1))
    return st.one_of(
        literal,
        name,
        st.tuples(
            sub,
            st.sampled_from(
                (
                    "+",
                    "-",
                    "*",
                    "/",
                    "//",
                    "%",
                    "^",
                    "..",
                    "==",
                    "~=",
                    "<",
                    "<=",
                    ">",
                    ">=",
                    "and",
                    "or",
                    "&",
                    "|",
                    "~",
                    "<<",
                    ">>",
                )
            ),
            sub,
        ).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(("-", "not ", "#", "~")), sub).map(lambda t: f"{t[0]}{t[1]}"),
        table(depth - 1),
        call(depth - 1),
        st.tuples(
            name, st.lists(st.sampled_from((".f", "[1]", ":m()", "()", "['k']")), max_size=60)
        ).map(lambda t: t[0] + "".join(t[1])),
        st.deferred(lambda: block(depth - 1)).map(lambda b: f"function(...) {b} end"),
    )


def table(depth: int) -> st.SearchStrategy[str]:
    value = st.deferred(lambda: expression(depth))
    field = st.one_of(
        value,
        st.tuples(name, value).map(lambda t: f"{t[0]} = {t[1]}"),
        st.tuples(value, value).map(lambda t: f"[{t[0]}] = {t[1]}"),
    )
    return st.tuples(st.lists(field, max_size=5), st.sampled_from((",", ";"))).map(
        lambda t: "{ " + t[1].join(t[0]) + " }"
    )


def call(depth: int) -> st.SearchStrategy[str]:
    args = st.lists(st.deferred(lambda: expression(depth)), max_size=3)
    return st.one_of(
        st.tuples(st.sampled_from(KUMO_CALLS), table(depth)).map(lambda t: f"{t[0]} {t[1]}"),
        st.tuples(name, args).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(name, lua_string()).map(lambda t: f"require {t[1]}"),
        st.tuples(name, name, args).map(lambda t: f"{t[0]}:{t[1]}({', '.join(t[2])})"),
    )


def statement(depth: int) -> st.SearchStrategy[str]:
    expr = expression(max(depth - 1, 0))
    body = st.deferred(lambda: block(depth - 1)) if depth > 0 else st.just("")
    return st.one_of(
        st.tuples(name, expr).map(lambda t: f"local {t[0]} = {t[1]}"),
        st.tuples(name, st.sampled_from(("<const>", "<close>"))).map(
            lambda t: f"local {t[0]} {t[1]} = nil"
        ),
        st.tuples(name, expr).map(lambda t: f"{t[0]} = {t[1]}"),
        call(max(depth - 1, 0)),
        st.tuples(st.sampled_from(EVENTS), body).map(
            lambda t: f"kumo.on('{t[0]}', function(a, b, c) {t[1]} end)"
        ),
        st.tuples(expr, body, body).map(
            lambda t: f"if {t[0]} then {t[1]} elseif x1 then else {t[2]} end"
        ),
        st.tuples(expr, body).map(lambda t: f"while {t[0]} do {t[1]} end"),
        st.tuples(name, body).map(lambda t: f"for {t[0]} = 1, 10, 2 do {t[1]} end"),
        st.tuples(name, name, body).map(lambda t: f"for {t[0]}, {t[1]} in pairs(x1) do {t[2]} end"),
        st.tuples(body, expr).map(lambda t: f"repeat {t[0]} until {t[1]}"),
        body.map(lambda b: f"do {b} end"),
        st.tuples(name, body).map(lambda t: f"function {t[0]}.f(...) {t[1]} end"),
        st.tuples(name, body).map(lambda t: f"local function {t[0]}() {t[1]} end"),
        st.just("goto done ::done::"),
        st.just("::top:: break"),
        st.just(";"),
        st.just("-- a comment\n--[[ long\ncomment ]]"),
    )


def block(depth: int) -> st.SearchStrategy[str]:
    return st.tuples(
        st.lists(statement(depth), max_size=4),
        st.one_of(st.just(""), expression(0).map(lambda e: f"return {e}")),
    ).map(lambda t: "\n".join([*t[0], t[1]]))


@st.composite
def lua_chunk(draw: st.DrawFn) -> str:
    """A Lua chunk from the grammar; sometimes deeply nested, sometimes damaged by one edit."""
    source = draw(block(draw(st.integers(0, 3))))
    nesting = draw(st.integers(0, 3))
    if nesting:
        deep = draw(st.integers(1, 150))
        kind = draw(st.sampled_from(("paren", "table", "do", "function")))
        opener, closer = {
            "paren": ("local z = " + "(" * deep, "1" + ")" * deep),
            "table": ("local z = " + "{" * deep, "}" * deep),
            "do": ("do " * deep, " end" * deep),
            "function": ("local z = " + "function() return " * deep, "1" + " end" * deep),
        }[kind]
        source += "\n" + opener + closer
    if draw(st.booleans()) and source:
        position = draw(st.integers(0, len(source)))
        edit = draw(st.sampled_from(("delete", "insert")))
        if edit == "delete":
            source = source[:position] + source[position + 1 :]
        else:
            junk = draw(
                st.sampled_from(("end", "(", "]]", "'", "=", "local", "\0", "\x1b", "\ufeff"))
            )
            source = source[:position] + junk + source[position:]
    # Lua ends a line at LF, CR, CR LF or LF CR; string literals never hold a raw line break here
    return source.replace("\n", draw(st.sampled_from(("\n", "\r\n", "\r", "\n\r"))))


# ----- data files ------------------------------------------------------------------------------------

scalar = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(("100/s", "5 minutes", "0.0.0.0/0", "Required", "gmail.com")),
)
KEYS = st.one_of(
    st.sampled_from(
        (
            "default",
            "provider",
            "connection_limit",
            "max_message_rate",
            "source",
            "sources",
            "relay_to",
            "relay_from",
            "pool",
            "automation",
            "smtp_auth_plain_password",
            "gmail.com",
            "*.example.com",
            "queue",
            "tenant",
            "domain",
            "signature",
            "policy",
        )
    ),
    st.text(string.ascii_letters + "._-*\x1b \"'", min_size=1, max_size=10),
)
data_value = st.recursive(
    scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=20,
)
data_document = st.dictionaries(KEYS, data_value, max_size=6)


def toml_key(key: str) -> str:
    if key and all(c in string.ascii_letters + string.digits + "_-" for c in key):
        return key
    return json.dumps(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "0.0"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


def toml_document(document: dict[str, Any]) -> str:
    """TOML text: scalars first, then a [section] per table (inline tables below that)."""
    lines = [
        f"{toml_key(k)} = {toml_value(v)}" for k, v in document.items() if not isinstance(v, dict)
    ]
    for key, value in document.items():
        if isinstance(value, dict):
            lines.append(f"\n[{toml_key(key)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"
