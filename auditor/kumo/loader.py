"""Loading stage: read Lua files from a snapshot, compile them, extract facts, build the policy model.

Every file problem becomes a finding (E101, E102, E104, E105) and the rest of the tree is still
audited. A file that does not compile contributes no facts: its other findings would be noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field

from auditor.core.findings import Finding, Severity, Span
from auditor.core.lazyre import lazy
from auditor.core.load_codes import LUA_SYNTAX_ERROR, MISSING_FILE, UNREADABLE_FILE
from auditor.core.record import dataclass
from auditor.kumo.api import KumoApi
from auditor.kumo.model import ModelBuilder, PolicyModel, builtin_modules
from auditor.kumo.paths import PathMap
from auditor.lua.facts import FileFacts
from auditor.source.snapshot import FileProblem, Snapshot

LUA_STDLIB = frozenset(
    {"string", "table", "math", "io", "os", "coroutine", "utf8", "package", "debug"}
)
# modules kumod registers natively in package.loaded (K:crates/config/src/lib.rs get_or_create_module)
KUMOD_NATIVE_MODULES = frozenset({"kumo", "sqlite", "redis"})

FactsCache = Callable[[str, str, Callable[[], object]], object]


@dataclass(slots=True)
class ParsedLua:
    """What the loading stage keeps of one Lua file version (cacheable by content id)."""

    facts: FileFacts | None
    error: tuple[int, int, str] | None  # line, column, message of a syntax error
    too_complex: str | None = None  # why the file is over the per-file budget (E102)


@dataclass
class LoadResult:
    """A loaded policy model, the findings of loading it, and the texts read."""

    model: PolicyModel
    findings: list[Finding] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # decoded text of every file read


BOM = "\ufeff"
_LUA_LINE_BREAK = lazy(r"\r\n?|\n\r")


def lua_newlines(text: str) -> str:
    """`text` with each of Lua's line breaks written as "\\n".

    Lua's lexer ends a line at "\\n", "\\r", "\\r\\n" or "\\n\\r" (llex.c, inclinenumber), while
    tree-sitter counts "\\n" only: in a file saved with bare carriage returns, every position after
    the first one would be on the wrong line. Lua reads the result exactly as the original (it
    writes a line break inside a long string as "\\n" too), so compiling and parsing it agree with
    kumod, and every finding is on the line Lua (and an editor) shows."""
    if "\r" not in text:
        return text
    return _LUA_LINE_BREAK.sub("\n", text)


class NotUtf8(FileProblem):
    """A file that is not UTF-8 text, where UTF-8 is required."""


def decode_text(path: str, data: bytes, size_limit: int) -> str:
    """UTF-8 text of a policy file, or FileProblem with the reason it cannot be audited."""
    if len(data) > size_limit:
        raise FileProblem(
            path, f"is {len(data):,} bytes, over the size limit of {size_limit:,} bytes"
        )
    if b"\0" in data[:8192]:
        raise FileProblem(path, "is a binary file, not Lua or data text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise NotUtf8(
            path, f"is not valid UTF-8 (byte 0x{data[exc.start]:02x} on line {line})"
        ) from None


def parse_lua(text: str, path: str, raw: bytes | None = None) -> ParsedLua:
    """Compile with Lua 5.4 (authoritative) and extract facts with tree-sitter. `raw` is the file's
    bytes when they are not UTF-8: Lua compiles those, the facts come from `text`."""
    from auditor.lua.compile import compile_lua
    from auditor.lua.facts import TooComplex, extract

    error = compile_lua(text if raw is None else raw, path)
    if error is not None:
        column = _error_column(text, error.line)
        return ParsedLua(None, (error.line, column, error.message))
    try:
        return ParsedLua(extract(text.encode("utf-8")), None)
    except TooComplex as exc:
        return ParsedLua(None, None, str(exc))


def _error_column(text: str, line: int) -> int:
    from auditor.lua.syntax import LineIndex, error_on_line, parse

    source = text.encode("utf-8")
    tree = parse(source)
    node = error_on_line(tree, line - 1)
    if node is None:
        return 1
    return LineIndex(source).column(node.start_point[0], node.start_point[1])


class PolicyLoader:
    def __init__(
        self,
        snapshot: Snapshot,
        entry: str,
        path_map: PathMap,
        api: KumoApi,
        cached: FactsCache | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.entry = entry
        self.path_map = path_map
        self.api = api
        self.cached = cached
        self.findings: list[Finding] = []
        self.texts: dict[str, str] = {}
        # Lua file that is not UTF-8 -> (where its first such byte is, its bytes)
        self.not_utf8: dict[str, tuple[str, bytes]] = {}

    def read_text(self, path: str) -> str | None:
        """Text of a Lua file, or None after reporting E102 (or nothing when the file is absent).

        Lua's file loader (`require`, `dofile`) reads bytes, so a module may hold other encodings
        in its strings and comments (a Latin-1 comment): each invalid sequence is read as U+FFFD,
        which Lua accepts where the byte was accepted (strings, comments) and refuses elsewhere.
        Only the policy entry must be UTF-8 (see `load`)."""
        if path in self.texts:
            return self.texts[path]
        try:
            data = self.snapshot.read(path)
            try:
                text = decode_text(path, data, self.snapshot.size_limit)
            except NotUtf8 as problem:
                self.not_utf8[path] = (problem.reason, data)
                text = data.decode("utf-8", errors="replace")
            text = lua_newlines(text)
        except FileNotFoundError:
            return None
        except FileProblem as problem:
            self._unreadable(path, f"{path} {problem.reason}")
            self.texts[path] = None  # type: ignore[assignment]
            return None
        self.texts[path] = text
        return text

    def _load_lua(self, path: str) -> tuple[FileFacts, str] | None:
        text = self.read_text(path)
        if text is None:
            return None
        if text.startswith(BOM):
            text = self._bom(path, text)
        content_id = self.snapshot.content_id(path) or ""
        raw = self.not_utf8[path][1] if path in self.not_utf8 else None
        if raw is not None and raw.startswith(BOM.encode()):
            raw = raw[len(BOM.encode()) :]  # as `text`, which the BOM check above stripped
        if self.cached is not None and content_id:
            parsed = self.cached("lua", content_id, lambda: parse_lua(text, path, raw))
        else:
            parsed = parse_lua(text, path, raw)
        assert isinstance(parsed, ParsedLua)
        if parsed.too_complex is not None:
            self.findings.append(
                UNREADABLE_FILE.finding(
                    path, Span.point(1, 1), f"{path} {parsed.too_complex}", key=path
                )
            )
            return None
        if parsed.error is not None:
            line, column, message = parsed.error
            self.findings.append(
                LUA_SYNTAX_ERROR.finding(
                    path, Span.point(line, column), message, key=f"{path}:{message}"
                )
            )
            return None
        assert parsed.facts is not None
        return parsed.facts, text

    def _bom(self, path: str, text: str) -> str:
        """A UTF-8 byte order mark: Lua's file loader (require) skips it, but kumod reads the entry
        file as a string and hands it to load(), which does not: the policy fails to load."""
        if path == self.entry:
            self.findings.append(
                LUA_SYNTAX_ERROR.finding(
                    path,
                    Span.point(1, 1),
                    "the file starts with a UTF-8 byte order mark (BOM, bytes EF BB BF): kumod reads "
                    "the policy entry file as text and compiles it with Lua's load(), which does not "
                    "skip a BOM, so every Lua context fails with \"unexpected symbol near '<\\239>'\"; "
                    "save the file as UTF-8 without a BOM (modules loaded by require may keep one)",
                    key=f"{path}:byte-order-mark",
                )
            )
        return text[1:]

    def load(self, mode_of: Callable[[PolicyModel], str] | None = None) -> LoadResult:
        """Build the model; `mode_of` tells the audit mode from it ("policy" or "module"), which
        decides how a missing module is reported."""
        builder = ModelBuilder(
            self.entry, self.path_map, self.api, self._load_lua, self.snapshot.exists
        )
        model = builder.build()
        if mode_of is not None:
            model.mode = mode_of(model)
        if model.mode == "policy" and self.entry in self.not_utf8:
            self._unreadable(
                self.entry,
                f"{self.entry} {self.not_utf8[self.entry][0]}: kumod reads the policy entry file as "
                "UTF-8 text and fails to load it (modules loaded by require may hold other bytes "
                "in strings and comments); save it as UTF-8",
            )
        self.findings.extend(model.load_findings)
        self._missing_modules(model)
        self._symlinks_outside()
        return LoadResult(
            model, self.findings, {k: v for k, v in self.texts.items() if v is not None}
        )

    def _missing_modules(self, model: PolicyModel) -> None:
        builtin = builtin_modules(self.api)  # `require 'sqlite'`, `require 'redis'`, ...
        for edge in model.requires:
            if edge.target is not None or edge.helper is not None:
                continue
            if edge.name in KUMOD_NATIVE_MODULES:
                continue
            if (
                edge.name in LUA_STDLIB
                or edge.name in builtin
                or edge.name.startswith("policy-extras.")
            ):
                continue
            searched = (
                "searched KumoMTA's package.path mapped into the tree, and the policy's directory"
            )
            if model.mode == "module":
                # a module (or snippet) alone: the tree it is deployed with is not the audited one
                self.findings.append(
                    MISSING_FILE.finding(
                        edge.module,
                        edge.span,
                        f"module '{edge.name}' is not in the audited tree ({searched}); this file is "
                        "audited as a module on its own, so whether require finds it depends on the "
                        "policy tree the module is deployed with",
                        key=f"module:{edge.name}",
                        severity=Severity.WARNING,
                    )
                )
                continue
            self.findings.append(
                MISSING_FILE.finding(
                    edge.module,
                    edge.span,
                    f"module '{edge.name}' is not in the audited tree ({searched}): require raises "
                    "'module not found' when a Lua context is created",
                    key=f"module:{edge.name}",
                )
            )

    def _symlinks_outside(self) -> None:
        for problem in self.snapshot.problems():
            self._unreadable(
                problem.path, f"{problem.path} {problem.reason}; it is not followed or audited"
            )

    def _unreadable(self, path: str, message: str) -> None:
        """One E102 per file, however many ways its problem is met."""
        if any(f.code == "E102" and f.path == path for f in self.findings):
            return
        self.findings.append(UNREADABLE_FILE.finding(path, Span.point(1, 1), message, key=path))
