"""Upgrade evaluation: what a jump from one KumoMTA release to another changes for one policy.

Reads the policy model and data files of an audit, the generated version table (release ranges of
every function, parameter, event and helper member) and the breaking-change records
(``auditor/kumo/breaking.toml``), and lists, at file:line, what the policy uses that the target
release removes or deprecates, the breaking changes that touch it, the defaults that change for
settings it leaves unset, and the changes no static match can find (the manual-review list).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from auditor.core.errors import ConfigError
from auditor.kumo.versions import MAINLINE, VersionTable, load_versions, replacement

VERDICTS = ("safe", "review", "needs-changes")
# item kinds, in report order; `change` items need an edit, `review` items a look
KINDS = (
    "removed",
    "event-removed",
    "member-removed",
    "param-removed",
    "param-strict",
    "breaking",
    "deprecated",
    "default",
)


@dataclass(frozen=True, order=True)
class Item:
    path: str
    line: int
    column: int
    kind: str
    subject: str
    message: str
    severity: str  # "change" or "review"
    release: str = ""
    replacement: str = ""
    link: str = ""
    change_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BreakingChange:
    id: str
    release: str
    summary: str
    link: str
    effect: str
    action: str
    match: dict[str, tuple[str, ...]]
    manual: bool

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["match"] = {k: list(v) for k, v in self.match.items()}
        return data


@dataclass
class UpgradeReport:
    from_release: str
    to_release: str
    crossed: list[str]
    items: list[Item] = field(default_factory=list)
    manual: list[BreakingChange] = field(default_factory=list)
    breaking_in_range: int = 0

    @property
    def verdict(self) -> str:
        if any(i.severity == "change" for i in self.items):
            return "needs-changes"
        if self.items or self.manual:
            return "review"
        return "safe"

    def counts(self) -> dict[str, int]:
        return {
            "items": len(self.items),
            "change": sum(1 for i in self.items if i.severity == "change"),
            "review": sum(1 for i in self.items if i.severity == "review"),
            "manual": len(self.manual),
            "breaking_changes_crossed": self.breaking_in_range,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "from_release": self.from_release,
            "to_release": self.to_release,
            "releases_crossed": self.crossed,
            "verdict": self.verdict,
            "counts": self.counts(),
            "items": [i.as_dict() for i in self.items],
            "manual_review": [c.as_dict() for c in self.manual],
        }


_MATCH_KINDS = frozenset(
    {"uses", "params", "unset", "sets", "args", "events", "helpers", "members", "methods", "data"}
)


@functools.cache
def breaking_changes() -> tuple[BreakingChange, ...]:
    """The breaking-change records, validated (a malformed record is a ConfigError)."""
    import tomllib

    from auditor.kumo.versions import _package_file

    raw = tomllib.loads(_package_file("breaking.toml").decode("utf-8"))
    table = load_versions()
    out = []
    for rec in raw.get("change", []):
        match = rec.get("match", {})
        unknown = set(match) - _MATCH_KINDS
        if unknown or rec.get("release") not in table.releases:
            raise ConfigError(f"breaking change {rec.get('id')!r}: bad release or matcher")
        manual = bool(rec.get("manual", False))
        if manual == bool(match) or rec.get("effect", "review" if manual else "") not in (
            "change",
            "review",
        ):
            raise ConfigError(f"breaking change {rec.get('id')!r}: needs a matcher xor manual")
        out.append(
            BreakingChange(
                id=rec["id"],
                release=rec["release"],
                summary=rec["summary"],
                link=rec["link"],
                effect=rec.get("effect", "review"),
                action=rec.get("action", ""),
                match={k: tuple(v) for k, v in match.items()},
                manual=manual,
            )
        )
    return tuple(out)


def resolve_jump(from_release: str, to_release: str) -> tuple[str, str]:
    table = load_versions()
    old, new = table.resolve(from_release), table.resolve(to_release)
    if table.index(new) < table.index(old):
        raise ConfigError(f"--to {new} is older than --from {old}: only upgrades are evaluated")
    return old, new


def evaluate(model: Any, data: dict[str, Any], from_release: str, to_release: str) -> UpgradeReport:
    """The upgrade report for a policy model (and its parsed data files) and a release jump."""
    table = load_versions()
    old, new = resolve_jump(from_release, to_release)
    crossed = [r for r in table.releases if table.between(r, old, new)]
    report = UpgradeReport(old, new, crossed)
    items: set[Item] = set()
    items.update(_api_items(model, table, old, new))
    in_range = [c for c in breaking_changes() if table.between(c.release, old, new)]
    report.breaking_in_range = len(in_range)
    for change in in_range:
        if change.manual:
            report.manual.append(change)
            continue
        for path, line, column, what, kind in _matches(model, data, change.match):
            items.add(
                Item(
                    path,
                    line,
                    column,
                    "default" if kind == "unset" else "breaking",
                    what,
                    change.summary,
                    change.effect,
                    change.release,
                    change.action,
                    change.link,
                    change.id,
                )
            )
    report.items = sorted(items, key=lambda i: (i.path, i.line, i.column, KINDS.index(i.kind)))
    return report


# ----- the policy's use of the API, against the release ranges -----------------------------------


def _kumo_uses(model: Any) -> Iterator[tuple[str, tuple[object, ...], Any, Any]]:
    """(module, path, span, call site or None) for calls and member reads rooted in kumo/require."""
    for site in model.calls:
        callee = site.call.callee
        if callee and callee[0] in ("kumo", "require"):
            yield site.module, callee, site.call.name_span, site
    for module, mod in model.modules.items():
        for use in mod.facts.members:
            if use.path and use.path[0] in ("kumo", "require"):
                yield module, use.path, use.span, None


def _function_name(table: VersionTable, path: tuple[object, ...]) -> str | None:
    for end in range(len(path), 1, -1):
        parts = path[:end]
        if all(isinstance(p, str) and p != "()" for p in parts):
            name = ".".join(parts)  # type: ignore[arg-type]
            if name in table.functions:
                return name
    return None


def _api_items(model: Any, table: VersionTable, old: str, new: str) -> Iterator[Item]:
    for module, path, span, site in _kumo_uses(model):
        if path[0] == "require":
            yield from _member_items(table, module, path, span, old, new)
            continue
        name = _function_name(table, path)
        if name is None:
            continue
        entry = table.functions[name]
        if table.present(entry, old) and not table.present(entry, new):
            repl = replacement(name)
            yield Item(
                module,
                span.line,
                span.column,
                "removed",
                name,
                f"{name} is removed in {entry['removed']}" + (f"; use {repl}" if repl else ""),
                "change",
                entry["removed"],
                repl,
            )
            continue
        if table.between(entry.get("deprecated", ""), old, new):
            repl = replacement(name)
            yield Item(
                module,
                span.line,
                span.column,
                "deprecated",
                name,
                f"{name} is deprecated in {entry['deprecated']}"
                + (f"; use {repl}" if repl else ""),
                "review",
                entry["deprecated"],
                repl,
            )
        if site is not None and path == tuple(name.split(".")):
            yield from _param_items(table, name, entry, site, old, new)


def _param_items(
    table: VersionTable, name: str, entry: dict[str, Any], site: Any, old: str, new: str
) -> Iterator[Item]:
    literal = site.table_arg(0)
    if literal is None:
        return
    ranges = entry.get("params", {})
    passed = dict(literal.fields())
    strict_now = table.between(entry.get("strict_since", ""), old, new)
    for key, field_entry in passed.items():
        span = field_entry.key_span or field_entry.value.span
        rng = ranges.get(key)
        if rng is not None and table.present(rng, old) and not table.present(rng, new):
            yield Item(
                site.module,
                span.line,
                span.column,
                "param-removed",
                f"{name}:{key}",
                f"{name} no longer takes '{key}' in {rng['removed']}",
                "change",
                rng["removed"],
            )
        elif strict_now and (rng is None or not table.present(rng, new)):
            yield Item(
                site.module,
                span.line,
                span.column,
                "param-strict",
                f"{name}:{key}",
                f"{name} rejects unknown keys from {entry['strict_since']}: '{key}' becomes an error",
                "change",
                entry["strict_since"],
            )
    if literal.has_unknown_keys:
        return
    for key, rng in ranges.items():
        if key in passed or not table.present(rng, new):
            continue
        for change in rng.get("default_changed", ()):
            if table.between(change["release"], old, new):
                yield Item(
                    site.module,
                    site.call.span.line,
                    site.call.span.column,
                    "default",
                    f"{name}:{key}",
                    f"'{key}' is not set here: its default changes from {change['from']} "
                    f"to {change['to']} in {change['release']}",
                    "review",
                    change["release"],
                )


def _member_items(
    table: VersionTable, module: str, path: tuple[object, ...], span: Any, old: str, new: str
) -> Iterator[Item]:
    if len(path) < 3 or not isinstance(path[1], str):
        return
    key = path[1].replace("/", ".").removeprefix("policy-extras.")
    helper = table.helpers.get(key)
    if helper is None:
        return
    members = helper.get("members", {})
    for index in (2, 4):
        if len(path) <= index or not isinstance(path[index], str):
            continue
        member = path[index]
        rng = members.get(member)
        if rng and table.present(rng, old) and not table.present(rng, new):
            yield Item(
                module,
                span.line,
                span.column,
                "member-removed",
                f"{key}:{member}",
                f"{member} is no longer a member of the {key} helper in {rng['removed']}",
                "change",
                rng["removed"],
            )


# ----- breaking-change matchers ------------------------------------------------------------------


def _split(spec: str, sep: str) -> tuple[str, str]:
    left, _, right = spec.partition(sep)
    return left, right


def _literal(value: Any) -> object:
    if value is None or getattr(value, "is_unknown", True):
        return None
    try:
        return value.py()
    except (AttributeError, TypeError, ValueError):
        return None


def _same(literal: object, wanted: str) -> bool:
    if isinstance(literal, bool):
        return str(literal).lower() == wanted
    return literal is not None and str(literal) == wanted


def _matches(
    model: Any, data: dict[str, Any], match: dict[str, tuple[str, ...]]
) -> Iterator[tuple[str, int, int, str, str]]:
    """(path, line, column, what matched, matcher kind) for every place a record's matcher hits."""
    uses = set(match.get("uses", ()))
    if uses:
        for module, path, span, _site in _kumo_uses(model):
            for end in range(len(path), 1, -1):
                name = ".".join(str(p) for p in path[:end])
                if name in uses:
                    yield module, span.line, span.column, name, "uses"
                    break
    by_function: dict[str, list[Any]] = {}
    for kind in ("params", "unset", "sets", "args"):
        for spec in match.get(kind, ()):
            fn = spec.split(":")[0].split("#")[0]
            by_function.setdefault(fn, []).append((kind, spec))
    for fn, specs in by_function.items():
        for site in model.calls_to(fn):
            call = site.call
            for kind, spec in specs:
                if kind == "args":
                    target, value = _split(spec, "=")
                    index = int(target.partition("#")[2]) - 1
                    if index < len(call.args) and _same(_literal(call.args[index]), value):
                        arg_span = call.args[index].span
                        yield site.module, arg_span.line, arg_span.column, spec, kind
                    continue
                literal = site.table_arg(0)
                if literal is None:
                    continue
                param, _, value = spec.partition(":")[2].partition("=")
                entry = literal.entry(param)
                if kind == "unset":
                    if entry is None and not literal.has_unknown_keys:
                        yield site.module, call.span.line, call.span.column, f"{fn}:{param}", kind
                elif entry is not None and (
                    kind == "params" or _same(_literal(entry.value), value)
                ):
                    span = entry.key_span or entry.value.span
                    yield site.module, span.line, span.column, f"{fn}:{param}", kind
    events = set(match.get("events", ()))
    for handler in model.handlers:
        if handler.event in events and handler.origin == "policy":
            span = handler.event_span
            yield handler.module, span.line, span.column, handler.event, "events"
    helpers = set(match.get("helpers", ()))
    for setup in model.helper_setups:
        if setup.helper.key in helpers:
            span = setup.site.call.name_span
            yield (
                setup.site.module,
                span.line,
                span.column,
                f"{setup.helper.key}:{setup.method}",
                "helpers",
            )
    members = {tuple(m.split(":", 1)) for m in match.get("members", ())}
    if members:
        for module, path, span, _site in _kumo_uses(model):
            if path[0] != "require" or len(path) < 3 or not isinstance(path[1], str):
                continue
            key = path[1].replace("/", ".").removeprefix("policy-extras.")
            for index in (2, 4):
                if len(path) > index and (key, path[index]) in members:
                    yield module, span.line, span.column, f"{key}:{path[index]}", "members"
    methods = set(match.get("methods", ()))
    if methods:
        for site in model.calls:
            callee = site.call.callee
            if site.call.method and callee and callee[-1] in methods:
                span = site.call.name_span
                yield site.module, span.line, span.column, str(callee[-1]), "methods"
    for spec in match.get("data", ()):
        fmt, _, rest = spec.partition(":")
        key, _, value = rest.partition("=")
        yield from _data_matches(model, data, fmt, key, value, spec)


