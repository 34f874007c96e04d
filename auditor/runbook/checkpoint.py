"""Checkpoints: signed entries naming the head of every writer's chain (like a signed tree head).

`write_checkpoint` writes one now; `maybe_checkpoint` writes one when the configured cadence is due
(every N entries since the last checkpoint, or the first recording of a UTC day), for `ci --record`
and the daemon. A checkpoint is always signed: without a signing key, none is written.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.runbook.model import Entry, format_timestamp, now_timestamp
from auditor.runbook.record import EntryDraft, SigningChoice, record, signing_key_for
from auditor.runbook.store import Store


def write_checkpoint(
    store: Store,
    *,
    repo: Path | None = None,
    now: datetime | None = None,
    signing_key: SigningChoice = None,
    why: str | None = None,
    actor_kind: str | None = None,
) -> Entry:
    """Record a signed checkpoint of every writer's chain head in `store`."""
    draft = EntryDraft(decision="checkpoint", why=why, checkpoint=True, actor_kind=actor_kind)  # type: ignore[arg-type]
    return record(store, draft, repo=repo, now=now, signing_key=signing_key)


def due(store: Store, every: int, daily: bool, now: datetime | None = None) -> str | None:
    """Why a checkpoint is due under this cadence (None when it is not)."""
    if every <= 0 and not daily:
        return None
    fronts = store.summaries(store.state())
    points = [f for f in fronts.values() if f.get("decision") == "checkpoint" and "checkpoint" in f]
    latest: dict[str, Any] | None = (
        max(points, key=lambda f: f.get("recorded_at", "")) if points else None
    )
    today = (format_timestamp(now) if now else now_timestamp())[:10]
    if daily and (latest is None or str(latest.get("recorded_at", ""))[:10] < today):
        return "first recording of the day"
    if every > 0:
        covered = int(latest["checkpoint"]) + 1 if latest else 0  # its entries and itself
        added = len(fronts) - covered
        if added >= every:
            return f"{added} entries since the last checkpoint"
    return None


def maybe_checkpoint(
    store: Store,
    *,
    every: int = 0,
    daily: bool = False,
    repo: Path | None = None,
    now: datetime | None = None,
    signing_key: SigningChoice = None,
    actor_kind: str | None = None,
) -> Entry | None:
    """Write a checkpoint if the cadence says one is due and a signing key is configured."""
    if signing_key_for(store, repo, signing_key) is None:
        return None
    reason = due(store, every, daily, now)
    if reason is None:
        return None
    return write_checkpoint(
        store, repo=repo, now=now, signing_key=signing_key, why=reason, actor_kind=actor_kind
    )
