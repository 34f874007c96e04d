"""Extracts the facts of one Lua file that the policy model needs, in one walk of its syntax tree.

Facts are plain picklable data (no tree-sitter nodes), so they can be cached by the file's content id.
Names are resolved lexically into *paths*: tuples such as ``("kumo", "start_esmtp_listener")``,
``("require", "policy-extras.queue", "setup_with_options", "()", "apply")``, ``("fn", 3)`` for a function
defined in this file, ``("global", "io", "open")`` for an unbound name, ``("local", "x")`` for a local whose
value is not tracked. ``"()"`` marks the result of a call.
"""

from __future__ import annotations

import gc
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from auditor.core.findings import Span
from auditor.core.lazyre import lazy
from auditor.lua.literal import Entry, Evaluator, Lit, Table, Unknown, Value

if TYPE_CHECKING:  # the syntax tree is needed only while extracting, not to load cached facts
    from tree_sitter import Node

    from auditor.lua.syntax import LineIndex

FieldPath = tuple[object, ...]

FILE_LEVEL = -1  # `func` of code that runs when the file itself runs


@dataclass
class FunctionDef:
    """A function defined in a file: name, span, enclosing function and parameters."""

    id: int
    name: str | None
    span: Span
    parent: int  # enclosing function id, or FILE_LEVEL
    params: list[str]
    body: tuple[int, int]  # byte range of the body (see digest_of)


@dataclass
class CallFact:
    """One call: callee path, evaluated arguments and spans."""

    callee: FieldPath
    text: str  # callee as written
    args: list[Value]
    arg_refs: list[FieldPath | None]
    span: Span  # whole call
    name_span: Span  # callee expression
    func: int
    method: bool = False
    in_condition: bool = False  # inside an if/loop body: may not run


@dataclass
class GlobalWrite:
    """An assignment to a global variable."""

    name: str
    span: Span
    func: int
    is_function: bool = False


@dataclass
class MemberUse:
    """A read of a member of a known value (e.g. a helper's field)."""

    path: FieldPath  # base path + member
    span: Span
    func: int


@dataclass
class Statement:
    """A top-level statement, hashed without comments and whitespace (for semantic diffs)."""

    kind: str
    span: Span
    byte_range: tuple[int, int]  # see digest_of
    label: str


@dataclass
class Comment:
    """One comment and where it stands."""

    line: int
    column: int
    end_line: int
    text: str
    standalone: bool  # nothing but whitespace before it on its line


@dataclass
class SecretString:
    """A string literal that holds a secret, by the name it is bound to or by its shape (S106, and
    what a change set redacts); found once per file version instead of by a second parse."""

    span: Span
    name: str | None  # the variable or field it is bound to
    reason: str
    raw: str  # as written, without its quotes
    value: str


@dataclass
class FileFacts:
    """Everything the rules need from one Lua file, extracted once and cached by content id."""

    functions: list[FunctionDef] = field(default_factory=list)
    calls: list[CallFact] = field(default_factory=list)
    globals: list[GlobalWrite] = field(default_factory=list)
    members: list[MemberUse] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    returns: FieldPath | None = None  # what the chunk returns (module value)
    returns_table: str | None = None  # name of the local table it returns, e.g. "M"
    global_functions: dict[str, int] = field(default_factory=dict)
    statement_lines: list[tuple[int, int]] = field(default_factory=list)  # every statement's lines
    secret_strings: list[SecretString] = field(default_factory=list)  # last literal first
    has_error: bool = False


_SCOPE_STATEMENTS = {
    "do_statement",
    "while_statement",
    "repeat_statement",
    "if_statement",
    "for_statement",
    "elseif_statement",
    "else_statement",
}
_KUMO_PATH: FieldPath = ("kumo",)
_CHAIN_LINKS = frozenset(
    {
        "dot_index_expression",
        "method_index_expression",
        "bracket_index_expression",
        "parenthesized_expression",
        "function_call",
    }
)
MAX_PATH = 64  # a longer name path (only pathological code has one) denotes nothing tracked
_UNRESOLVED = object()


class _Scope:
    __slots__ = ("names", "parent")

    def __init__(self, parent: _Scope | None) -> None:
        self.parent = parent
        self.names: dict[str, object] = {}

    def lookup(self, name: str) -> object | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None


class _Const:
    """A local bound to a literal value (usable by the literal evaluator). For a table, `where` is
    the (function, conditional depth) of its declaration: fields assigned there are known."""

    __slots__ = ("value", "where")

    def __init__(self, value: Value, where: tuple[int, int] | None = None) -> None:
        self.value = value
        self.where = where


