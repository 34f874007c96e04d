"""tree-sitter-lua parsing and position conversion (tree-sitter counts bytes; findings count characters)."""

from __future__ import annotations

from functools import cache

from tree_sitter import Language, Node, Parser, Tree

from auditor.core.findings import Span

_new_tuple = tuple.__new__


@cache
def lua_language() -> Language:
    """The Lua grammar, from the compiled binding of `tree_sitter_lua`, loaded by itself: the
    package's `__init__` imports `importlib.resources` (and with it `tempfile`, `shutil` and more)
    only to offer query files this auditor does not use, about 4 ms of every start. Anything
    unexpected about the installation falls back to the package's own import."""
    import importlib.machinery
    import os

    spec = importlib.machinery.PathFinder.find_spec("tree_sitter_lua")
    for directory in (spec.submodule_search_locations or []) if spec else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(directory, "_binding" + suffix)
            if not os.path.isfile(path):
                continue
            name = "tree_sitter_lua._binding"
            loader = importlib.machinery.ExtensionFileLoader(name, path)
            try:
                binding = loader.create_module(
                    importlib.machinery.ModuleSpec(name, loader, origin=path)
                )
                loader.exec_module(binding)
                return Language(binding.language())
            except (ImportError, AttributeError, OSError, TypeError):
                break
    import tree_sitter_lua

    return Language(tree_sitter_lua.language())


@cache
def _parser() -> Parser:
    return Parser(lua_language())


def parse(source: bytes) -> Tree:
    return _parser().parse(source)


@cache
def _query(pattern: str):  # type: ignore[no-untyped-def]
    from tree_sitter import Query

    return Query(lua_language(), pattern)


def captures(node: Node, pattern: str) -> list[Node]:
    """Every node a tree-sitter query `pattern` captures under `node`, in document order (the
    search runs natively: much faster than a Python walk over every node)."""
    from tree_sitter import QueryCursor

    found = [n for nodes in QueryCursor(_query(pattern)).captures(node).values() for n in nodes]
    found.sort(key=lambda n: (n.start_byte, -n.end_byte))
    return found


class LineIndex:
    """Converts tree-sitter (row, byte column) points into 1-based line and character column."""

    __slots__ = ("_ascii", "_lines", "_source")

    def __init__(self, source: bytes) -> None:
        self._source = source
        self._lines: list[bytes] | None = None
        self._ascii = source.isascii()

    def _line(self, row: int) -> bytes:
        if self._lines is None:
            self._lines = self._source.split(b"\n")
        return self._lines[row] if row < len(self._lines) else b""

    def column(self, row: int, byte_col: int) -> int:
        if self._ascii:
            return byte_col + 1
        line = self._line(row)
        prefix = line[:byte_col]
        if prefix.isascii():
            return byte_col + 1
        return len(prefix.decode("utf-8", "replace")) + 1

    def span(self, node: Node) -> Span:
        (sr, sc), (er, ec) = node.start_point, node.end_point
        if self._ascii:  # built as a tuple: Span(...) goes through a Python-level __new__
            return _new_tuple(Span, (sr + 1, sc + 1, er + 1, ec + 1))
        return Span(sr + 1, self.column(sr, sc), er + 1, self.column(er, ec))

    def point_span(self, row: int, byte_col: int) -> Span:
        col = self.column(row, byte_col)
        return Span(row + 1, col, row + 1, col)

    def text(self, node: Node | None) -> str:
        """The source text of `node` (sliced from the source: `Node.text` costs time proportional to
        the length of the node's line, which makes a one-line file quadratic)."""
        if node is None:
            return ""
        return self._source[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def source_text(self) -> str:
        return self._source.decode("utf-8", "replace")

    def head(self, node: Node, limit: int) -> str:
        """At most the first `limit` bytes of `node`'s text (a label or a short description)."""
        start = node.start_byte
        return self._source[start : min(node.end_byte, start + limit)].decode("utf-8", "replace")

    def starts_line(self, byte: int) -> bool:
        """True when only whitespace precedes `byte` on its line (scanned back from `byte`, so a
        one-line file of many statements is not rescanned for each of them)."""
        source = self._source
        while byte > 0 and source[byte - 1] in b" \t\r\f\v":
            byte -= 1
        return byte == 0 or source[byte - 1] == 0x0A

    def line_text(self, line: int) -> str:
        return self._line(line - 1).decode("utf-8", "replace")


def text(node: Node) -> str:
    raw = node.text
    return raw.decode("utf-8", "replace") if raw is not None else ""


def first_error(tree: Tree) -> Node | None:
    """The first ERROR or MISSING node in document order, found without recursion."""
    if not tree.root_node.has_error:
        return None
    cursor = tree.walk()
    while True:
        node = cursor.node
        if node is not None and (node.is_error or node.is_missing):
            return node
        if node is not None and node.has_error and cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return None


def error_on_line(tree: Tree, row: int) -> Node | None:
    """The first ERROR/MISSING node that starts on `row` (0-based), to give a Lua message a column."""
    if not tree.root_node.has_error:
        return None
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.end_point[0] < row or node.start_point[0] > row:
            continue
        if (node.is_error or node.is_missing) and node.start_point[0] == row:
            return node
        if node.has_error:
            stack.extend(reversed(node.children))
    return None
