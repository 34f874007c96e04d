"""Turns Lua literal expressions into Python values that keep their source positions.

Strings (every Lua escape, long brackets), numbers (hex floats, integer wrap-around), booleans, nil and
table constructors become `Lit`/`Table`; anything else becomes `Unknown`, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from auditor.core.findings import Span

if TYPE_CHECKING:
    from tree_sitter import Node

    from auditor.lua.syntax import LineIndex

MAX_DEPTH = 200  # Lua itself refuses deeper nesting (LUAI_MAXCCALLS)
LIST_BATCH = 50  # positional items a table constructor stores at once (LFIELDS_PER_FLUSH)

Scalar = Union[str, int, float, bool, None]


@dataclass
class Lit:
    """A known scalar value and where it is written."""

    value: Scalar
    span: Span
    # set when the value holds only by default: `os.getenv('X') or 'v'` is 'v' "when X is unset"
    when: str | None = None

    is_unknown = False

    def py(self) -> Scalar:
        return self.value


@dataclass
class Unknown:
    """A value that is not a literal (a variable, a call, an operation)."""

    span: Span
    source: str = ""
    # what is known of a computed string: `'0.0.0.0:' .. port` has the prefix '0.0.0.0:'
    prefix: str = ""
    suffix: str = ""
    # the environment variable read by `os.getenv('X')` (the value is nil when it is unset)
    env: str | None = None

    is_unknown = True

    def py(self) -> Unknown:
        return self


@dataclass
class Entry:
    """One entry of a table constructor."""

    key: Scalar | Unknown  # None for positional entries before numbering
    value: Value
    key_span: Span | None  # None for positional entries


@dataclass
class Table:
    """A table constructor's entries, in source order."""

    entries: list[Entry]
    span: Span
    _index: dict[Scalar, Entry] | None = field(default=None, repr=False, compare=False)

    is_unknown = False

    def _keyed(self) -> dict[Scalar, Entry]:
        """Entries by key, in the order Lua stores them: a keyed field when it is read, positional
        items in batches of LIST_BATCH (after the field that follows the batch, or at the end), so
        `{ 'b', [1] = 'a' }` has 'b' at 1. The last store of a key wins."""
        if self._index is None:
            index: dict[Scalar, Entry] = {}
            pending: list[Entry] = []
            for entry in self.entries:
                if len(pending) == LIST_BATCH:
                    index.update((e.key, e) for e in pending)
                    pending.clear()
                if entry.key_span is None:
                    pending.append(entry)
                elif not isinstance(entry.key, Unknown):
                    index[entry.key] = entry
            index.update((e.key, e) for e in pending)
            self._index = index
        return self._index

    def get(self, key: Scalar) -> Value | None:
        entry = self._keyed().get(key)
        return entry.value if entry else None

    def entry(self, key: Scalar) -> Entry | None:
        return self._keyed().get(key)

    def fields(self) -> Iterator[tuple[str, Entry]]:
        """String-keyed entries in source order."""
        for entry in self.entries:
            if isinstance(entry.key, str):
                yield entry.key, entry

    def array(self) -> list[Value]:
        """The sequence part (keys 1..n), as ipairs would see it."""
        out: list[Value] = []
        index = self._keyed()
        i = 1
        while i in index:
            out.append(index[i].value)
            i += 1
        return out

    @property
    def has_unknown_keys(self) -> bool:
        return any(isinstance(e.key, Unknown) for e in self.entries)

    def py(self) -> dict[Scalar, object] | list[object]:
        """Plain Python: a list for a pure sequence, else a dict (unknown parts stay `Unknown`)."""
        index = self._keyed()
        if index and all(isinstance(k, int) and not isinstance(k, bool) for k in index):
            seq = self.array()
            if len(seq) == len(index):
                return [v.py() for v in seq]
        if not index and not self.entries:
            return {}
        return {k: e.value.py() for k, e in index.items()}


Value = Union[Lit, Table, Unknown]