class _Loop:
    """A `for _, v in ipairs {...}` (or pairs, or over a local table) whose elements are known: its
    body runs once per element, so `table.insert(t, v)` there appends each of them."""

    __slots__ = ("func", "level", "scope", "values", "var")

    def __init__(self, func: int, level: int, scope: _Scope, var: str, values: list[Value]) -> None:
        self.func, self.level, self.scope, self.var, self.values = func, level, scope, var, values


_TABLE_INSERT: FieldPath = ("global", "table", "insert")
_READ_ONLY: frozenset[FieldPath] = frozenset(
    {
        ("global", "ipairs"),
        ("global", "pairs"),
        ("global", "next"),
        ("global", "tostring"),
        ("global", "type"),
        ("global", "table", "concat"),
        ("global", "table", "unpack"),
    }
)
MAX_UNROLLED = 64  # elements of a loop followed one by one; a longer loop appends an unknown


_SCALAR_EXPRESSIONS = frozenset(
    {"string", "number", "true", "false", "binary_expression", "parenthesized_expression"}
)
MAX_TRACKED_FIELDS = 200  # a table built field by field beyond this is no longer followed


class _Extractor:
    def __init__(self, source: bytes) -> None:
        from auditor.lua.syntax import LineIndex

        self.index = LineIndex(source)
        self._text = self.index.text
        self.facts = FileFacts()
        self.scope = _Scope(None)
        self.func = FILE_LEVEL
        self.conditional = 0
        self.evaluator = Evaluator(self.index, self._const_lookup, self._call_lookup)
        self._returned: dict[int, list[Value]] = {}  # function id -> values its returns give
        self._fn_value: dict[int, Value] = {}  # function id -> what every call returns
        self._loops: list[_Loop] = []  # enclosing loops over literal tables, innermost last
        self._defined: dict[
            int, int
        ] = {}  # function node start byte -> id (a node is defined once)
        self._resolved: dict[
            int, FieldPath | None
        ] = {}  # node id -> path, for one top-level statement

    # ----- names -----------------------------------------------------------------------------------
    def _const_lookup(self, name: str) -> Value | None:
        bound = self.scope.lookup(name)
        return bound.value if isinstance(bound, _Const) else None

    def _call_lookup(self, name: str) -> Value | None:
        bound = self.scope.lookup(name)
        if isinstance(bound, tuple) and bound[:1] == ("fn",):
            return self._fn_value.get(bound[1])  # type: ignore[arg-type]
        return None

    def resolve(self, node: Node) -> FieldPath | None:
        """The path an expression denotes, when it is a name, a field of one, or a call result.

        Iterative and memoized per node: a chain like `t.b.b.b...()` (which Lua accepts at any
        length) costs one step per link, however often its inner links are asked for."""
        memo = self._resolved
        known = memo.get(node.id, _UNRESOLVED)
        if known is not _UNRESOLVED:
            return known  # type: ignore[return-value]
        chain: list[Node] = []
        current: Node | None = node
        result: FieldPath | None = None
        while current is not None:
            known = memo.get(current.id, _UNRESOLVED)
            if known is not _UNRESOLVED:
                result = known  # type: ignore[assignment]
                break
            kind = current.type
            if kind == "identifier":
                result = self._resolve_name(self._text(current))
                break
            if kind not in _CHAIN_LINKS:
                break
            chain.append(current)
            if kind == "parenthesized_expression":
                inner = current.named_children
                current = inner[0] if inner else None
            elif kind == "function_call":
                current = current.child_by_field_name("name")
            else:
                current = current.child_by_field_name("table")
        for link in reversed(chain):
            result = self._link(link, result)
            memo[link.id] = result
        return result

    def _resolve_name(self, name: str) -> FieldPath | None:
        bound = self.scope.lookup(name)
        if bound is None:
            if name == "kumo":
                return _KUMO_PATH
            if name in self.facts.global_functions:
                return ("fn", self.facts.global_functions[name])
            return ("global", name)
        if isinstance(bound, _Const):
            return ("local", name)
        return bound  # type: ignore[return-value]

    def _link(self, node: Node, base: FieldPath | None) -> FieldPath | None:
        """The path of one link of a chain given the path of what it applies to."""
        if base is None or len(base) >= MAX_PATH:
            return None
        kind = node.type
        if kind == "dot_index_expression" or kind == "method_index_expression":
            name = node.child_by_field_name("field" if kind == "dot_index_expression" else "method")
            return None if name is None else (*base, self._text(name))
        if kind == "bracket_index_expression":
            fld = node.child_by_field_name("field")
            if fld is None or fld.type != "string":
                return None
            value = self.evaluator.eval(fld)
            return (*base, value.value) if isinstance(value, Lit) else None
        if kind == "parenthesized_expression":
            return base
        # function_call
        if base == ("global", "require"):
            module = self._require_name(node)
            if module == "kumo":
                return _KUMO_PATH
            return ("require", module) if module else None
        if base[:2] == ("kumo", "memoize"):
            args = _call_args(node)
            if args:
                target = self.value_ref(args[0])
                if target is not None:
                    return ("memoized", *target)
        return (*base, "()")

    def _require_name(self, call: Node) -> str | None:
        args = _call_args(call)
        if len(args) == 1:
            value = self.evaluator.eval(args[0])
            if isinstance(value, Lit) and isinstance(value.value, str):
                return value.value
        return None

    def value_ref(self, node: Node) -> FieldPath | None:
        """Reference carried by an argument: an inline function or a resolvable name."""
        if node.type == "function_definition":
            return ("fn", self.define_function(node, None))
        return self.resolve(node)

    # ----- functions -------------------------------------------------------------------------------
    def define_function(self, node: Node, name: str | None) -> int:
        known = self._defined.get(node.start_byte)
        if known is not None:
            return known
        fid = len(self.facts.functions)
        self._defined[node.start_byte] = fid
        params_node = node.child_by_field_name("parameters")
        params = (
            [self._text(p) for p in params_node.named_children if p.type == "identifier"]
            if params_node
            else []
        )
        body = node.child_by_field_name("body")
        self.facts.functions.append(
            FunctionDef(fid, name, self.index.span(node), self.func, params, _range(body))
        )
        saved_func, saved_scope, saved_cond = self.func, self.scope, self.conditional
        self.func, self.scope, self.conditional = fid, _Scope(self.scope), 0
        for p in params:
            self.scope.names[p] = ("param", p)
        for (
            child
        ) in node.named_children:  # comments before the first statement sit outside the body
            if child.type == "comment":
                self.comment(child)
        if body is not None:
            self.block(body)
            self._summarize_returns(fid, body)
        self.func, self.scope, self.conditional = saved_func, saved_scope, saved_cond
        return fid

    def _summarize_returns(self, fid: int, body: Node) -> None:
        """A simple function that always returns a literal (or one of a few strings): what calls of
        it give. It must end with a return, so it never falls off the end and returns nothing."""
        returned = self._returned.pop(fid, None)
        statements = [c for c in body.named_children if c.type != "comment"]
        if not returned or not statements or statements[-1].type != "return_statement":
            return
        if not all(isinstance(v, Lit) and v.when is None for v in returned):
            return
        values = [v.value for v in returned if isinstance(v, Lit)]
        if all(v == values[0] for v in values) and type(values[0]) in (str, int, float, bool):
            self._fn_value[fid] = returned[0]
        elif all(isinstance(v, str) for v in values):
            texts = [str(v) for v in values]
            prefix = _common_prefix(texts)
            suffix = _common_prefix([t[::-1] for t in texts])[::-1]
            self._fn_value[fid] = Unknown(returned[0].span, "one of several", prefix, suffix)

    # ----- statements ------------------------------------------------------------------------------
    def block(self, node: Node) -> None:
        for child in node.named_children:
            self.statement(child)

    def statement(self, node: Node) -> None:
        kind = node.type
        if kind == "comment":
            self.comment(node)
            return
        self.facts.statement_lines.append((node.start_point[0] + 1, node.end_point[0] + 1))
        if kind == "variable_declaration":
            self.local_declaration(node)
        elif kind == "function_declaration":
            self.function_declaration(node)
        elif kind == "assignment_statement":
            self.assignment(node, local=False)
        elif kind == "function_call":
            self.expression(node)
        elif kind == "return_statement":
            self.return_statement(node)
        elif kind in _SCOPE_STATEMENTS:
            self.compound(node)
        elif kind == "block":
            self.block(node)
        else:
            for child in node.named_children:
                self.expression(child)

    def compound(self, node: Node) -> None:
        saved = self.scope
        self.scope = _Scope(self.scope)
        conditional = node.type != "do_statement"
        if conditional:
            self.conditional += 1
        loops = len(self._loops)
        for child in node.named_children:
            kind = child.type
            if kind == "block":
                self.block(child)
            elif kind in ("elseif_statement", "else_statement"):
                self.compound(child)
            elif kind == "comment":
                self.comment(child)
            elif kind in ("for_numeric_clause", "for_generic_clause"):
                self.for_clause(child)
            else:
                self.expression(child)
        del self._loops[loops:]
        if conditional:
            self.conditional -= 1
        self.scope = saved

    def for_clause(self, node: Node) -> None:
        names: list[str] = []
        for child in node.named_children:
            if (
                child.type == "identifier"
                and node.field_name_for_named_child(node.named_children.index(child)) == "name"
            ):
                names.append(self._text(child))
            elif child.type == "variable_list":
                names.extend(self._text(n) for n in child.named_children if n.type == "identifier")
            else:
                self.expression(child)
        values = self._loop_values(node) if len(names) == 2 else None
        element = _loop_element(values) if values else None
        for i, name in enumerate(names):
            if i == 1 and element is not None:
                self.scope.names[name] = _Const(element)
            else:
                self.scope.names[name] = ("local", name)
        if values and len(values) <= MAX_UNROLLED:
            self._loops.append(_Loop(self.func, self.conditional, self.scope, names[1], values))

    def _loop_values(self, clause: Node) -> list[Value] | None:
        """`for _, v in ipairs { 'a', 'b' }` (or pairs, or a local table built before): the values v
        takes, one per iteration, when they are all known."""
        exprs = [c for c in clause.named_children if c.type == "expression_list"]
        call = exprs[0].named_children[0] if exprs and exprs[0].named_children else None
        if call is None or call.type != "function_call":
            return None
        callee = call.child_by_field_name("name")
        iterator = self._text(callee) if callee is not None else ""
        if iterator not in ("ipairs", "pairs") or self.scope.lookup(iterator) is not None:
            return None
        args = _call_args(call)
        if len(args) != 1 or args[0].type not in ("table_constructor", "identifier"):
            return None
        table = self.evaluator.eval(args[0])
        if not isinstance(table, Table) or table.has_unknown_keys:
            return None
        values = table.array() if iterator == "ipairs" else [e.value for e in table.entries]
        return values or None

    def local_declaration(self, node: Node) -> None:
        for child in node.named_children:
            if child.type == "assignment_statement":
                self.assignment(child, local=True)
            elif child.type == "variable_list":
                for name in child.named_children:
                    if name.type == "identifier":
                        self.scope.names[self._text(name)] = ("local", self._text(name))
            elif child.type == "function_declaration":
                self.function_declaration(child, local=True)
            elif child.type == "comment":
                self.comment(child)

    def function_declaration(self, node: Node, local: bool = False) -> None:
        name_node = node.child_by_field_name("name")
        name = self._text(name_node) if name_node is not None else None
        if local or (node.children and node.children[0].type == "local"):
            local = True
        if local and name:
            # `local function f` is in scope inside its own body (recursion)
            self.scope.names[name] = ("fn", len(self.facts.functions))
            self.define_function(node, name)
            return
        fid = len(self.facts.functions)
        if name_node is not None and name_node.type == "identifier" and name:
            bound = self.scope.lookup(name)
            if bound is None:
                self.facts.global_functions[name] = fid
                self.facts.globals.append(
                    GlobalWrite(name, self.index.span(name_node), self.func, True)
                )
            else:
                self.scope_assign(name, ("fn", fid))
        elif name_node is not None:
            qualified = name.replace(":", ".") if name else None
            name = qualified
        self.define_function(node, name)

    def scope_assign(self, name: str, value: object) -> None:
        scope: _Scope | None = self.scope
        while scope is not None:
            if name in scope.names:
                scope.names[name] = value
                return
            scope = scope.parent

    def assignment(self, node: Node, *, local: bool) -> None:
        targets_node = next((c for c in node.named_children if c.type == "variable_list"), None)
        values_node = next((c for c in node.named_children if c.type == "expression_list"), None)
        targets = (
            [t for t in targets_node.named_children if t.type != "attribute"]
            if targets_node
            else []
        )
        values = list(values_node.named_children) if values_node else []
        values = [v for v in values if v.type != "comment"]
        bound: list[object] = []
        for i, target in enumerate(targets):
            value_node = values[i] if i < len(values) else None
            name = self._text(target) if target.type == "identifier" else None
            bound.append(self.bind_value(value_node, name if name else self._text(target)))
        for value_node in values[len(targets) :]:
            self.expression(value_node)
        for target, binding in zip(targets, bound, strict=True):
            if target.type == "identifier":
                name = self._text(target)
                if local:
                    self.scope.names[name] = binding
                elif self.scope.lookup(name) is not None:
                    self.scope_assign(
                        name, ("local", name) if isinstance(binding, _Const) else binding
                    )
                else:
                    is_fn = isinstance(binding, tuple) and binding[:1] == ("fn",)
                    if is_fn:
                        self.facts.global_functions[name] = binding[1]  # type: ignore[index]
                    self.facts.globals.append(
                        GlobalWrite(name, self.index.span(target), self.func, is_fn)
                    )
            else:
                self.expression(target)
                if target.type in ("dot_index_expression", "bracket_index_expression"):
                    value_node = values[targets.index(target)] if target in targets else None
                    self.assign_field(target, value_node)

    def assign_field(self, target: Node, value_node: Node | None) -> None:
        """`t.k = v` on a local table built field by field: the table now has k = v (or an unknown
        k when the assignment may not run where the table was made)."""
        table_node = target.child_by_field_name("table")
        field_node = target.child_by_field_name("field")
        if table_node is None or field_node is None or table_node.type != "identifier":
            return
        name = self._text(table_node)
        bound = self.scope.lookup(name)
        if not isinstance(bound, _Const) or not isinstance(bound.value, Table):
            return
        table = bound.value
        if len(table.entries) >= MAX_TRACKED_FIELDS:
            self.scope_assign(name, ("local", name))
            return
        if target.type == "bracket_index_expression" and self._is_length_plus_one(field_node, name):
            if value_node is not None:
                self._append(name, bound, value_node)
            return
        if target.type == "dot_index_expression":
            key: object = self._text(field_node)
        else:
            key_value = self.evaluator.eval(field_node)
            key = key_value.value if isinstance(key_value, Lit) else key_value
        value = (
            self.evaluator.eval(value_node)
            if value_node is not None
            else Unknown(self.index.span(target), "")
        )
        if bound.where != (self.func, self.conditional):
            value = Unknown(self.index.span(target), "assigned where it may not run")
        entries = [e for e in table.entries if isinstance(key, Unknown) or e.key != key]
        if not (isinstance(value, Lit) and value.value is None):  # t.k = nil removes k
            entries.append(Entry(key, value, self.index.span(field_node)))  # type: ignore[arg-type]
        self.scope_assign(name, _Const(Table(entries, table.span), bound.where))

    def _is_length_plus_one(self, node: Node, name: str) -> bool:
        """`#t + 1` for the table `t`: the key that appends to its sequence."""
        if node.type != "binary_expression":
            return False
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        operator = node.child_by_field_name("operator")
        if left is None or right is None or operator is None or operator.type != "+":
            return False
        if right.type != "number" or self._text(right).strip() != "1":
            return False
        if left.type != "unary_expression" or not left.children or left.children[0].type != "#":
            return False
        operand = left.child_by_field_name("operand")
        return operand is not None and operand.type == "identifier" and self._text(operand) == name

    def _table_insert(self, args: list[Node]) -> bool:
        """`table.insert(t, v)` on a local table followed as it is built: t gains v at its end."""
        if len(args) != 2 or args[0].type != "identifier":
            return False
        name = self._text(args[0])
        bound = self.scope.lookup(name)
        if not isinstance(bound, _Const) or not isinstance(bound.value, Table):
            return False
        if len(bound.value.entries) >= MAX_TRACKED_FIELDS:
            return False  # no longer followed: the table becomes unknown
        self._append(name, bound, args[1])
        return True

    def _append(self, name: str, bound: _Const, value_node: Node) -> None:
        """Append to the sequence of a local table: the value where the table was made; each
        element of a loop over a known list directly inside that place; else an unknown element
        (it may or may not be added)."""
        values: list[Value]
        here = (self.func, self.conditional)
        loop = self._loops[-1] if self._loops else None
        if bound.where == here:
            values = [self.evaluator.eval(value_node)]
        elif (
            loop is not None
            and bound.where == (loop.func, loop.level - 1)
            and here == (loop.func, loop.level)
            and self.scope.lookup(loop.var) is loop.scope.names.get(loop.var)
        ):
            if value_node.type == "identifier" and self._text(value_node) == loop.var:
                values = list(loop.values)  # each element where it is written
            else:
                values = self._each_element(loop, value_node)
        else:  # it may or may not be added: what is known of it stays (a prefix, a suffix)
            value = self.evaluator.eval(value_node)
            known = _concat_text(value) if isinstance(value, Lit) else None
            prefix = known if known is not None else getattr(value, "prefix", "")
            suffix = known if known is not None else getattr(value, "suffix", "")
            env = value.env if isinstance(value, Unknown) else None
            span = self.index.span(value_node)
            values = [Unknown(span, "added where it may not run", prefix, suffix, env)]
        table = bound.value
        assert isinstance(table, Table)
        entries = list(table.entries)
        position = len(table.array())
        for value in values:
            if isinstance(value, Lit) and value.value is None:
                continue  # appending nil adds nothing
            position += 1
            entries.append(Entry(position, value, None))
        self.scope_assign(name, _Const(Table(entries, table.span), bound.where))

    def _per_element(self, args: list[Node], values: list[Value]) -> list[list[Value]] | None:
        """The arguments of a `kumo.*` call directly in the body of a loop over known elements,
        once per element, when they depend on the loop variable (`for _, name in ipairs {'data',
        'meta'} do kumo.define_spool { name = name, ... } end` defines two spools)."""
        loop = self._loops[-1] if self._loops else None
        if (
            loop is None
            or len(loop.values) < 2
            or (self.func, self.conditional)
            != (
                loop.func,
                loop.level,
            )
        ):
            return None
        if self.scope.lookup(loop.var) is not loop.scope.names.get(loop.var):
            return None
        variants = [
            [
                value if node.type == "function_definition" else self.evaluator.eval(node)
                for node, value in zip(args, values, strict=True)
            ]
            for _ in self._bound_to_each(loop)
        ]
        first = [v.py() for v in variants[0]]
        if all([v.py() for v in variant] == first for variant in variants[1:]):
            return None  # the same call every time
        return variants

    def _bound_to_each(self, loop: _Loop) -> Iterator[Value]:
        """Bind the loop variable to each element in turn (restored afterwards)."""
        saved = loop.scope.names[loop.var]
        try:
            for element in loop.values:
                loop.scope.names[loop.var] = _Const(element)
                yield element
        finally:
            loop.scope.names[loop.var] = saved

    def _each_element(self, loop: _Loop, value_node: Node) -> list[Value]:
        """The value of an expression in each iteration of a loop over known elements."""
        return [self.evaluator.eval(value_node) for _ in self._bound_to_each(loop)]

    def bind_value(self, value_node: Node | None, name: str) -> object:
        """Evaluate the right-hand side once: walk it for calls, and return what the name now denotes."""
        if value_node is None:
            return ("local", name)
        kind = value_node.type
        if kind == "function_definition":
            return ("fn", self.define_function(value_node, name))
        if kind in ("string", "number", "true", "false", "table_constructor") or (
            kind == "unary_expression" and value_node.named_children
        ):
            value = self.evaluator.eval(value_node)
            self.expression(value_node)
            if isinstance(value, Lit) and kind != "table_constructor":
                return _Const(value)
            if isinstance(value, Table) and name.isidentifier():
                # a local table: followed as it is built field by field
                return _Const(value, (self.func, self.conditional))
            return ("local", name)
        if kind in ("binary_expression", "parenthesized_expression", "function_call"):
            # computed values the evaluator follows: `os.getenv('X') or 'default'`, `'a:' .. port`
            value = self.evaluator.eval(value_node)
            if isinstance(value, Lit) or (
                isinstance(value, Unknown) and (value.env or value.prefix or value.suffix)
            ):
                self.expression(value_node)
                return _Const(value)
        path = self.resolve(value_node)
        self.expression(value_node)
        if path is not None:
            return path
        return ("local", name)

    def return_statement(self, node: Node) -> None:
        values = [c for c in node.named_children if c.type == "expression_list"]
        exprs = values[0].named_children if values else []
        for expr in exprs:
            self.expression(expr)
        if self.func != FILE_LEVEL:
            cheap = len(exprs) == 1 and exprs[0].type in _SCALAR_EXPRESSIONS
            value: Value = (
                self.evaluator.eval(exprs[0]) if cheap else Unknown(self.index.span(node), "")
            )
            self._returned.setdefault(self.func, []).append(value)
        if self.func == FILE_LEVEL and exprs:
            first = exprs[0]
            self.facts.returns = self.resolve(first)
            if first.type == "identifier":
                self.facts.returns_table = self._text(first)

    def comment(self, node: Node) -> None:
        span = self.index.span(node)
        standalone = self.index.starts_line(node.start_byte)
        self.facts.comments.append(
            Comment(span.line, span.column, span.end_line, self._text(node), standalone)
        )

    # ----- expressions -----------------------------------------------------------------------------
    def expression(self, node: Node) -> None:
        """Walk an expression for calls, nested functions, comments and member uses (iteratively)."""
        stack = [node]
        while stack:
            current = stack.pop()
            kind = current.type
            if kind == "function_call":
                self.call(current, stack)
            elif kind == "function_definition":
                self.define_function(current, None)
            elif kind == "comment":
                self.comment(current)
            elif kind in ("dot_index_expression", "method_index_expression"):
                path = self.resolve(current)
                if path is not None and path[0] in ("kumo", "require"):
                    self.facts.members.append(MemberUse(path, self.index.span(current), self.func))
                table = current.child_by_field_name("table")
                if table is not None:
                    stack.append(table)
            elif current.child_count and kind != "string":  # a string holds no code
                stack.extend(reversed(current.named_children))

    def call(self, node: Node, stack: list[Node]) -> None:
        callee_node = node.child_by_field_name("name")
        args_node = node.child_by_field_name("arguments")
        args = _call_args(node)
        callee = self.resolve(callee_node) if callee_node is not None else None
        method = callee_node is not None and callee_node.type == "method_index_expression"
        arg_values: list[Value] = []
        arg_refs: list[FieldPath | None] = []
        # calls that leave a local table as it is (or change it in a way followed here)
        inserted = callee in _READ_ONLY or (callee == _TABLE_INSERT and self._table_insert(args))
        for arg in args:
            if arg.type == "function_definition":
                arg_values.append(Unknown(self.index.span(arg), "function"))
                arg_refs.append(("fn", self.define_function(arg, None)))
                continue
            arg_values.append(self.evaluator.eval(arg))
            arg_refs.append(self.resolve(arg) if arg.type != "table_constructor" else None)
            stack.append(arg)
            if (
                arg.type == "identifier"
                and (callee is None or callee[:1] != ("kumo",))
                and not inserted
            ):
                bound = self.scope.lookup(self._text(arg))
                if isinstance(bound, _Const) and isinstance(bound.value, Table):
                    self.scope_assign(self._text(arg), ("local", self._text(arg)))
        if callee is not None:
            variants = self._per_element(args, arg_values) if callee[:1] == ("kumo",) else None
            for values in variants or [arg_values]:
                self.facts.calls.append(
                    CallFact(
                        callee=callee,
                        text=self._text(callee_node) if callee_node is not None else "",
                        args=values,
                        arg_refs=arg_refs,
                        span=self.index.span(node),
                        name_span=self.index.span(callee_node)
                        if callee_node is not None
                        else self.index.span(node),
                        func=self.func,
                        method=method,
                        # the body of a loop over a known, non-empty list runs
                        in_condition=self.conditional > (1 if variants else 0),
                    )
                )
        if callee_node is not None:
            if callee_node.type in ("dot_index_expression", "method_index_expression"):
                table = callee_node.child_by_field_name("table")
                if table is not None:
                    stack.append(table)
            elif callee_node.type != "identifier":
                stack.append(callee_node)
        if args_node is not None:
            for child in args_node.named_children:
                if child.type == "comment":
                    self.comment(child)

    # ----- top level -------------------------------------------------------------------------------
    def chunk(self, root: Node) -> None:
        for child in root.named_children:
            self._resolved.clear()
            if child.type != "comment":
                self.facts.statements.append(
                    Statement(
                        child.type, self.index.span(child), _range(child), _label(self.index, child)
                    )
                )
            self.statement(child)


