"""Parse TOML and JSON data files and recover source positions for any key path.

`tomllib` and `json` stay the authority for values and syntax errors; a small scanner runs beside
them only to find where each key and value is written. TOML positions are gathered in one linear
pass; JSON positions are found on demand (a path walk that jumps over strings and brackets with
regular expressions), so a 50 MB JSON file costs nothing until a finding needs a position.

tree-sitter-toml 0.7 and tree-sitter-json 0.24 were measured against these scanners on 248 files (the
109 TOML/JSON files of KumoMTA's repository, every data file the tests load, the examples, a
generated 20,000-line policy): the spans agreed on 23,020 of 23,106 key and value positions (the
rest are conventions for array-of-tables headers), but tree-sitter-json reports an error on a file
KumoMTA's loader accepts (`#` comments), accepts four files tomllib/json reject, and an eager walk
of the tree is slower: 380 ms against 46 ms on KumoMTA's 97 KB OpenAPI document, 26 ms against
22 ms over 30 typical files. So the scanners stay.
"""

from __future__ import annotations

import bisect
import json
import re
import tomllib
from dataclasses import field
from typing import Any, Literal

from auditor.core.findings import Span
from auditor.core.lazyre import lazy
from auditor.core.record import dataclass

PathKey = str | int
KeyPath = tuple[PathKey, ...]

# serde_json's default recursion limit: deeper documents are refused by KumoMTA's JSON loader.
JSON_MAX_DEPTH = 128
BOM = "\ufeff"


class DataSyntaxError(Exception):
    """A data file that does not parse; line and column are 1-based (characters)."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return f"{self.message} (line {self.line}, column {self.column})"


class DataTooComplex(DataSyntaxError):
    """A data file that may well load in KumoMTA but is over the per-file budget of the audit:
    reported as a file that cannot be audited (E102), not as one that does not parse (E103)."""


@dataclass(frozen=True, slots=True)
class KeySegment:
    """One segment of a TOML key as written: its decoded text, whether it was quoted, and where."""

    text: str
    quoted: bool
    span: Span


@dataclass(frozen=True, slots=True)
class TableHeader:
    """A TOML `[table]` or `[[array]]` header."""

    raw: str
    segments: tuple[KeySegment, ...]
    path: KeyPath  # resolved path of the table it opens (array elements include their index)
    span: Span
    is_array: bool


class _Lines:
    """Offset -> (line, column) conversion for one text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def pos(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.starts, offset) - 1
        return index + 1, offset - self.starts[index] + 1

    def span(self, start: int, end: int) -> Span:
        line, column = self.pos(start)
        end_line, end_column = self.pos(max(start, end))
        return Span(line, column, end_line, end_column)

    def last(self) -> tuple[int, int]:
        return self.pos(len(self.text))


@dataclass
class Located:
    """A parsed data file with positions: `value` plus spans for any key path."""

    value: Any
    fmt: Literal["toml", "json"]
    headers: list[TableHeader] = field(default_factory=list)
    problems: list[DataSyntaxError] = field(default_factory=list)  # non-fatal (BOM, duplicates)
    _lines: _Lines | None = None
    _keys: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    _values: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    _json: _JsonLocator | None = None

    def _lookup(self, path: KeyPath, *, key: bool) -> Span:
        assert self._lines is not None
        path = tuple(path)
        if self._json is not None:
            found = self._json.find(path)
            while found is None and path:
                path = path[:-1]
                found = self._json.find(path)
            if found is None:
                return Span.point(1, 1)
            key_range, value_range = found
            chosen = key_range if key and key_range else value_range
            return self._lines.span(*chosen)
        table = self._keys if key else self._values
        while path:
            hit = table.get(path) or (self._values.get(path) if key else self._keys.get(path))
            if hit:
                return self._lines.span(*hit)
            path = path[:-1]
        return Span.point(1, 1)

    def key_span(self, path: KeyPath) -> Span:
        """Where the last key of `path` is written (nearest known ancestor if it is not)."""
        return self._lookup(path, key=True)

    def value_span(self, path: KeyPath) -> Span:
        """Where the value at `path` is written (for a TOML table: its header)."""
        return self._lookup(path, key=False)

    def has(self, path: KeyPath) -> bool:
        """True if `path` exists in the parsed value."""
        node = self.value
        for part in path:
            if (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            ):
                node = node[part]
            else:
                return False
        return True


