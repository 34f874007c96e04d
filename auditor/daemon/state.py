"""The daemon's state on disk: one JSON file replaced atomically (write, fsync, rename, fsync dir).

A decision is made durable in two steps: its *intent* (what was decided, the entry to record, the
release to promote) is written before anything visible happens, and cleared after the last step. A
daemon restarted after a crash finishes an intent it finds (each step is idempotent) instead of
deciding again, so no decision is lost or recorded twice.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from auditor.daemon.fsio import write_durable

VERSION = 1
SEEN_LIMIT = 500


@dataclass
class State:
    live_release: str | None = None
    live_rev: str | None = None
    promoted_at: str | None = None
    last_verdict: dict[str, Any] | None = None
    pending: str | None = None
    drift: dict[str, Any] | None = None
    last_bump: dict[str, Any] | None = None
    intent: dict[str, Any] | None = None
    seen: dict[str, str] = field(default_factory=dict)  # candidate id -> decision
    held: str | None = None
    skip: list[str] = field(default_factory=list)  # candidate ids a rollback stepped back from
    unpushed: bool = False
    answered: list[str] = field(default_factory=list)  # control request ids already handled
    counts: dict[str, int] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # promotions, newest last
    validation: dict[str, str] | None = None  # how kumod --validate sees the live path

    def remember(self, candidate: str, decision: str) -> None:
        self.seen.pop(candidate, None)
        self.seen[candidate] = decision
        while len(self.seen) > SEEN_LIMIT:
            self.seen.pop(next(iter(self.seen)))

    def count(self, decision: str) -> None:
        self.counts[decision] = self.counts.get(decision, 0) + 1


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> State:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return State()
        except (OSError, ValueError) as exc:
            from auditor.core.errors import AuditError

            raise AuditError(f"daemon state {self.path} is unreadable: {exc}") from None
        data.pop("version", None)
        known = State.__dataclass_fields__
        return State(**{k: v for k, v in data.items() if k in known})

    def save(self, state: State) -> None:
        data = {"version": VERSION, **asdict(state)}
        write_durable(self.path, json.dumps(data, indent=1, sort_keys=True).encode() + b"\n", 0o600)