def _concat_text(value: Lit) -> str | None:
    return value.value if isinstance(value.value, str) else None


def _loop_element(values: list[Value]) -> Value | None:
    """What is known of a loop variable in every iteration: the value itself when there is one,
    else the prefix and suffix the string values share."""
    if not all(isinstance(v, Lit) for v in values):
        return None
    if len(values) == 1:
        return values[0]
    texts = [v.value for v in values if isinstance(v, Lit) and isinstance(v.value, str)]
    if len(texts) != len(values):
        return None
    prefix = _common_prefix(texts)
    suffix = _common_prefix([t[::-1] for t in texts])[::-1]
    return Unknown(values[0].span, "loop element", prefix, suffix)


def _common_prefix(texts: list[str]) -> str:
    first = min(texts)
    last = max(texts)
    n = 0
    while n < len(first) and first[n] == last[n]:
        n += 1
    return first[:n]


def _call_args(call: Node) -> list[Node]:
    args_node = call.child_by_field_name("arguments")
    if args_node is None:
        return []
    if args_node.type in ("string", "table_constructor"):
        return [args_node]
    named = [c for c in args_node.named_children if c.type != "comment"]
    if (
        not named
        and args_node.child_count == 1
        and args_node.children[0].type in ("string", "table_constructor")
    ):
        return [args_node.children[0]]
    return named


