"""The change set: a semantic diff of two audited states, each changed element with its reload impact.

Lua is compared per function (by a stable identity: its name, the event it handles, or its place among
its parent's anonymous functions) and per top-level statement, on layout-independent digests, so
reformatting and comments are `none`. Data files are compared per key path of their parsed values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auditor.core.findings import Finding, Severity
from auditor.core.impacts import (
    BLOCKED,
    EPOCH,
    MEANING,
    NONE,
    RESTART,
    TTL,
    UNMONITORED,
    Element,
    strongest,
)
from auditor.core.secrets import Redactor, is_marker, repository_salt, secrets_in_text
from auditor.data.locate import render_path
from auditor.kumo.model import FILE, DataRef, PolicyModel
from auditor.kumo.monitor import MonitorGlobs, monitor_globs
from auditor.lua.facts import FILE_LEVEL, FunctionDef, digest_of, normalized

if TYPE_CHECKING:
    from auditor.pipeline.stages import AuditResult

RESTART_PHASES = {"init", "pre_init"}


@dataclass(frozen=True, slots=True)
class ValueChange:
    """One key path of a data file whose value changed (`before`/`after` None when absent)."""

    path: str  # data file
    key: tuple[Any, ...]
    before: Any
    after: Any
    line: int

    def label(self) -> str:
        return f"{self.path} {render_path(self.key)}" if self.key else self.path


@dataclass
class ChangeSet:
    elements: list[Element] = field(default_factory=list)
    value_changes: list[ValueChange] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    introduced: list[Finding] = field(default_factory=list)
    resolved: list[Finding] = field(default_factory=list)
    shaping: list[dict[str, Any]] = field(default_factory=list)  # effective shaping that changed

    @property
    def impact(self) -> str:
        return strongest([e.impact for e in self.elements])

    def reload_dict(self) -> dict[str, Any]:
        return {
            "impact": self.impact,
            "meaning": MEANING[self.impact],
            "elements": [e.as_dict() for e in self.elements],
        }


def short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."


class _Side:
    """One audited state, indexed for comparison."""

    def __init__(self, result: AuditResult | None) -> None:
        self.result = result
        self.model: PolicyModel | None = result.context.model if result else None
        self.texts: dict[str, str] = result.context.texts if result else {}
        self.data: dict[str, Any] = result.context.data if result else {}
        self.snapshot = result.context.snapshot if result else None
        self.globs: MonitorGlobs | None = monitor_globs(self.model) if self.model else None

    def content_id(self, path: str) -> str | None:
        return self.snapshot.content_id(path) if self.snapshot is not None else None

    def functions(self, module: str) -> dict[str, tuple[FunctionDef, str]]:
        """Function identity -> (definition, shell digest) for one module."""
        if self.model is None or module not in self.model.modules:
            return {}
        mod = self.model.modules[module]
        source = mod.text.encode("utf-8")
        handler_of = {
            h.function[1]: h.event
            for h in self.model.handlers
            if h.function and h.function[0] == module and h.origin == "policy"
        }
        keys: dict[int, str] = {}
        anonymous: dict[tuple[int, str], int] = {}
        out: dict[str, tuple[FunctionDef, str]] = {}
        children: dict[int, list[FunctionDef]] = {}
        for fn in mod.facts.functions:
            children.setdefault(fn.parent, []).append(fn)
        for fn in mod.facts.functions:
            parent_key = keys.get(fn.parent, "") if fn.parent != FILE_LEVEL else ""
            if fn.id in handler_of:
                base = f"handler {handler_of[fn.id]}"
            elif fn.name:
                base = f"function {fn.name}"
            else:
                base = "anonymous function"
            key = f"{parent_key} > {base}" if parent_key else base
            n = anonymous.get((fn.parent, key), 0)
            anonymous[(fn.parent, key)] = n + 1
            if n:
                key = f"{key} #{n + 1}"
            keys[fn.id] = key
            holes = [c.body for c in children.get(fn.id, [])]
            out[key] = (fn, shell_digest(source, fn.body, holes))
        return out

    def statements(self, module: str) -> list[tuple[str, str, int]]:
        """(shell digest, label, line) of each top-level statement, function bodies cut out."""
        if self.model is None or module not in self.model.modules:
            return []
        mod = self.model.modules[module]
        source = mod.text.encode("utf-8")
        top_functions = [f.body for f in mod.facts.functions if f.parent == FILE_LEVEL]
        out = []
        for st in mod.facts.statements:
            holes = [
                b for b in top_functions if st.byte_range[0] <= b[0] and b[1] <= st.byte_range[1]
            ]
            out.append((shell_digest(source, st.byte_range, holes), st.label, st.span.line))
        return out


def shell_digest(source: bytes, byte_range: tuple[int, int], holes: list[tuple[int, int]]) -> str:
    """Digest of a range with nested function bodies cut out (they are compared on their own)."""
    if not holes:
        return digest_of(source, byte_range)
    pieces: list[bytes] = []
    pos = byte_range[0]
    for start, end in sorted(holes):
        if start < pos:
            continue
        pieces.append(source[pos:start])
        pieces.append(b" function-body ")
        pos = end
    pieces.append(source[pos : byte_range[1]])
    joined = b"".join(pieces)
    return digest_of(joined, (0, len(joined)))


def compute(base: AuditResult | None, head: AuditResult) -> ChangeSet:
    before, after = _Side(base), _Side(head)
    change = ChangeSet()
    scrub = Scrubber(base, head)
    broken = unloadable(head)
    old_modules = set(before.model.modules) if before.model else set()
    for path in sorted(old_modules | set(after.model.modules) | broken):  # type: ignore[union-attr]
        if (
            before.content_id(path) == after.content_id(path)
            and before.content_id(path) is not None
        ):
            continue
        change.changed_files.append(path)
        if path in broken:
            reason = "KumoMTA cannot load this file in the new state"
            change.elements.append(Element(f"file {path}", path, 1, BLOCKED, reason))
            continue
        change.elements.extend(_lua_elements(path, before, after, scrub))
    change.elements.extend(_data_elements(before, after, change, scrub))
    change.elements.extend(_unreferenced_files(before, after, change))
    change.shaping = _shaping_effects(base, head, change)
    _findings_delta(base, head, change)
    if any(f.severity is Severity.ERROR and not f.suppressed for f in head.findings):
        errors = sum(1 for f in head.findings if f.severity is Severity.ERROR and not f.suppressed)
        change.elements.append(
            Element(
                "new state",
                head.entry,
                1,
                BLOCKED,
                f"the new state has {errors} error finding{'s' if errors != 1 else ''}: "
                "KumoMTA would fail to load or misbehave",
            )
        )
    return scrub.change(change)


# ----- secrets ------------------------------------------------------------------------------------------


class Scrubber:
    """Replaces every secret of either state by a marker with a salted digest.

    Values are redacted by key name and shape; then every secret value found in either state (as
    rule S106 finds them, including literals an auth handler compares with) is replaced wherever it
    occurs in a label, a reason or a value, and so is a secret that the text itself shows (a token,
    `password=...` inside a string), so no renderer or runbook entry can show one."""

    def __init__(self, base: AuditResult | None, head: AuditResult) -> None:
        from auditor.rules.security import secret_values

        found: set[str] = set()
        for result in (base, head):
            if result is not None:
                ctx = result.context
                found |= secret_values(ctx.model, ctx.data, ctx.api)
        snapshot = head.context.snapshot
        root = getattr(snapshot, "repo", None) or getattr(snapshot, "root", None)
        self.redactor = Redactor(lambda: repository_salt(root))
        self.found = found
        self.long = {v for v in found if len(v) >= 4}
        self.quoted = {f"{q}{v}{q}" for v in found if 0 < len(v) < 4 for q in "'\""}

    def text(self, text: str) -> str:
        in_text = secrets_in_text(text)  # a token or `password=...` inside a string or a comment
        if in_text:
            text = self.redactor.text(text, in_text)
        if not self.found:
            return text
        text = self.redactor.text(text, self.long)
        for q in self.quoted:
            if q in text:
                text = text.replace(q, f"{q[0]}{self.redactor.marker(q[1:-1])}{q[0]}")
        return text

    def value(self, value: Any, key: object = None) -> Any:
        value = self.redactor.value(value, key)
        if isinstance(value, str):
            return self.redactor.marker(value) if value in self.found else self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, key) for v in value]
        return value

    def change(self, change: ChangeSet) -> ChangeSet:
        change.elements = [
            Element(self.text(e.element), e.path, e.line, e.impact, self.text(e.reason))
            for e in change.elements
        ]
        change.value_changes = [
            ValueChange(
                v.path,
                v.key,
                self.value(v.before, v.key[-1] if v.key else None),
                self.value(v.after, v.key[-1] if v.key else None),
                v.line,
            )
            for v in change.value_changes
        ]
        change.shaping = [
            {
                **target,
                "changes": [
                    {
                        **c,
                        "before": self.value(c["before"], c["key"]),
                        "after": self.value(c["after"], c["key"]),
                    }
                    for c in target["changes"]
                ],
            }
            for target in change.shaping
        ]
        return change


# ----- Lua ----------------------------------------------------------------------------------------------


def _lua_elements(path: str, before: _Side, after: _Side, scrub: Scrubber) -> Iterator[Element]:
    old_text = before.texts.get(path)
    new_text = after.texts.get(path)
    if new_text is None and after.model is not None and path not in after.model.modules:
        line = 1
        yield Element(
            f"module {path}",
            path,
            line,
            _lua_file_impact(path, after, EPOCH),
            "the file is no longer loaded by the policy",
        )
        return
    if (
        old_text is not None
        and new_text is not None
        and normalized(old_text) == normalized(new_text)
    ):
        yield Element(f"file {path}", path, 1, NONE, "comments or formatting only")
        return
    old_fns, new_fns = before.functions(path), after.functions(path)
    for key in sorted(set(old_fns) | set(new_fns)):
        old, new = old_fns.get(key), new_fns.get(key)
        if old and new and old[1] == new[1]:
            continue
        side, (fn, _) = (after, new) if new else (before, old)  # type: ignore[misc]
        contexts = side.model.contexts_of(path, fn.id) if side.model else frozenset()
        verb = "adds" if old is None else "removes" if new is None else "edits"
        impact, why = _context_impact(contexts, key, after, path)
        yield Element(key, path, fn.span.line, impact, f"{verb} {key}; {why}")
    old_st = {d: (label, line) for d, label, line in before.statements(path)}
    new_st = {d: (label, line) for d, label, line in after.statements(path)}
    file_contexts = after.model.contexts_of(path, FILE_LEVEL) if after.model else frozenset()
    for digest in sorted(set(new_st) - set(old_st), key=lambda d: new_st[d][1]):
        label, line = new_st[digest]
        label = scrub.text(label)
        impact, why = _context_impact(
            file_contexts or frozenset({FILE}), "top-level code", after, path
        )
        yield Element(f"statement `{label}`", path, line, impact, f"changes top-level code; {why}")
    for digest in sorted(set(old_st) - set(new_st), key=lambda d: old_st[d][1]):
        label, line = old_st[digest]
        if any(lbl == label for lbl, _ in new_st.values()):
            continue  # the same statement, edited: reported above as its new form
        label = scrub.text(label)
        impact, why = _context_impact(
            file_contexts or frozenset({FILE}), "top-level code", after, path
        )
        yield Element(f"statement `{label}`", path, 1, impact, f"removes top-level code; {why}")


def _context_impact(contexts: frozenset[str], what: str, side: _Side, path: str) -> tuple[str, str]:
    phases = {c for c in contexts if c in RESTART_PHASES}
    if phases:
        which = " and ".join(sorted(phases))
        return RESTART, (
            f"it runs in {which}, which KumoMTA runs once at start-up (listeners, spools, logging, "
            "thread pools): the change needs a kumod restart"
        )
    if not contexts:
        return _lua_file_impact(path, side, EPOCH), "nothing calls it yet"
    where = ", ".join(sorted(c if c != FILE else "the policy's top level" for c in contexts))
    impact = _lua_file_impact(path, side, EPOCH)
    if impact == UNMONITORED:
        return (
            impact,
            f"it runs in {where}, but this file is not covered by the config monitor globs",
        )
    return (
        impact,
        f"it runs in {where}; new Lua contexts pick it up at the next configuration epoch",
    )


def _lua_file_impact(path: str, side: _Side, default: str) -> str:
    if side.model is None or side.globs is None:
        return default
    deployed = side.model.path_map.to_deployed(path)
    if deployed is None:
        return default
    return UNMONITORED if side.globs.covers(deployed) is False else default


# ----- data files ---------------------------------------------------------------------------------------


def _refs_by_path(model: PolicyModel | None) -> dict[str, list[DataRef]]:
    out: dict[str, list[DataRef]] = {}
    for ref in model.data_refs if model else []:
        if ref.tree_path:
            out.setdefault(ref.tree_path, []).append(ref)
    return out


def _data_elements(
    before: _Side, after: _Side, change: ChangeSet, scrub: Scrubber
) -> Iterator[Element]:
    old_refs, new_refs = _refs_by_path(before.model), _refs_by_path(after.model)
    for path in sorted(set(old_refs) | set(new_refs)):
        if before.content_id(path) == after.content_id(path):
            continue
        change.changed_files.append(path)
        refs = new_refs.get(path) or old_refs.get(path) or []
        impact, why = _data_impact(path, refs, after)
        old_value = getattr(before.data.get(path), "value", None)
        new_value = getattr(after.data.get(path), "value", None)
        located = getattr(after.data.get(path), "located", None)
        diffs = list(diff_values(old_value, new_value))
        if not diffs:
            text_old, text_new = before.texts.get(path), after.texts.get(path)
            if text_old is not None and text_new is not None:
                yield Element(f"file {path}", path, 1, NONE, "comments or formatting only")
                continue
            yield Element(f"file {path}", path, 1, impact, why)
            continue
        for key, old, new in diffs:
            line = _line_of(located, key)
            vc = ValueChange(path, key, old, new, line)
            change.value_changes.append(vc)
            last = key[-1] if key else None
            old, new = scrub.value(old, last), scrub.value(new, last)
            if old is not None and new is not None and (is_marker(old) or is_marker(new)):
                text = f"value changed ({short(old)} -> {short(new)})"
                yield Element(f"{vc.label()} {text}", path, line, impact, why)
                continue
            text = (
                f"{short(old)} -> {short(new)}"
                if old is not None and new is not None
                else (f"added {short(new)}" if old is None else f"removed (was {short(old)})")
            )
            yield Element(f"{vc.label()} {text}", path, line, impact, why)


def _line_of(located: Any, key: tuple[Any, ...]) -> int:
    if located is None:
        return 1
    while key:
        try:
            return int(located.key_span(key).line)
        except (KeyError, IndexError, AttributeError, ValueError):
            key = key[:-1]
    return 1


def _data_impact(path: str, refs: list[DataRef], side: _Side) -> tuple[str, str]:
    contexts = frozenset().union(*(r.contexts for r in refs)) if refs else frozenset()
    loaders = ", ".join(sorted({r.loader for r in refs})) or "the policy"
    if contexts and contexts <= RESTART_PHASES:
        return (
            RESTART,
            f"read by {loaders} only during start-up ({', '.join(sorted(contexts))}): needs a restart",
        )
    deployed = side.model.path_map.to_deployed(path) if side.model else None
    covered = side.globs.covers(deployed) if side.globs and deployed else None
    if covered is False:
        return UNMONITORED, (
            f"read by {loaders}, but not covered by the config monitor globs: KumoMTA will not notice "
            "the edit until the epoch is bumped (POST /api/admin/bump-config-epoch)"
        )
    ttl_only = [r for r in refs if r.data_format and not _invalidates_with_epoch(r, side)]
    if ttl_only:
        return TTL, (
            f"read by {loaders}, whose cache is not invalidated by a new epoch: live when the cache "
            "entry expires"
        )
    return EPOCH, f"read by {loaders}; live at the next configuration epoch (about 10 s)"


def _invalidates_with_epoch(ref: DataRef, side: _Side) -> bool:
    if side.model is None:
        return True
    for setup in side.model.helper_setups:
        if ref in setup.data:
            default = setup.helper.invalidate_with_epoch
            options = setup.options
            flag = options.get("invalidate_with_epoch") if options is not None else None
            value = getattr(flag, "value", None)
            return value if isinstance(value, bool) else default
    return True


def diff_values(
    old: Any, new: Any, key: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], Any, Any]]:
    """Key paths whose values differ; tables are descended, other values compared whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new), key=str):
            if k not in new:
                yield (*key, k), old[k], None
            elif k not in old:
                yield (*key, k), None, new[k]
            else:
                yield from diff_values(old[k], new[k], (*key, k))
    elif old != new:
        yield key, old, new


