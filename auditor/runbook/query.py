"""`runbook history` and `runbook show`: select entries by their name and front matter.

Time range and decision are read from file names; other filters from front matter (cached by blob id
in a Git store), and full records are parsed only for the entries selected.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from auditor.core.errors import AuditError
from auditor.runbook.markdown import EntryFormatError, parse_entry_file
from auditor.runbook.model import ENTRY_NAME_RE
from auditor.runbook.store import Store, StoreState


@dataclass(frozen=True)
class Filters:
    since: str | None = None  # stored timestamp form, inclusive
    until: str | None = None  # inclusive
    decisions: Sequence[str] = ()
    actor: str | None = None
    file: str | None = None
    code: str | None = None
    host: str | None = None  # exact name or glob
    writer: str | None = None  # exact id or glob

    def needs_front_matter(self) -> bool:
        return any((self.actor, self.file, self.code, self.host, self.writer))


@dataclass(frozen=True)
class Match:
    name: str
    front: dict[str, Any] = field(default_factory=dict)


def name_fields(name: str) -> tuple[str, str] | None:
    """(decided_at, decision) encoded in an entry file name."""
    m = ENTRY_NAME_RE.match(name)
    if not m:
        return None
    s = m[3]
    return f"{s[0:10]}T{s[11:13]}:{s[13:15]}:{s[15:17]}Z", m[4]


def select(store: Store, filters: Filters, state: StoreState | None = None) -> list[Match]:
    """Entries matching every filter, oldest decision first."""
    state = state or store.state()
    candidates: list[tuple[str, str]] = []
    for name in state.names:
        fields = name_fields(name)
        if fields is None:
            continue
        decided_at, decision = fields
        if filters.since and decided_at < filters.since:
            continue
        if filters.until and decided_at > filters.until:
            continue
        if filters.decisions and decision not in filters.decisions:
            continue
        candidates.append((decided_at, name))
    candidates.sort()
    names = [name for _, name in candidates]
    if not names:
        return []
    sub = StoreState(state.token, {n: state.names[n] for n in names})
    fronts = store.summaries(sub)
    return [
        Match(n, fronts[n])
        for n in names
        if "_error" not in fronts[n] and _keep(fronts[n], filters)
    ]


def _keep(front: dict[str, Any], f: Filters) -> bool:
    if f.host and not _glob(str(front.get("host", "")), f.host):
        return False
    if f.writer and not _glob(str(front.get("writer", "")), f.writer):
        return False
    if f.actor and f.actor.lower() not in str(front.get("actor", "")).lower():
        return False
    if f.code and f.code.upper() not in front.get("codes", []):
        return False
    return not (f.file and not any(_file_matches(path, f.file) for path in front.get("files", [])))


def _glob(value: str, pattern: str) -> bool:
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(value, pattern)
    return value == pattern


def _file_matches(path: str, pattern: str) -> bool:
    pattern = pattern.strip("/")
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(path, pattern)
    return path == pattern or path.startswith(pattern + "/")


def records(
    store: Store, matches: list[Match], state: StoreState | None = None
) -> list[dict[str, Any]]:
    """Full machine records of the matched entries (unreadable ones are skipped: `verify` names them)."""
    state = state or store.state()
    data = store.read(state, [m.name for m in matches])
    out = []
    for m in matches:
        try:
            out.append(parse_entry_file(data[m.name]).record)
        except EntryFormatError:
            continue
    return out


def find(store: Store, prefix: str) -> tuple[str, bytes]:
    """The entry whose id starts with `prefix` (at least 4 hex digits): its name and file bytes."""
    prefix = prefix.strip().lower()
    if len(prefix) < 4 or any(c not in "0123456789abcdef" for c in prefix):
        raise AuditError(f"entry id {prefix!r}: give at least 4 hex digits of the id")
    state = store.state()
    # The short id is part of the name: narrow by name before reading front matter.
    names = [n for n in state.names if _short_id_matches(n, prefix)]
    sub = StoreState(state.token, {n: state.names[n] for n in names})
    fronts = store.summaries(sub)
    hits = sorted(n for n in names if str(fronts[n].get("id", "")).startswith(prefix))
    if not hits:
        raise AuditError(f"no runbook entry with id {prefix} in {store.description}")
    if len(hits) > 1:
        raise AuditError(
            f"entry id {prefix} is ambiguous: {len(hits)} entries match; give more digits"
        )
    return hits[0], store.read(state, hits)[hits[0]]


def _short_id_matches(name: str, prefix: str) -> bool:
    m = ENTRY_NAME_RE.match(name)
    if not m:
        return False
    return m[5].startswith(prefix) if len(prefix) < len(m[5]) else prefix.startswith(m[5])
