"""The writing API: turn decision drafts into sealed, chained entries and add them to a store.

Only what the draft names is stored, and only in its recorded form: findings through
`Finding.as_dict()`, changed files as blob ids, validator output as a SHA-256 digest. File contents,
validator output and finding keys never reach an entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from auditor import __version__
from auditor.core.errors import AuditError
from auditor.core.findings import Finding
from auditor.runbook.gitinfo import DEFAULT_TICKET_PATTERN, approvals_from, tickets_in
from auditor.runbook.identity import resolve_actor, resolve_host, resolve_writer
from auditor.runbook.markdown import render_entry
from auditor.runbook.model import (
    Actor,
    ActorKind,
    Approval,
    Change,
    Commit,
    Entry,
    Evidence,
    Link,
    Rollback,
    SuppressionUse,
    ValidatorResult,
    Why,
    format_timestamp,
    now_timestamp,
    parse_moment,
)
from auditor.runbook.signing import SigningKey, configured_key, message, sign
from auditor.runbook.store import GitStore, Store, StoreConflict

MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class ValidatorRun:
    """An external validator's result; only the digest of `output` is recorded."""

    exit_code: int
    output: bytes | str = b""
    command: str | None = None

    def result(self) -> ValidatorResult:
        data = self.output.encode("utf-8") if isinstance(self.output, str) else self.output
        return ValidatorResult(
            command=self.command,
            exit_code=self.exit_code,
            output_sha256=hashlib.sha256(data).hexdigest(),
        )


@dataclass
class EntryDraft:
    """What a caller knows about a decision; `record` fills in identity, time, chain and hashes."""

    decision: str
    summary: str | None = None
    why: str | None = None
    commits: Sequence[Commit] = ()
    tickets: Sequence[str] = ()
    ticket_pattern: str = DEFAULT_TICKET_PATTERN
    change: Change | None = None
    reload: Mapping[str, Any] | None = None
    findings: Sequence[Finding] = ()
    approvals: Sequence[Approval] = ()
    validator: ValidatorRun | None = None
    api_table_version: str | None = None
    ruleset_hash: str | None = None
    kumomta_release: str | None = None
    upgrade: Mapping[str, Any] | None = None  # UpgradeEvidence fields
    rollback: Rollback | None = None
    links: Sequence[Link] = ()
    supersedes: str | None = None
    review_due: str | None = None
    environment: str | None = None
    decided_at: datetime | str | None = None
    actor: Actor | None = None
    actor_kind: ActorKind | None = None
    host: str | None = None
    writer: str | None = None
    checkpoint: bool = False
    """Name the head of every writer's chain (filled in from the state the entry is added to)."""


SigningChoice = SigningKey | str | Literal[False] | None
"""None: the configured key (if any); False: do not sign; a key path or `key::<public key>`."""


def record(
    store: Store,
    draft: EntryDraft,
    *,
    repo: Path | None = None,
    now: datetime | None = None,
    signing_key: SigningChoice = None,
) -> Entry:
    """Seal `draft` as the next entry of its writer's chain and add it to `store` (retrying races).

    `now` (default: the clock) is the recording time; `repo` is used to resolve the actor (and,
    for a directory store, keeps the writer id). The entry is signed with `signing_key`.
    """
    return record_many(store, [draft], repo=repo, now=now, signing_key=signing_key)[0]


def record_many(
    store: Store,
    drafts: Sequence[EntryDraft],
    *,
    repo: Path | None = None,
    now: datetime | None = None,
    signing_key: SigningChoice = None,
) -> list[Entry]:
    """Record several drafts in one store update (one commit in a Git store)."""
    if not drafts:
        return []
    if repo is None and isinstance(store, GitStore):
        repo = store.repo
    drafts = [_free_of_secrets(draft, repo) for draft in drafts]
    key = signing_key_for(store, repo, signing_key)
    if key is None and any(d.checkpoint for d in drafts):
        raise AuditError(
            "a checkpoint must be signed: configure a signing key (kumo-audit.signingKey, "
            "user.signingKey with gpg.format=ssh, or KUMO_AUDIT_SIGNING_KEY)"
        )
    _ACTOR_MEMO.clear()
    with store.lock():
        for _ in range(MAX_ATTEMPTS):
            view = _view(store, drafts)
            entries: list[Entry] = []
            for draft in drafts:
                recorded_at = format_timestamp(now) if now else now_timestamp()
                point = view.lengths().checkpoint(view.tips) if draft.checkpoint else None
                entry = _seal(draft, store, repo, view.tips, view.ids(), recorded_at, point)
                if key is not None:
                    entry = entry.model_copy(update={"signature": sign(key, message(entry.hash))})
                view.note(entry)
                entries.append(entry)
            files = {entry.file_name(): render_entry(entry) for entry in entries}
            if len(files) != len(entries):
                raise AuditError("two drafts produced the same entry name")
            try:
                view.write(files, _commit_message(entries), entries[-1].actor, entries)
            except StoreConflict:
                continue
            if isinstance(store, GitStore):
                from auditor.runbook.verify import remember_canonical

                remember_canonical(store, list(files.values()))
            return entries
    raise AuditError(
        f"could not update the runbook in {store.description}: too many concurrent writers"
    )


