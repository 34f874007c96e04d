"""Runbook entries for the daemon's decisions, named by host, and pushed to the shared remote.

Every entry carries the decision's id in `reload.daemon.decision`, so a daemon restarted after a crash
can tell whether the entry of an unfinished decision was already written (then it is not written again).
Pushes retry with backoff; one that still fails is retried on the next loop (the state remembers it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.core.errors import AuditError
from auditor.daemon.config import DaemonConfig

TIDY_EVERY = 64  # entries between two `git gc --auto` of the runbook repository


@dataclass
class ValidatorDigest:
    """A `kumod --validate` run as kept in the state: exit code and output digest, never the output."""

    exit_code: int
    output_sha256: str
    command: str | None = None

    def result(self):  # type: ignore[no-untyped-def]
        from auditor.runbook.model import ValidatorResult

        return ValidatorResult(
            command=self.command, exit_code=self.exit_code, output_sha256=self.output_sha256
        )


class Recorder:
    def __init__(self, cfg: DaemonConfig, repo: Path | None, host: str) -> None:
        from auditor.runbook.model import Actor
        from auditor.runbook.store import open_store

        self.cfg = cfg
        self.host = host
        self.repo = cfg.runbook.repo or repo
        if cfg.runbook.dir is None and self.repo is None:
            raise AuditError("a watch source needs [runbook] repo or dir for its entries")
        self.store = open_store(self.repo, cfg.runbook.branch, cfg.runbook.dir)
        self.actor = Actor(
            name=f"kumo-audit@{host}", email=None, kind="daemon", resolved_by="host-identity"
        )
        # the writer id kept with the writing store (created once), as for every other writer
        from auditor.runbook.identity import resolve_writer
        from auditor.runbook.store import GitStore

        if isinstance(self.store, GitStore):
            self.writer = resolve_writer(self.actor, host, repo=self.store.repo)
        else:
            self.writer = resolve_writer(
                self.actor, host, repo=self.repo, directory=getattr(self.store, "root", None)
            )
        # the signing key is the one configured when the daemon starts (not looked up per entry)
        from auditor.runbook.record import signing_key_for

        self.signing_key = signing_key_for(self.store, self.repo, None) or False
        self._recorded = 0

    def record(self, decision_id: str, decision: str, **draft: Any):  # type: ignore[no-untyped-def]
        from auditor.kumo.api import load_api
        from auditor.rules.registry import ruleset_hash
        from auditor.runbook.record import EntryDraft, record

        reload = dict(draft.pop("reload", None) or {"impact": "none", "elements": []})
        reload["daemon"] = {**reload.get("daemon", {}), "decision": decision_id}
        entry_draft = EntryDraft(
            decision=decision,
            reload=reload,
            api_table_version=load_api().release,
            ruleset_hash=ruleset_hash(),
            environment=self.cfg.runbook.environment,
            actor=self.actor,
            host=self.host,
            writer=self.writer,
            **draft,
        )
        entry = record(self.store, entry_draft, repo=self.repo, signing_key=self.signing_key)
        self._recorded += 1
        if self._recorded % TIDY_EVERY == 0:
            tidy = getattr(self.store, "tidy", None)  # a Git store: pack what recording left
            if tidy is not None:
                tidy()
        return entry

    def find(self, decision_id: str, since: str) -> str | None:
        """The id of an entry of this writer recorded for `decision_id` (at or after `since`)."""
        from auditor.runbook.markdown import EntryFormatError, parse_entry_file

        state = self.store.state()
        summaries = self.store.summaries(state)
        names = [
            n
            for n, front in summaries.items()
            if front.get("writer") == self.writer and str(front.get("recorded_at", "")) >= since
        ]
        for _name, blob in self.store.read(state, names).items():
            try:
                record = parse_entry_file(blob).record
            except EntryFormatError:
                continue
            daemon = ((record.get("reload") or {}).get("daemon")) or {}
            if daemon.get("decision") == decision_id:
                return str(record.get("id"))
        return None

    @property
    def pushes(self) -> bool:
        return bool(self.cfg.runbook.remote) and self.cfg.runbook.dir is None

    def push(self, sleep: Callable[[float], object] = time.sleep) -> str | None:
        """Push the runbook branch; None on success, else the last error."""
        if not self.pushes:
            return None
        from auditor.runbook.store import GitStore
        from auditor.runbook.sync import push

        assert isinstance(self.store, GitStore) and self.cfg.runbook.remote
        delay = 0.2
        error = None
        for attempt in range(self.cfg.runbook.push_attempts):
            try:
                push(self.store, self.cfg.runbook.remote)
                return None
            except AuditError as exc:
                error = str(exc)
            except Exception as exc:  # git failures surface as their own error types
                error = f"{type(exc).__name__}: {exc}"
            if attempt + 1 < self.cfg.runbook.push_attempts:
                sleep(delay)
                delay = min(delay * 2, 5.0)
        return " ".join((error or "push failed").split())[:300]