_LEXEMES = lazy(
    r"""--\[(=*)\[.*?\]\1\]|--[^\n]*|\[(=*)\[.*?\]\2\]|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'""",
    re.DOTALL,
)
_SPACE_AROUND_PUNCT = lazy(r"\s*([^\w\s])\s*")
_SPACES = lazy(r"\s+")


def normalized(code: str) -> str:
    """Lua code without comments and formatting: equal for two texts that differ only in layout."""
    out: list[str] = []
    pending: list[str] = []  # code (and comments turned into spaces) since the last string literal
    last = 0
    for match in _LEXEMES.finditer(code):
        pending.append(code[last : match.start()])
        lexeme = match.group(0)
        if lexeme.startswith("--"):
            pending.append(" ")
        else:
            out.append(_squeeze("".join(pending)))
            out.append(lexeme)
            pending = []
        last = match.end()
    pending.append(code[last:])
    out.append(_squeeze("".join(pending)))
    return "\x00".join(out)


def _squeeze(code: str) -> str:
    return _SPACE_AROUND_PUNCT.sub(r"\1", _SPACES.sub(" ", code)).strip()


def digest_of(source: bytes, byte_range: tuple[int, int]) -> str:
    """Layout-independent hash of a byte range of a file (a statement or a function body)."""
    code = source[byte_range[0] : byte_range[1]].decode("utf-8", "replace")
    return hashlib.sha1(normalized(code).encode()).hexdigest()