def _unreferenced_files(before: _Side, after: _Side, change: ChangeSet) -> Iterator[Element]:
    """Data-looking files that changed but that the new policy does not load (no effect)."""
    if after.snapshot is None:
        return
    loaded = set(_refs_by_path(after.model)) | set(after.model.modules if after.model else ())
    loaded |= set(change.changed_files)  # reported already (a file that no longer loads)
    old_files = set(before.snapshot.files()) if before.snapshot else set()
    for path in sorted(set(after.snapshot.files()) | old_files):
        if path in loaded or not path.endswith((".toml", ".json", ".lua", ".yaml")):
            continue
        if path.endswith("kumo-audit.toml") or path.endswith("pyproject.toml"):
            continue
        if before.content_id(path) == after.content_id(path):
            continue
        change.changed_files.append(path)
        yield Element(
            f"file {path}", path, 1, NONE, "not loaded by the policy: the edit has no effect"
        )


MAX_SHAPING_TARGETS = 25


def _shaping_effects(
    base: AuditResult | None, head: AuditResult, change: ChangeSet
) -> list[dict[str, Any]]:
    """Effective shaping, before and after, of each destination (and source) whose section changed."""
    formats = {r.tree_path: r.data_format for r in head.context.model.data_refs if r.tree_path}
    if base is not None:
        formats.update(
            {r.tree_path: r.data_format for r in base.context.model.data_refs if r.tree_path}
        )
    targets: dict[tuple[str, str | None], None] = {}
    for vc in change.value_changes:
        if formats.get(vc.path) != "shaping" or not vc.key:
            continue
        section = vc.key[0]
        if section in ("default", "provider") or not isinstance(section, str):
            domains = _shaping_domains(head) or []
        else:
            domains = [section]
        sources: list[str | None] = [None]
        if len(vc.key) > 2 and vc.key[1] == "sources":
            sources = [str(vc.key[2])]
        elif len(vc.key) == 2 and vc.key[1] == "sources":  # the whole sources table came or went
            tables = [v for v in (vc.before, vc.after) if isinstance(v, dict)]
            sources = sorted({str(name) for table in tables for name in table}) or [None]
        for domain in domains:
            for source in sources:
                targets[(domain, source)] = None
    if not targets:
        return []
    from auditor.data.effective_shaping import effective_shaping

    out: list[dict[str, Any]] = []
    for domain, source in list(targets)[:MAX_SHAPING_TARGETS]:
        old = {s.key: s for s in effective_shaping(base.context, domain, source)} if base else {}
        new = {s.key: s for s in effective_shaping(head.context, domain, source)}
        diffs = [
            {
                "key": key,
                "before": old[key].value if key in old else None,
                "after": new[key].value if key in new else None,
                "origin": (new.get(key) or old[key]).origin,
            }
            for key in sorted(set(old) | set(new))
            if (old[key].value if key in old else None) != (new[key].value if key in new else None)
        ]
        if diffs:
            out.append({"domain": domain, "source": source, "changes": diffs})
    return out