def _data_matches(
    model: Any, data: dict[str, Any], fmt: str, key: str, value: str, spec: str
) -> Iterator[tuple[str, int, int, str, str]]:
    seen: set[str] = set()
    for ref in model.data_refs:
        if ref.data_format != fmt or not ref.tree_path or ref.tree_path in seen:
            continue
        seen.add(ref.tree_path)
        result = data.get(ref.tree_path)
        if result is None or result.value is None:
            continue
        for keys in _key_paths(result.value, key, value, ()):
            line, column = 1, 1
            if result.located is not None:
                try:
                    span = result.located.key_span(keys)
                    line, column = span.line, span.column
                except (KeyError, IndexError, ValueError, TypeError):
                    pass
            yield ref.tree_path, line, column, spec, "data"


def _key_paths(
    node: object, key: str, value: str, prefix: tuple[object, ...]
) -> Iterator[tuple[object, ...]]:
    if isinstance(node, dict):
        for k, v in node.items():
            here = (*prefix, k)
            if k == key and (not value or _same(v, value)):
                yield here
            else:
                yield from _key_paths(v, key, value, here)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _key_paths(v, key, value, (*prefix, i))


__all__ = [
    "MAINLINE",
    "VERDICTS",
    "BreakingChange",
    "Item",
    "UpgradeReport",
    "breaking_changes",
    "evaluate",
    "resolve_jump",
]