class _StoreView:
    """One read of the store for sealing entries on it: every entry's front matter."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.state = store.state()
        self.summaries = store.summaries(self.state)
        self.tips = _chain_tips(self.summaries)
        self._ids = {s.get("id") for s in self.summaries.values() if "id" in s}
        self._lengths = _Lengths(self.summaries)

    def ids(self) -> set[Any]:
        return self._ids

    def lengths(self) -> _Lengths:
        return self._lengths

    def note(self, entry: Entry) -> None:
        self.tips[entry.writer] = (entry.hash, entry.recorded_at)
        self._lengths.add(entry)
        self._ids.add(entry.id)

    def write(self, files: dict[str, bytes], text: str, actor: Actor, entries: list[Entry]) -> None:
        self.store.add(self.state, files, text, actor)


class _BranchView:
    """A Git branch read through its chain-head index: the heads come from the kept index (brought
    forward by the entries added since it was written), not from every entry, so recording costs
    the same at the ten-thousandth entry as at the first. Only checkpoints (chain lengths) and
    `supersedes` (entry ids) read every entry."""

    def __init__(self, store: GitStore) -> None:
        from auditor.runbook import chains

        self.store = store
        self.head = store.head()
        self.index = chains.current(store, self.head)
        self.tips = self.index.tips()

    def ids(self) -> set[Any]:
        return set()

    def lengths(self) -> _Lengths:
        raise AssertionError("a checkpoint is sealed on a full read of the store")

    def note(self, entry: Entry) -> None:
        self.tips[entry.writer] = (entry.hash, entry.recorded_at)

    def write(self, files: dict[str, bytes], text: str, actor: Actor, entries: list[Entry]) -> None:
        commit = self.store.add_files(self.head, files, text, actor)
        self.index.add((e.file_name(), _front_of(e)) for e in entries)
        self.index.commit = commit
        self.index.save(self.store)


def _front_of(entry: Entry) -> dict[str, Any]:
    return {
        "writer": entry.writer,
        "hash": entry.hash,
        "prev_hash": entry.prev_hash,
        "recorded_at": entry.recorded_at,
    }


def _view(store: Store, drafts: Sequence[EntryDraft]) -> _StoreView | _BranchView:
    if isinstance(store, GitStore) and not any(d.checkpoint or d.supersedes for d in drafts):
        return _BranchView(store)
    return _StoreView(store)


def signing_key_for(store: Store, repo: Path | None, choice: SigningChoice) -> SigningKey | None:
    if choice is False:
        return None
    if isinstance(choice, SigningKey):
        return choice
    if isinstance(choice, str) and choice:
        return SigningKey(choice)
    return configured_key(store.repo if isinstance(store, GitStore) else repo)


class _Lengths:
    """Chain length at every entry hash (for the heads a checkpoint names)."""

    def __init__(self, summaries: Mapping[str, Mapping[str, Any]]) -> None:
        self.prev: dict[str, str | None] = {}
        for front in summaries.values():
            if "_error" not in front and front.get("hash"):
                self.prev[front["hash"]] = front.get("prev_hash")
        self.memo: dict[str, int] = {}

    def add(self, entry: Entry) -> None:
        self.prev[entry.hash] = entry.prev_hash

    def length(self, head: str) -> int:
        path: list[str] = []
        current: str | None = head
        while current is not None and current in self.prev and current not in self.memo:
            path.append(current)
            current = self.prev[current]
            if len(path) > len(self.prev):  # a cycle can only come from tampering
                break
        base = self.memo.get(current, 0) if current is not None else 0
        for digest in reversed(path):
            base += 1
            self.memo[digest] = base
        return self.memo.get(head, base)

    def checkpoint(self, tips: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
        heads = {w: {"hash": h, "entries": self.length(h)} for w, (h, _) in sorted(tips.items())}
        return {"heads": heads, "entries": sum(h["entries"] for h in heads.values())}


def _chain_tips(summaries: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """Per writer, the hash and recorded_at of the entry no other entry of that writer follows."""
    by_writer: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for name, front in summaries.items():
        if "_error" in front or not front.get("writer") or not front.get("hash"):
            continue
        by_writer.setdefault(front["writer"], []).append((name, front))
    tips: dict[str, tuple[str, str]] = {}
    for writer, items in by_writer.items():
        followed = {front.get("prev_hash") for _, front in items}
        candidates = [
            (f["recorded_at"], name, f["hash"]) for name, f in items if f["hash"] not in followed
        ]
        if not candidates:  # a cycle can only come from tampering: follow the latest entry
            candidates = [(f["recorded_at"], name, f["hash"]) for name, f in items]
        recorded_at, _, digest = max(candidates)
        tips[writer] = (digest, recorded_at)
    return tips


def _seal(
    draft: EntryDraft,
    store: Store,
    repo: Path | None,
    tips: Mapping[str, tuple[str, str]],
    ids: set[Any],
    recorded_at: str,
    checkpoint: dict[str, Any] | None = None,
) -> Entry:
    try:
        actor = draft.actor or _resolved_actor(repo, draft.actor_kind)
        host = draft.host or resolve_host()
        writer = draft.writer or _writer(store, repo, actor, host)
        prev = tips.get(writer)
        # Keep each chain's recorded_at monotonic despite clock skew between runs.
        if prev and prev[1] > recorded_at:
            recorded_at = prev[1]
        decided_at = _moment(draft.decided_at) if draft.decided_at else recorded_at
        body = {
            "prev_hash": prev[0] if prev else None,
            "writer": writer,
            "decided_at": decided_at,
            "recorded_at": recorded_at,
            "decision": draft.decision,
            "summary": _checkpoint_summary(checkpoint) if checkpoint else _summary(draft),
            "actor": actor.model_dump(),
            "host": host,
            "environment": draft.environment,
            "change": draft.change.model_dump() if draft.change else None,
            "reload": dict(draft.reload) if draft.reload is not None else None,
            "why": _why(draft).model_dump(),
            "approvals": [a.model_dump() for a in _approvals(draft)],
            "evidence": _evidence(draft).model_dump(),
            "rollback": _rollback(draft),
            "links": [link.model_dump() for link in draft.links],
            "supersedes": _supersedes(draft.supersedes, ids),
            "review_due": draft.review_due,
        }
        if checkpoint is not None:
            body["checkpoint"] = checkpoint
        return Entry.seal(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "entry"
        raise AuditError(f"invalid runbook entry: {where}: {error['msg']}") from None


def _resolved_actor(repo: Path | None, kind: ActorKind | None) -> Actor:
    """The actor from the environment, resolved once per batch (Git config lookups cost a process)."""
    key = (repo, kind)
    if key not in _ACTOR_MEMO:
        _ACTOR_MEMO[key] = resolve_actor(repo, kind=kind)
    return _ACTOR_MEMO[key]


_ACTOR_MEMO: dict[tuple[Path | None, str | None], Actor] = {}


def _writer(store: Store, repo: Path | None, actor: Actor, host: str) -> str:
    """The writer id of the writing store: kept in the clone's Git config (or the directory)."""
    key = (repo, f"writer:{actor.kind}:{host}")
    if key not in _ACTOR_MEMO:
        if isinstance(store, GitStore):
            writer = resolve_writer(actor, host, repo=store.repo)
        else:
            root = getattr(store, "root", None)
            writer = resolve_writer(actor, host, repo=repo, directory=root)
        _ACTOR_MEMO[key] = writer  # type: ignore[assignment]
    return _ACTOR_MEMO[key]  # type: ignore[return-value]


