"""`runbook verify`: re-derive every entry and every writer's hash chain; name what is wrong.

Per file: the name must follow the entry pattern (`forged` otherwise), the record must parse and
validate (`unreadable`/`invalid`), its hash and id must match its content (`edited`), its name must
be the one the record implies (`renamed`), and the bytes must equal a fresh rendering of the record
(`prose-edited`: the Markdown around the record was changed).
Per writer chain: every `prev_hash` must name an entry of the same writer (`deleted` when it names
nothing, `forged` when another writer), a writer has one first entry and no entry has two successors
(`forged`), and `recorded_at` never goes backwards along the chain (`reordered`).
For a Git store, the branch history must only ever add entry files (`history`: an entry was changed or
deleted by a later commit, which also catches deleting the newest entry of a chain).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from auditor.runbook.gitutil import git
from auditor.runbook.identity import LEGACY_WRITER_RE
from auditor.runbook.markdown import EntryFormatError, parse_entry_file, render_entry
from auditor.runbook.model import ENTRY_NAME_RE, Entry
from auditor.runbook.store import ENTRIES_DIR, GitStore, Store


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # edited | prose-edited | renamed | deleted | reordered | forged | unreadable | invalid | history
    name: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "detail": self.detail}


@dataclass
class VerifyReport:
    entries: int = 0
    writers: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "writers": self.writers,
            "problems": [p.as_dict() for p in self.problems],
            "notes": list(self.notes),
        }


def verify_store(store: Store) -> VerifyReport:
    state = store.state()
    names = sorted(state.names)
    data = store.read(state, names)
    report = VerifyReport(entries=len(names))
    entries: dict[str, Entry] = {}
    for name in names:
        entry = _check_file(name, data[name], report.problems)
        if entry is not None:
            entries[name] = entry
    _check_chains(entries, report)
    if isinstance(store, GitStore) and state.token:
        _check_history(store, state.token, report)
    report.problems.sort(key=lambda p: (p.name, p.kind, p.detail))
    return report


def _check_file(name: str, blob: bytes, problems: list[Problem]) -> Entry | None:
    if not ENTRY_NAME_RE.match(name):
        problems.append(
            Problem(
                "forged",
                name,
                "not a runbook entry name (entries/YYYY/MM/<time>-<decision>-<id>.md)",
            )
        )
        return None
    try:
        parsed = parse_entry_file(blob)
    except EntryFormatError as exc:
        problems.append(Problem("unreadable", name, str(exc)))
        return None
    try:
        entry = Entry.model_validate(parsed.record)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "record"
        problems.append(Problem("invalid", name, f"record field {where}: {error['msg']}"))
        return None
    computed = entry.computed_hash()
    if computed != entry.hash or entry.id != entry.hash[: len(entry.id)]:
        problems.append(
            Problem("edited", name, f"record content does not match its hash {entry.hash[:16]}")
        )
        return entry
    expected = entry.file_name()
    if expected != name:
        problems.append(Problem("renamed", name, f"the record belongs in {expected}"))
    rendered = render_entry(entry)
    if rendered != blob:
        problems.append(
            Problem(
                "prose-edited",
                name,
                f"Markdown differs from its record at line {_first_diff(rendered, blob)}",
            )
        )
    return entry


def _first_diff(a: bytes, b: bytes) -> int:
    for number, (x, y) in enumerate(zip(a.split(b"\n"), b.split(b"\n"), strict=False), start=1):
        if x != y:
            return number
    return min(a.count(b"\n"), b.count(b"\n")) + 1


def _check_chains(entries: dict[str, Entry], report: VerifyReport) -> None:
    problems = report.problems
    by_hash: dict[str, str] = {}
    for name, entry in entries.items():
        if entry.hash in by_hash:
            problems.append(Problem("forged", name, f"same hash as {by_hash[entry.hash]}"))
            continue
        by_hash[entry.hash] = name
    writers: dict[str, list[str]] = {}
    successors: dict[tuple[str, str | None], list[str]] = {}
    known_ids = {e.id for e in entries.values()}
    for name, entry in entries.items():
        writers.setdefault(entry.writer, []).append(name)
        successors.setdefault((entry.writer, entry.prev_hash), []).append(name)
        if entry.supersedes and entry.supersedes not in known_ids:
            problems.append(
                Problem("deleted", name, f"supersedes entry {entry.supersedes}, which is missing")
            )
        if entry.prev_hash is None:
            continue
        prev_name = by_hash.get(entry.prev_hash)
        if prev_name is None:
            problems.append(
                Problem(
                    "deleted",
                    name,
                    f"previous entry {entry.prev_hash[:16]} of writer {entry.writer} is missing",
                )
            )
            continue
        prev = entries[prev_name]
        if prev.writer != entry.writer:
            problems.append(
                Problem("forged", name, f"links to {prev_name}, an entry of writer {prev.writer}")
            )
        elif prev.recorded_at > entry.recorded_at:
            problems.append(
                Problem(
                    "reordered",
                    name,
                    f"recorded {entry.recorded_at}, before its predecessor {prev_name} ({prev.recorded_at})",
                )
            )
    shared: set[str] = set()
    for (writer, prev_hash), names in successors.items():
        if len(names) < 2:
            continue
        if LEGACY_WRITER_RE.match(writer):
            # Older tools gave every clone of one host the same writer id: its chains may fork.
            shared.add(writer)
            continue
        ordered = sorted(names, key=lambda n: (entries[n].recorded_at, n))
        what = (
            "first entries"
            if prev_hash is None
            else f"successors of {by_hash.get(prev_hash, prev_hash[:16])}"
        )
        for extra in ordered[1:]:
            problems.append(
                Problem("forged", extra, f"writer {writer} has several {what}: also {ordered[0]}")
            )
    report.writers = len(writers)
    for writer in sorted(shared):
        report.notes.append(
            f"writer id {writer} (older per-host form) was shared by several stores; "
            "each of its chains verified on its own"
        )


def _check_history(store: GitStore, head: str, report: VerifyReport) -> None:
    """Entry files must only ever be added on the branch: list later changes and deletions."""
    out = git(
        store.repo,
        "log",
        "--format=%x01%H",
        "--name-status",
        "--no-renames",
        "--diff-merges=first-parent",
        "--diff-filter=MDT",
        head,
        "--",
        f"{ENTRIES_DIR}/",
    )
    commit = ""
    for line in out.splitlines():
        if line.startswith("\x01"):
            commit = line[1:]
        elif "\t" in line:
            status, path = line.split("\t", 1)
            verb = {"M": "changed", "D": "deleted", "T": "changed"}.get(status[0], "changed")
            report.problems.append(
                Problem("history", path, f"{verb} after it was written, in commit {commit[:12]}")
            )