Env = Callable[[str], "Value | None"]

_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "\n": "\n",
}
_LONG_OPEN = re.compile(r"^\[(=*)\[")


def decode_string(raw: str) -> str:
    """The value of a Lua string literal given its full source text (quotes or long brackets included)."""
    long = _LONG_OPEN.match(raw)
    if long:
        level = len(long.group(1))
        body = raw[level + 2 : len(raw) - level - 2]
        if body.startswith("\r\n") or body.startswith("\n\r"):
            body = body[2:]
        elif body.startswith(("\n", "\r")):
            body = body[1:]
        return body
    body = raw[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= n:
            break
        esc = body[i]
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 1
            if esc == "\n" and i < n and body[i] == "\r":
                i += 1
        elif esc == "\r":
            out.append("\n")
            i += 1
            if i < n and body[i] == "\n":
                i += 1
        elif esc == "z":
            i += 1
            while i < n and body[i] in " \t\r\n\f\v":
                i += 1
        elif esc == "x":
            out.append(chr(int(body[i + 1 : i + 3], 16)))
            i += 3
        elif esc == "u":
            end = body.index("}", i)
            out.append(_utf8_char(int(body[i + 2 : end], 16)))
            i = end + 1
        elif esc.isdigit():
            j = i
            while j < n and j < i + 3 and body[j].isdigit():
                j += 1
            out.append(chr(int(body[i:j])))
            i = j
        else:
            out.append(esc)
            i += 1
    return "".join(out)


def _utf8_char(code: int) -> str:
    try:
        return chr(code)
    except ValueError:  # Lua allows code points up to 2^31; Python cannot hold them
        return "\ufffd"


def parse_number(raw: str) -> int | float:
    text = raw.strip()
    lower = text.lower()
    if lower.startswith("0x"):
        if any(c in lower for c in ".p"):
            return float.fromhex(lower)
        return _wrap64(int(lower, 16))  # Lua wraps hex integers modulo 2^64
    if any(c in lower for c in ".en") or lower in ("inf", "nan"):
        return float(lower)
    value = int(lower)
    if -(1 << 63) <= value < (1 << 63):
        return value
    return float(lower)  # decimal integers that overflow become floats in Lua


class Evaluator:
    """Evaluates expression nodes of one file. `env` resolves identifiers to known constant values."""

    def __init__(self, index: LineIndex, env: Env | None = None, calls: Env | None = None) -> None:
        self.index = index
        self.env = env
        self.calls = calls  # what a call of a local function without arguments returns, if known
        self._text = index.text

    def _short(self, node: Node) -> str:
        text = self.index.head(node, 256)
        return text if len(text) <= 60 else text[:57] + "..."

    def eval(self, node: Node, depth: int = 0) -> Value:
        span = self.index.span(node)
        if depth > MAX_DEPTH:
            return Unknown(span, "<nested too deep>")
        kind = node.type
        if kind == "string":
            return Lit(decode_string(self._text(node)), span)
        if kind == "number":
            try:
                return Lit(parse_number(self._text(node)), span)
            except ValueError:
                return Unknown(span, self._text(node))
        if kind == "true":
            return Lit(True, span)
        if kind == "false":
            return Lit(False, span)
        if kind == "nil":
            return Lit(None, span)
        if kind == "table_constructor":
            return self._table(node, span, depth)
        if kind == "parenthesized_expression":
            inner = node.named_children
            if inner:
                value = self.eval(inner[0], depth + 1)
                return _respan(value, span)
        if kind == "unary_expression":
            return self._unary(node, span, depth)
        if kind == "binary_expression":
            return self._binary(node, span, depth)
        if kind == "identifier" and self.env is not None:
            known = self.env(self._text(node))
            if known is not None:
                return _respan(known, span)
        if kind == "function_call":
            return self._call(node, span, depth)
        return Unknown(span, self._short(node))

    def _call(self, node: Node, span: Span, depth: int) -> Value:
        """`os.getenv('X')` (nil when X is unset), `tostring(x)` of a known value, and
        `tonumber(x)` (of a known value, or of `os.getenv('X')`: nil when X is unset)."""
        callee = node.child_by_field_name("name")
        if callee is None or callee.type not in ("dot_index_expression", "identifier"):
            return Unknown(span, self._short(node))
        name = self._text(callee)
        if name not in ("os.getenv", "tostring", "tonumber"):
            if self.calls is not None and callee.type == "identifier":
                args_node = node.child_by_field_name("arguments")
                if args_node is not None and not args_node.named_children:
                    known = self.calls(name)
                    if known is not None:
                        return _respan(known, span)
            return Unknown(span, self._short(node))
        args_node = node.child_by_field_name("arguments")
        args: list[Node] = []
        if args_node is not None:
            if args_node.type == "string":
                args = [args_node]
            else:
                args = [c for c in args_node.named_children if c.type != "comment"]
        if len(args) != 1:
            return Unknown(span, self._short(node))
        arg = self.eval(args[0], depth + 1)
        if name == "os.getenv":
            if isinstance(arg, Lit) and isinstance(arg.value, str):
                return Unknown(span, self._short(node), env=arg.value)
        elif name == "tonumber":
            return self._tonumber(arg, span, node)
        elif isinstance(arg, Lit) and arg.when is None:
            text = _concat_part(arg.value)
            if text is not None:
                return Lit(text, span)
        elif isinstance(arg, Unknown):
            return Unknown(span, self._short(node), arg.prefix, arg.suffix)
        return Unknown(span, self._short(node))

    def _tonumber(self, arg: Value, span: Span, node: Node) -> Value:
        if isinstance(arg, Unknown) and arg.env:
            return Unknown(span, self._short(node), env=arg.env)
        if isinstance(arg, Lit) and arg.when is None:
            if isinstance(arg.value, int | float) and not isinstance(arg.value, bool):
                return Lit(arg.value, span)
            if isinstance(arg.value, str):
                try:
                    return Lit(parse_number(arg.value), span)
                except ValueError:
                    pass
        return Unknown(span, self._short(node))

    def _table(self, node: Node, span: Span, depth: int) -> Table:
        entries: list[Entry] = []
        position = 1
        for child in node.named_children:
            if child.type != "field":
                continue
            name = child.child_by_field_name("name")
            value_node = child.child_by_field_name("value")
            if value_node is None:
                continue
            value = self.eval(value_node, depth + 1)
            # a table never stores nil: `{ protocol = nil }` is a table without `protocol`
            stores_nil = isinstance(value, Lit) and value.value is None
            if name is None:
                if not stores_nil:
                    entries.append(Entry(position, value, None))
                position += 1
                continue
            if stores_nil:
                continue
            key_span = self.index.span(name)
            if name.type == "identifier" and _is_named_field(child):
                entries.append(Entry(self._text(name), value, key_span))
            else:
                key = self.eval(name, depth + 1)
                entries.append(Entry(key.value if isinstance(key, Lit) else key, value, key_span))
        return Table(entries, span)

    def _either(self, left_node: Node, right: Value, span: Span, depth: int) -> Value | None:
        """`cond and 'a' or 'b'` (Lua's conditional expression): 'b' when cond is false or nil
        (named by cond, not by the whole `cond and 'a'`)."""
        if left_node.type != "binary_expression" or not isinstance(right, Lit):
            return None
        operator = left_node.child_by_field_name("operator")
        cond_node = left_node.child_by_field_name("left")
        if operator is None or operator.type != "and" or cond_node is None:
            return None
        cond = self.eval(cond_node, depth + 1)
        if not isinstance(cond, Unknown) or right.value is None:
            return None
        when = f"{cond.env} is unset" if cond.env else f"{cond.source} is false or nil"
        return Lit(right.value, span, right.when or when)

    def _unary(self, node: Node, span: Span, depth: int) -> Value:
        operand = node.child_by_field_name("operand")
        op = node.children[0].type if node.children else ""
        if operand is not None:
            value = self.eval(operand, depth + 1)
            if isinstance(value, Lit):
                if op == "-" and isinstance(value.value, float):
                    return Lit(-value.value, span)
                if op == "-" and isinstance(value.value, int) and not isinstance(value.value, bool):
                    return Lit(_wrap64(-value.value), span)  # -math.mininteger wraps to itself
                if op == "not":
                    return Lit(not _truthy(value.value), span)
        return Unknown(span, self._short(node))

    def _binary(self, node: Node, span: Span, depth: int) -> Value:
        left_node = node.child_by_field_name("left")
        right_node = node.child_by_field_name("right")
        operator = node.child_by_field_name("operator")
        op = operator.type if operator is not None else ""
        if left_node is None or right_node is None:
            return Unknown(span, self._short(node))
        if op == "..":
            left, right = self.eval(left_node, depth + 1), self.eval(right_node, depth + 1)
            if isinstance(left, Lit) and isinstance(right, Lit):
                parts = [_concat_part(left.value), _concat_part(right.value)]
                if None not in parts:
                    return Lit(f"{parts[0]}{parts[1]}", span, left.when or right.when)
            # keep what is known: the prefix of the left side, the suffix of the right side
            prefix = _known_prefix(left)
            suffix = _known_suffix(right)
            if isinstance(left, Lit) and isinstance(right, Unknown) and prefix is not None:
                prefix += right.prefix
            if isinstance(right, Lit) and isinstance(left, Unknown) and suffix is not None:
                suffix = left.suffix + suffix
            return Unknown(span, self._short(node), prefix or "", suffix or "")
        if op == "or":
            left, right = self.eval(left_node, depth + 1), self.eval(right_node, depth + 1)
            if isinstance(left, Lit) and left.when is None:
                return _respan(left if _truthy(left.value) else right, span)
            choice = self._either(left_node, right, span, depth)
            if choice is not None:
                return choice
            if isinstance(left, Unknown) and isinstance(right, Lit) and right.value is not None:
                # `x or default`: the default is the value whenever x is nil (or false)
                when = f"{left.env} is unset" if left.env else f"{left.source} is nil"
                return Lit(right.value, span, right.when or when)
        if op == "and":
            left = self.eval(left_node, depth + 1)
            if isinstance(left, Lit) and left.when is None:
                if not _truthy(left.value):
                    return _respan(left, span)
                return _respan(self.eval(right_node, depth + 1), span)
        return Unknown(span, self._short(node))


def _truthy(value: Scalar) -> bool:
    """Lua's truth: only nil and false are false (0 and '' are true)."""
    return value is not None and value is not False


def _wrap64(value: int) -> int:
    """Lua integer arithmetic wraps around modulo 2^64."""
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def _concat_part(value: Scalar) -> str | None:
    """A value as `..` and tostring write it: floats as C's "%.14g", with ".0" when that looks like
    an integer (Lua 5.4's tostringbuff)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        text = f"{value:.14g}"
        return text + ".0" if text.lstrip("-").isdigit() else text
    return str(value)


def _known_prefix(value: Value) -> str | None:
    if isinstance(value, Lit):
        return _concat_part(value.value)
    if isinstance(value, Unknown):
        return value.prefix
    return None


def _known_suffix(value: Value) -> str | None:
    if isinstance(value, Lit):
        return _concat_part(value.value)
    if isinstance(value, Unknown):
        return value.suffix
    return None


def _is_named_field(field_node: Node) -> bool:
    """`{name = v}` (identifier key) rather than `{[name] = v}` (expression key)."""
    first = field_node.children[0] if field_node.children else None
    return first is not None and first.type != "["


def _respan(value: Value, span: Span) -> Value:
    if isinstance(value, Lit):
        return Lit(value.value, span, value.when)
    if isinstance(value, Unknown):
        return Unknown(span, value.source, value.prefix, value.suffix, value.env)
    return value