def _moment(value: datetime | str) -> str:
    if isinstance(value, datetime):
        return format_timestamp(value)
    try:
        return parse_moment(value)
    except ValueError:
        raise AuditError(
            f"invalid decision time {value!r} (use ISO 8601, e.g. 2026-11-29T04:13:11Z)"
        ) from None


def _checkpoint_summary(checkpoint: dict[str, Any]) -> str:
    return (
        f"checkpoint: {checkpoint['entries']} entries in {len(checkpoint['heads'])} writer chains"
    )


def _summary(draft: EntryDraft) -> str:
    candidates = [draft.summary, (draft.why or "").strip().split("\n")[0]]
    if draft.commits:
        candidates.append(draft.commits[-1].subject)
    for text in candidates:
        if text and text.strip():
            return " ".join(text.split())[:200]
    head = draft.change.head if draft.change and draft.change.head else None
    return f"{draft.decision} {head[:12]}" if head else draft.decision


def _draft_texts(draft: EntryDraft) -> list[str]:
    texts = [draft.summary or "", draft.why or ""]
    texts += [f"{c.subject}\n{c.body}" for c in draft.commits]
    texts += [f"{link.title}\n{link.url}" for link in draft.links]
    if draft.rollback is not None and draft.rollback.command:
        texts.append(draft.rollback.command)
    return texts