def _range(node: Node | None) -> tuple[int, int]:
    return (node.start_byte, node.end_byte) if node is not None else (0, 0)


def _label(index: LineIndex, node: Node) -> str:
    text = index.head(node, 400).split("\n", 1)[0].strip()
    return text if len(text) <= 80 else text[:77] + "..."


# Per-file budget: the extraction is linear, but a file of more syntax nodes than this (a 5 MB
# one-liner of 750,000 statements) would still keep a user waiting for minutes. Ordinary code has
# 0.2-0.4 nodes per byte, so a 100,000-line file stays well inside it.
MAX_SYNTAX_NODES = 1_500_000


MAX_TOKENS = 1_000_000  # checked before parsing (tree-sitter takes seconds on a million tokens)
_WORD_BYTES = bytes(range(48, 58)) + bytes(range(65, 91)) + bytes(range(97, 123)) + b"_"
_AS_WORDS = bytes.maketrans(
    bytes(range(256)), bytes(0x61 if b in _WORD_BYTES or b >= 0x80 else 0x20 for b in range(256))
)
_NOT_PUNCT = _WORD_BYTES + bytes(range(0x80, 0x100)) + b" \t\r\n\f\v"


def estimated_tokens(source: bytes) -> int:
    """Words plus punctuation characters, counted at C speed (an upper bound of Lua's tokens,
    close to it outside comments and strings)."""
    words = len(source.translate(_AS_WORDS).split())
    punctuation = len(source.translate(None, _NOT_PUNCT))
    return words + punctuation