def _shaping_domains(result: AuditResult) -> list[str]:
    """Destination sections named in the policy's shaping files (for changes to defaults/providers)."""
    names: list[str] = []
    for ref in result.context.model.data_refs:
        value = getattr(result.context.data.get(ref.tree_path or ""), "value", None)
        if ref.data_format == "shaping" and isinstance(value, dict):
            names += [k for k in value if k not in ("default", "provider") and k not in names]
    return names


def _findings_delta(base: AuditResult | None, head: AuditResult, change: ChangeSet) -> None:
    old = {f.fingerprint for f in base.findings if not f.suppressed} if base else set()
    new = {f.fingerprint for f in head.findings if not f.suppressed}
    change.introduced = [f for f in head.findings if not f.suppressed and f.fingerprint not in old]
    change.resolved = (
        [f for f in base.findings if not f.suppressed and f.fingerprint not in new] if base else []
    )


__all__ = ["TTL", "ChangeSet", "ValueChange", "compute", "diff_values"]


LOAD_ERRORS = ("E101", "E102", "E105")


def unloadable(result: AuditResult) -> set[str]:
    """Lua files of a state that KumoMTA could not load: their model is incomplete."""
    lua = set(result.context.model.modules) | {result.entry}
    return {
        f.path
        for f in result.findings
        if f.code in LOAD_ERRORS and (f.path in lua or f.path.endswith(".lua"))
    }