def load_located(text: str | bytes, fmt: Literal["toml", "json"]) -> Located:
    """Parse `text` as `fmt`, raising DataSyntaxError with a position when it does not parse."""
    problems: list[DataSyntaxError] = []
    if isinstance(text, bytes):
        text = _decode(text)
    if text.startswith(BOM):
        text = text[1:]
        if fmt == "json":
            problems.append(
                DataSyntaxError(
                    "the file starts with a UTF-8 byte order mark, which KumoMTA's JSON loader "
                    "rejects; save it without the BOM",
                    1,
                    1,
                )
            )
    lines = _Lines(text)
    try:
        if fmt == "toml":
            located = _load_toml(text, lines)
        elif fmt == "json":
            located = _load_json(text, lines)
        else:
            raise ValueError(f"unknown data format {fmt!r}")
    except RecursionError:
        line, column = _deepest_point(text, lines)
        raise DataSyntaxError("the data is nested too deeply to be read", line, column) from None
    located.problems[:0] = problems
    return located


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[: err.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise DataSyntaxError("the file is not valid UTF-8", line, column) from None


def _deepest_point(text: str, lines: _Lines, limit: int = JSON_MAX_DEPTH) -> tuple[int, int]:
    """Position of the first bracket that opens nesting level `limit + 1` (outside strings)."""
    depth = 0
    for match in _JSON_SKIP.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > limit:
                return lines.pos(match.start())
        elif char in "]}":
            depth -= 1
    return 1, 1


# ---------------------------------------------------------------------------------------------
# TOML

_TOML_ERROR_POS = lazy(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")


# Deeper dotted keys are refused before parsing: each level costs tomllib (and every walk of the
# value) time proportional to the depth, so a 50,000-part header would take minutes.
TOML_MAX_KEY_DEPTH = 128
_DOTTED_KEY = lazy(
    r"""[ \t]*\[{0,2}[ \t]*(?:[A-Za-z0-9_-]+|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\n]*')"""
    r"""(?:[ \t]*\.[ \t]*(?:[A-Za-z0-9_-]+|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\n]*'))*"""
)
_KEY_PART = lazy(r"""[A-Za-z0-9_-]+|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\n]*'""")


def _too_deep_key(text: str, lines: _Lines) -> DataTooComplex | None:
    """A header or key of more than TOML_MAX_KEY_DEPTH dotted parts (one linear scan)."""
    offset = 0
    for line in text.split("\n"):
        if line.count(".") >= TOML_MAX_KEY_DEPTH:
            match = _DOTTED_KEY.match(line)
            if match and len(_KEY_PART.findall(match.group())) > TOML_MAX_KEY_DEPTH:
                row, column = lines.pos(offset)
                return DataTooComplex(
                    f"a key of more than {TOML_MAX_KEY_DEPTH} dotted parts: over the per-file "
                    "budget, not audited",
                    row,
                    column,
                )
        offset += len(line) + 1
    return None


INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
_LONG_DIGITS = lazy(r"[0-9][0-9_]{999,}")


def _too_long(text: str, lines: _Lines) -> DataSyntaxError:
    """A digit run Python refuses to convert (thousands of digits): far beyond 64 bits."""
    match = _LONG_DIGITS.search(text)
    line, column = lines.pos(match.start()) if match else (1, 1)
    return DataSyntaxError(
        "an integer with thousands of digits: KumoMTA reads integers of at most 64 bits",
        line,
        column,
    )


def _out_of_range(value: Any, low: int, high: int) -> list[tuple[Any, ...]]:
    """Key paths of integers outside [low, high]."""
    found: list[tuple[Any, ...]] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            stack.extend((v, (*path, k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(node))
        elif isinstance(node, int) and not isinstance(node, bool) and not low <= node <= high:
            found.append(path)
    return sorted(found, key=str)


def _range_error(located: Located, path: tuple[Any, ...], what: str) -> DataSyntaxError:
    try:
        span = located.key_span(path)
        line, column = span.line, span.column
    except (KeyError, IndexError, ValueError, AttributeError):
        line, column = 1, 1
    return DataSyntaxError(f"{render_path(path)}: {what}", line, column)


def _load_toml(text: str, lines: _Lines) -> Located:
    too_deep = _too_deep_key(text, lines)
    if too_deep is not None:
        raise too_deep
    try:
        value = tomllib.loads(text)
    except ValueError as err:
        if isinstance(err, tomllib.TOMLDecodeError):
            raise _toml_syntax_error(err, lines) from None
        raise _too_long(text, lines) from None
    located = Located(value=value, fmt="toml", _lines=lines)
    _TomlScanner(text, lines, located).run()
    for path in _out_of_range(value, INT64_MIN, INT64_MAX)[:1]:
        raise _range_error(
            located,
            path,
            "integer outside the signed 64-bit range, which KumoMTA's TOML reader refuses",
        )
    return located


def _toml_syntax_error(err: tomllib.TOMLDecodeError, lines: _Lines) -> DataSyntaxError:
    message = str(err)
    match = _TOML_ERROR_POS.search(message)
    if match:
        message = message[: match.start()]
        if match.group(1):
            line, column = int(match.group(1)), int(match.group(2))
        else:
            line, column = lines.last()
    else:
        line, column = 1, 1
    return DataSyntaxError(f"TOML syntax error: {message}", line, column)


_BARE_KEY = lazy(r"[A-Za-z0-9_-]+")
_BASIC_STR = lazy(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"')
_LITERAL_STR = lazy(r"'[^'\n]*'")
_ML_BASIC = lazy(r'"""(?:[^"\\]|\\.|"(?!""))*""""{0,2}', re.S)
_ML_LITERAL = lazy(r"'''[\s\S]*?''''{0,2}")
_SCALAR = lazy(r"[^,\]}\n\r#]*")
_WS = lazy(r"[ \t]*")
_WS_NL = lazy(r"(?:[ \t\r\n]+|#[^\n]*)*")


class _TomlScanner:
    """Records key and value offsets of a TOML document that tomllib already accepted."""

    def __init__(self, text: str, lines: _Lines, located: Located) -> None:
        self.text = text
        self.lines = lines
        self.out = located
        self.i = 0
        self.array_counts: dict[KeyPath, int] = {}

    def run(self) -> None:
        text, n = self.text, len(self.text)
        table: KeyPath = ()
        while True:
            self.i = _WS_NL.match(text, self.i).end()
            if self.i >= n:
                return
            if text[self.i] == "[":
                table = self._header()
            else:
                self._keyval(table)

    # keys ----------------------------------------------------------------------------------
    def _key(self) -> list[tuple[str, bool, int, int]]:
        text = self.text
        segments = []
        while True:
            self.i = _WS.match(text, self.i).end()
            start = self.i
            char = text[start] if start < len(text) else ""
            if char == '"':
                end = _BASIC_STR.match(text, start).end()
                raw = text[start:end]
                decoded = raw[1:-1] if "\\" not in raw else tomllib.loads(f"k = {raw}")["k"]
                segments.append((decoded, True, start, end))
            elif char == "'":
                end = _LITERAL_STR.match(text, start).end()
                segments.append((text[start + 1 : end - 1], True, start, end))
            else:
                end = _BARE_KEY.match(text, start).end()
                segments.append((text[start:end], False, start, end))
            self.i = _WS.match(text, end).end()
            if self.i < len(text) and text[self.i] == ".":
                self.i += 1
                continue
            return segments

    def _note_key(self, path: KeyPath, start: int, end: int) -> None:
        self.out._keys.setdefault(path, (start, end))

    def _header(self) -> KeyPath:
        text = self.text
        start = self.i
        is_array = text.startswith("[[", start)
        self.i += 2 if is_array else 1
        segments = self._key()
        close = "]]" if is_array else "]"
        end = text.index(close, self.i) + len(close)
        self.i = end
        # every prefix is a table (or the current element of an array of tables)
        path: KeyPath = ()
        for index, (name, _quoted, s_start, s_end) in enumerate(segments):
            last = index == len(segments) - 1
            path = (*path, name)
            self._note_key(path, s_start, s_end)
            if last and is_array:
                self.out._values.setdefault(path, (start, end))
                count = self.array_counts.get(path, 0)
                self.array_counts[path] = count + 1
                path = (*path, count)
                self.out._keys[path] = (s_start, s_end)
            elif path in self.array_counts:
                path = (*path, self.array_counts[path] - 1)
        self.out._values[path] = (start, end)
        if not is_array:
            self.out._keys[path] = (segments[-1][2], segments[-1][3])
        header_segments = tuple(
            KeySegment(name, quoted, self.lines.span(s, e)) for name, quoted, s, e in segments
        )
        self.out.headers.append(
            TableHeader(
                raw=text[start:end],
                segments=header_segments,
                path=path,
                span=self.lines.span(start, end),
                is_array=is_array,
            )
        )
        return path

    def _keyval(self, table: KeyPath) -> None:
        segments = self._key()
        path = table
        for name, _quoted, s_start, s_end in segments:
            path = (*path, name)
            self._note_key(path, s_start, s_end)
        self.out._keys[path] = (segments[-1][2], segments[-1][3])
        # '='
        self.i = _WS.match(self.text, self.i).end() + 1
        self.i = _WS.match(self.text, self.i).end()
        self._value(path)

    # values --------------------------------------------------------------------------------
    def _value(self, path: KeyPath) -> None:
        text = self.text
        start = self.i
        char = text[start]
        if text.startswith('"""', start):
            end = _ML_BASIC.match(text, start).end()
        elif text.startswith("'''", start):
            end = _ML_LITERAL.match(text, start).end()
        elif char == '"':
            end = _BASIC_STR.match(text, start).end()
        elif char == "'":
            end = _LITERAL_STR.match(text, start).end()
        elif char == "[":
            self.i += 1
            index = 0
            while True:
                self.i = _WS_NL.match(text, self.i).end()
                if text[self.i] == "]":
                    break
                self._value((*path, index))
                index += 1
                self.i = _WS_NL.match(text, self.i).end()
                if text[self.i] == ",":
                    self.i += 1
            end = self.i + 1
        elif char == "{":
            self.i += 1
            while True:
                self.i = _WS_NL.match(text, self.i).end()
                if text[self.i] == "}":
                    break
                if text[self.i] == ",":
                    self.i += 1
                    continue
                segments = self._key()
                inner = path
                for name, _quoted, s_start, s_end in segments:
                    inner = (*inner, name)
                    self._note_key(inner, s_start, s_end)
                self.out._keys[inner] = (segments[-1][2], segments[-1][3])
                self.i = _WS.match(text, self.i).end() + 1
                self.i = _WS_NL.match(text, self.i).end()
                self._value(inner)
            end = self.i + 1
        else:
            raw = _SCALAR.match(text, start).group()
            end = start + len(raw.rstrip())
        self.out._values[path] = (start, end)
        self.i = end


# ---------------------------------------------------------------------------------------------
# JSON

_JSON_STRING = lazy(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_JSON_SKIP = lazy(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)
_JSON_WS = lazy(r"\s*")
_JSON_SCALAR = lazy(r'[^\s,\]}:"]+')
_JSON_COMMENTS = lazy(r'"[^"\\]*(?:\\.[^"\\]*)*"|//[^\n]*|/\*[\s\S]*?\*/|#[^\n]*')
_JSON_ERROR_POS = lazy(r":\s*line (\d+) column (\d+) \(char \d+\)$")
_JSON_CONSTANTS = lazy(r'"[^"\\]*(?:\\.[^"\\]*)*"|(-?Infinity|NaN)', re.S)


def _blank_comments(text: str) -> str:
    """Replace //, /* */ and # comments (which KumoMTA's JSON loader strips) by spaces, keeping
    newlines so positions do not move."""
    if "//" not in text and "/*" not in text and "#" not in text:
        return text

    def blank(match: re.Match[str]) -> str:
        found = match.group()
        if found.startswith('"'):
            return found
        return re.sub(r"[^\n]", " ", found)

    return _JSON_COMMENTS.sub(blank, text)


class _DuplicateKeys:
    def __init__(self) -> None:
        self.found: list[str] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            self.found.append(next(iter(result)))
        return result


def _json_int(text: str) -> int:
    if len(text) > 40:
        raise _IntTooLong(text)
    return int(text)


class _IntTooLong(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _ConstantError(name)


class _ConstantError(ValueError):
    pass


def _load_json(text: str, lines: _Lines) -> Located:
    clean = _blank_comments(text)
    duplicates = _DuplicateKeys()
    try:
        value = json.loads(
            clean,
            object_pairs_hook=duplicates,
            parse_constant=_reject_constant,
            parse_int=_json_int,
        )
    except _IntTooLong:
        raise _too_long(clean, lines) from None
    except _ConstantError as err:
        line, column = 1, 1
        for match in _JSON_CONSTANTS.finditer(clean):
            if match.group(1):
                line, column = lines.pos(match.start())
                break
        raise DataSyntaxError(f"{err} is not valid JSON", line, column) from None
    except json.JSONDecodeError as err:
        raise DataSyntaxError(f"JSON syntax error: {err.msg}", err.lineno, err.colno) from None
    located = Located(value=value, fmt="json", _lines=lines, _json=_JsonLocator(clean))
    for path in _out_of_range(value, INT64_MIN, UINT64_MAX)[:1]:
        raise _range_error(
            located, path, "integer outside the 64-bit range, which KumoMTA's JSON reader refuses"
        )
    if _depth_exceeds(clean, JSON_MAX_DEPTH):
        line, column = _deepest_point(clean, lines)
        raise DataSyntaxError(
            f"the data is nested more than {JSON_MAX_DEPTH} levels deep, which KumoMTA's JSON "
            "loader refuses",
            line,
            column,
        )
    if duplicates.found:
        for key, (line, column) in _duplicate_positions(clean, lines):
            located.problems.append(
                DataSyntaxError(f"duplicate key {key!r}: only the last value is kept", line, column)
            )
    return located


_NOT_BRACKET = lazy(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\[\]{}"]+', re.S)
_INNERMOST = lazy(r"\[\]|\{\}")


def _depth_exceeds(text: str, limit: int) -> bool:
    """True if brackets nest deeper than `limit`: keep only the brackets, then peel one layer of
    innermost pairs per pass (each pass is one C-speed regex substitution)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub("", text)
    for _ in range(limit):
        peeled = _INNERMOST.sub("", brackets)
        if not peeled:
            return False
        brackets = peeled
    return True


def _duplicate_positions(text: str, lines: _Lines) -> list[tuple[str, tuple[int, int]]]:
    """(key, position) of each repeated key, by one scan over the document's tokens."""
    out: list[tuple[str, tuple[int, int]]] = []
    stack: list[set[str] | None] = []
    expect_key = False
    for match in re.finditer(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', text, re.S):
        token = match.group()
        if token == "{":
            stack.append(set())
            expect_key = True
        elif token == "[":
            stack.append(None)
            expect_key = False
        elif token in "]}":
            stack.pop()
            expect_key = False
        elif token == ",":
            expect_key = bool(stack) and stack[-1] is not None
        elif expect_key:
            key = json.loads(token)
            seen = stack[-1]
            assert seen is not None
            if key in seen:
                out.append((key, lines.pos(match.start())))
            seen.add(key)
            expect_key = False
    return out


class _JsonLocator:
    """Finds (key range, value range) offsets for a path by walking the text on demand."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.decoder = json.JSONDecoder()
        self.objects: dict[int, dict[str, tuple[tuple[int, int], tuple[int, int]]]] = {}
        self.arrays: dict[int, tuple[list[tuple[int, int]], int]] = {}
        self.cache: dict[KeyPath, tuple[tuple[int, int] | None, tuple[int, int]] | None] = {}

    def __getstate__(self) -> dict[str, Any]:
        # the decoder holds a C scanner that cannot be pickled (results are cached on disk)
        return {k: v for k, v in self.__dict__.items() if k != "decoder"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.decoder = json.JSONDecoder()

    def _skip_ws(self, i: int) -> int:
        return _JSON_WS.match(self.text, i).end()

    def _value_end(self, i: int) -> int:
        text = self.text
        char = text[i]
        if char == '"':
            return _JSON_STRING.match(text, i).end()
        if char in "[{":
            return self.decoder.raw_decode(text, i)[1]
        return _JSON_SCALAR.match(text, i).end()

    def find(self, path: KeyPath) -> tuple[tuple[int, int] | None, tuple[int, int]] | None:
        if path in self.cache:
            return self.cache[path]
        if not path:
            start = self._skip_ws(0)
            result: tuple[tuple[int, int] | None, tuple[int, int]] | None = (
                None,
                (start, self._value_end(start)) if start < len(self.text) else (0, 0),
            )
        else:
            parent = self.find(path[:-1])
            result = None if parent is None else self._child(parent[1][0], path[-1])
        self.cache[path] = result
        return result

    def _child(
        self, start: int, part: PathKey
    ) -> tuple[tuple[int, int] | None, tuple[int, int]] | None:
        if start >= len(self.text):
            return None
        opener = self.text[start]
        if opener == "{" and isinstance(part, str):
            return self._members(start).get(part)
        if opener == "[" and isinstance(part, int):
            elements = self._elements(start, part)
            return (None, elements[part]) if part < len(elements) else None
        return None

    def _members(self, start: int) -> dict[str, tuple[tuple[int, int], tuple[int, int]]]:
        """Every member of the object at `start` (scanned once; the last duplicate wins)."""
        found = self.objects.get(start)
        if found is not None:
            return found
        text = self.text
        found = {}
        i = self._skip_ws(start + 1)
        while i < len(text) and text[i] == '"':
            key_end = _JSON_STRING.match(text, i).end()
            key = json.loads(text[i:key_end])
            value_start = self._skip_ws(self._skip_ws(key_end) + 1)
            value_end = self._value_end(value_start)
            found[key] = ((i, key_end), (value_start, value_end))
            i = self._skip_ws(value_end)
            if i < len(text) and text[i] == ",":
                i = self._skip_ws(i + 1)
            else:
                break
        self.objects[start] = found
        return found

    def _elements(self, start: int, upto: int) -> list[tuple[int, int]]:
        """Element ranges of the array at `start`, scanned as far as index `upto` (resumable)."""
        text = self.text
        elements, i = self.arrays.get(start, ([], self._skip_ws(start + 1)))
        while len(elements) <= upto and i < len(text) and text[i] != "]":
            value_end = self._value_end(i)
            elements.append((i, value_end))
            i = self._skip_ws(value_end)
            if i < len(text) and text[i] == ",":
                i = self._skip_ws(i + 1)
        self.arrays[start] = (elements, i)
        return elements


def render_path(loc: KeyPath) -> str:
    """A stable, readable name of a key path: `["gmail.com"].automation[0].duration`."""
    out = ""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)
        if index == 0:
            out += f"[{text}]" if not re.fullmatch(r"[A-Za-z0-9_-]+", part) else text
        else:
            out += f".{text}"
    return out