class TooComplex(Exception):
    """A file over the per-file budget: reported as a file that cannot be audited (E102)."""


def extract(source: bytes) -> FileFacts:
    """Parse `source` (UTF-8 Lua) and extract its facts; TooComplex over the per-file budget."""
    from auditor.lua.syntax import parse

    tokens = estimated_tokens(source)
    if tokens > MAX_TOKENS:
        raise TooComplex(
            f"has about {tokens:,} tokens, over the per-file budget of {MAX_TOKENS:,}: "
            "too large to audit; split it into modules"
        )
    tree = parse(source)
    nodes = tree.root_node.descendant_count
    if nodes > MAX_SYNTAX_NODES:
        raise TooComplex(
            f"has {nodes:,} syntax nodes, over the per-file budget of {MAX_SYNTAX_NODES:,}: "
            "too large to audit; split it into modules"
        )
    extractor = _Extractor(source)
    extractor.facts.has_error = tree.root_node.has_error
    # Extraction allocates many small objects and frees none of them: the cyclic collector would
    # rescan them all again and again (time growing with the square of the file's size).
    collecting = gc.isenabled()
    gc.disable()
    try:
        extractor.chunk(tree.root_node)
        extractor.facts.secret_strings = _secret_strings(extractor.index, tree.root_node)
    finally:
        if collecting:
            gc.enable()
    return extractor.facts