def secrets_in_draft(draft: EntryDraft) -> set[str]:
    """The secrets in a draft's free text: what `record` replaces by markers."""
    from auditor.core.secrets import secrets_in_text

    return set().union(*(secrets_in_text(text) for text in _draft_texts(draft)))


def _free_of_secrets(draft: EntryDraft, repo: Path | None) -> EntryDraft:
    """`draft` with every secret in its free text (summary, why, commit messages, links, the
    rollback command) replaced by a marker with a salted digest: an entry can never be removed, so
    a password pasted into a reason or a commit message must not reach it. Tickets are read from
    the text as it was."""
    from auditor.core.secrets import Redactor, repository_salt

    found = secrets_in_draft(draft)
    if not found:
        return draft
    redactor = Redactor(lambda: repository_salt(repo))

    def clean(text: Any) -> Any:  # str, or None where a field is optional
        return redactor.text(text, found) if text else text

    rollback = draft.rollback
    if rollback is not None and rollback.command:
        rollback = rollback.model_copy(update={"command": clean(rollback.command)})
    return replace(
        draft,
        summary=clean(draft.summary),
        why=clean(draft.why),
        commits=[
            c.model_copy(update={"subject": clean(c.subject), "body": clean(c.body)})
            for c in draft.commits
        ],
        links=[
            link.model_copy(update={"title": clean(link.title), "url": clean(link.url)})
            for link in draft.links
        ],
        rollback=rollback,
        tickets=_tickets(draft),  # from the text as written: a ticket is no secret
    )


def _tickets(draft: EntryDraft) -> list[str]:
    texts = [draft.why or ""] + [f"{c.subject}\n{c.body}" for c in draft.commits]
    return list(dict.fromkeys([*draft.tickets, *tickets_in(texts, draft.ticket_pattern)]))


def _why(draft: EntryDraft) -> Why:
    return Why(text=draft.why, commits=list(draft.commits), tickets=_tickets(draft))


def _approvals(draft: EntryDraft) -> list[Approval]:
    found = list(draft.approvals)
    known = {(a.role, (a.email or a.name).lower()) for a in found}
    for approval in approvals_from(draft.commits):
        if (approval.role, (approval.email or approval.name).lower()) not in known:
            found.append(approval)
    return found


def _evidence(draft: EntryDraft) -> Evidence:
    findings = sorted(draft.findings, key=Finding.sort_key)
    suppressions = [
        SuppressionUse(
            fingerprint=f.fingerprint,
            code=f.code,
            kind=f.suppression.kind,
            reason=f.suppression.reason,
            path=f.suppression.path,
            line=f.suppression.line,
            ticket=f.suppression.ticket,
            expires=f.suppression.expires,
        )
        for f in findings
        if f.suppressed and f.suppression is not None
    ]
    return Evidence(
        tool_version=__version__,
        api_table_version=draft.api_table_version,
        ruleset_hash=draft.ruleset_hash,
        findings=[f.as_dict() for f in findings],  # type: ignore[misc]
        suppressions=suppressions,
        validator=draft.validator.result() if draft.validator else None,
        kumomta_release=draft.kumomta_release,
        upgrade=dict(draft.upgrade) if draft.upgrade is not None else None,  # type: ignore[arg-type]
    )


def _rollback(draft: EntryDraft) -> dict[str, Any] | None:
    if draft.rollback is not None:
        return draft.rollback.model_dump()
    change = draft.change
    if change is None or not change.base:
        return None
    if change.head:
        command = f"git revert --no-edit {change.base}..{change.head}"
    else:
        command = f"git restore --source={change.base} --staged --worktree -- ."
    return {"last_good": change.base, "command": command}


def _supersedes(prefix: str | None, ids: set[Any]) -> str | None:
    if not prefix:
        return None
    matches = sorted(i for i in ids if isinstance(i, str) and i.startswith(prefix.lower()))
    if len(matches) != 1:
        raise AuditError(
            f"--supersedes {prefix!r}: {'no entry' if not matches else f'{len(matches)} entries'} match"
        )
    return matches[0]


def _commit_message(entries: list[Entry]) -> str:
    if len(entries) == 1:
        e = entries[0]
        return f"runbook: {e.decision} {e.short_id}: {e.summary[:60]}\n\n{e.file_name()}\n"
    return f"runbook: {len(entries)} entries\n"
