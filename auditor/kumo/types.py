"""The type grammar of KumoMTA values, defined once.

The API table (parameter types), the data-file schemas (field types), the value checker
(`auditor.kumo.values`) and the published JSON Schemas all write types in this grammar:

    string, boolean, integer, unsigned, port, number, duration, rate, limit, cidr, cidr_list, ip,
    socket_address, size, key_source, table, function, any        scalars
    enum(A|B|C)   list(T)   map(T)                                 constructors
    T|U                                                            alternatives (top level or inside)

`parse` turns an expression into a tree of `(head, args)` tuples: a scalar is `("rate", ())`, an enum
`("enum", ("A", "B"))`, a list or map `("list", (T,))`, alternatives `("alt", (T, U))`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

Type = tuple[str, tuple[Any, ...]]

SCALARS = frozenset(
    {
        "string",
        "boolean",
        "integer",
        "unsigned",
        "port",
        "number",
        "duration",
        "rate",
        "limit",
        "cidr",
        "cidr_list",
        "ip",
        "socket_address",
        "size",
        "key_source",
        "table",
        "function",
        "any",
    }
)


def split_top(text: str, sep: str = "|") -> list[str]:
    """Split on `sep` outside parentheses."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == sep and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


@lru_cache(maxsize=1024)
def parse(expr: str) -> Type:
    """The tree of a type expression; ValueError if it is not in the grammar."""
    expr = expr.strip()
    alternatives = split_top(expr)
    if len(alternatives) > 1:
        return "alt", tuple(parse(alt) for alt in alternatives)
    if expr in SCALARS:
        return expr, ()
    head, paren, rest = expr.partition("(")
    if not paren:
        raise ValueError(f"unknown type {expr!r}")
    if not rest.endswith(")"):
        raise ValueError(f"malformed type expression {expr!r}")
    inner = rest[:-1]
    if head == "enum":
        members = tuple(split_top(inner))
        if not all(m.isidentifier() for m in members):
            raise ValueError(f"bad enum members in {expr!r}")
        return head, members
    if head in ("list", "map"):
        return head, (parse(inner),)
    raise ValueError(f"unknown type constructor {head!r} in {expr!r}")


_JSON_SCALARS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer"},
    "unsigned": {"type": "integer", "minimum": 0},
    "port": {"type": "integer", "minimum": 0, "maximum": 65535},
    "number": {"type": "number"},
    "duration": {"type": ["string", "number"], "description": 'a duration, e.g. "5 minutes"'},
    "rate": {"type": "string", "description": 'a rate, e.g. "100/s"'},
    "limit": {"type": ["integer", "string"], "description": 'a limit, e.g. 10 or "local:5"'},
    "cidr": {"type": "string", "description": "an IP address or CIDR network"},
    "ip": {"type": "string", "description": "an IP address"},
    "socket_address": {"type": "string", "description": "an address with a port"},
    "size": {"type": ["integer", "string"], "description": 'a size, e.g. 1048576 or "1 MB"'},
    "key_source": {
        "type": ["string", "object"],
        "description": "a file path, or a key-source table (key_data, vault_*)",
    },
    "table": {"type": "object"},
    "function": {},
    "any": {},
}


def json_schema(expr: str | Type) -> dict[str, Any]:
    """The JSON Schema of a type expression (or of a parsed type)."""
    head, args = parse(expr) if isinstance(expr, str) else expr
    if head == "alt":
        return {"anyOf": [json_schema(a) for a in args]}
    if head == "enum":
        return {"enum": list(args)}
    if head == "list":
        return {"type": "array", "items": json_schema(args[0])}
    if head == "map":
        return {"type": "object", "additionalProperties": json_schema(args[0])}
    if head == "cidr_list":
        return {"type": "array", "items": _JSON_SCALARS["cidr"]}
    return dict(_JSON_SCALARS[head])