def _secret_strings(index: LineIndex, root: Node) -> list[SecretString]:
    from auditor.core.secrets import may_hold_secrets, secret_reason
    from auditor.lua.literal import decode_string
    from auditor.lua.syntax import captures

    out: list[SecretString] = []
    if not may_hold_secrets(index.source_text()):
        return out
    for node in reversed(captures(root, "(string) @s")):  # last first: the order findings keep
        value = decode_string(index.text(node))
        name = _bound_name(index, node)
        reason = secret_reason(name, value)
        if reason:
            content = next((c for c in node.named_children if c.type == "string_content"), None)
            out.append(SecretString(index.span(node), name, reason, index.text(content), value))
    return out


def _bound_name(index: LineIndex, node: Node) -> str | None:
    """The variable or field name a string literal is bound to (`x = 'v'`, `{ x = 'v' }`)."""
    parent = node.parent
    if parent is None:
        return None
    if parent.type == "field":
        name = parent.child_by_field_name("name")
        return index.text(name) if name is not None and name.type == "identifier" else None
    if parent.type == "expression_list" and parent.parent is not None:
        assign = parent.parent
        if assign.type != "assignment_statement":
            return None
        names = next((c for c in assign.named_children if c.type == "variable_list"), None)
        if names is None:
            return None
        values = [c.id for c in parent.named_children if c.type != "comment"]
        position = values.index(node.id)
        # Lua 5.4 attributes (`local a <const>, b = ...`) sit among the names but bind nothing
        targets = [c for c in names.named_children if c.type not in ("attribute", "comment")]
        if position >= len(targets):
            return None
        target = targets[position]
        if target.type == "identifier":
            return index.text(target)
        if target.type == "dot_index_expression":
            field_node = target.child_by_field_name("field")
            return index.text(field_node) if field_node is not None else None
    return None
