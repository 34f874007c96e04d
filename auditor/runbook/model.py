"""The runbook entry: a pydantic model, its canonical JSON and its content hash.

An entry's `hash` is the SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of every field
except `id` and `hash`; `id` is the first 16 hex digits of that hash. `prev_hash` is inside the hashed
body, so each entry seals its place in its writer's chain.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from auditor.core.decisions import DECISIONS as DECISIONS
from auditor.core.decisions import IMPACTS
from auditor.runbook.canonical import (  # noqa: F401  (part of this module's interface)
    ENTRY_NAME_RE,
    FORMAT,
    ID_LENGTH,
    SHORT_ID_LENGTH,
    canonical_json,
    entry_path,
    hash_body,
)

Decision = Literal[DECISIONS]  # type: ignore[valid-type]
ActorKind = Literal["human", "ci", "daemon"]
ResolvedBy = Literal["override", "sudo", "git-config", "ci", "host-identity", "login", "explicit"]

TIMESTAMP_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
Timestamp = Annotated[str, StringConstraints(pattern=TIMESTAMP_RE)]
DateStr = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ObjectId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?$")]
Revision = Annotated[str, StringConstraints(min_length=1, max_length=200)]
OneLine = Annotated[str, StringConstraints(pattern=r"^[^\r\n]*$", max_length=500)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Actor(_Strict):
    """Who made the decision, what kind of writer they are, and how that was determined."""

    name: OneLine
    email: OneLine | None = None
    kind: ActorKind
    resolved_by: ResolvedBy

    def display(self) -> str:
        return f"{self.name} <{self.email}>" if self.email else self.name


class ChangedFile(_Strict):
    """One changed file: only Git blob ids of its two versions, never its contents."""

    path: str
    status: Literal["added", "modified", "deleted", "renamed", "type-changed"]
    before: ObjectId | None = None
    after: ObjectId | None = None
    old_path: str | None = None

    @classmethod
    def from_bytes(cls, path: str, before: bytes | None, after: bytes | None) -> ChangedFile:
        """Describe a change by content ids; the bytes themselves are dropped here."""
        from auditor.source.snapshot import git_blob_id

        if before is None and after is None:
            raise ValueError(f"{path}: a changed file needs a before or an after version")
        status = "added" if before is None else "deleted" if after is None else "modified"
        return cls(
            path=path,
            status=status,
            before=git_blob_id(before) if before is not None else None,
            after=git_blob_id(after) if after is not None else None,
        )


class Change(_Strict):
    base: Revision | None = None
    head: Revision | None = None
    files: list[ChangedFile] = Field(default_factory=list)
    summary: list[str] = Field(
        default_factory=list, description="semantic change set, one line each"
    )


class ReloadImpact(BaseModel):
    """The reload classification as produced by the change stage (extra keys are kept)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    impact: Literal[IMPACTS]  # type: ignore[valid-type]
    elements: list[dict[str, Any]] = Field(default_factory=list)


class Commit(_Strict):
    revision: Revision
    subject: str
    body: str = ""
    author: str | None = None


class Why(_Strict):
    text: str | None = None
    commits: list[Commit] = Field(default_factory=list)
    tickets: list[str] = Field(default_factory=list)


class Approval(_Strict):
    name: str
    email: str | None = None
    role: Literal["reviewed-by", "approved-by", "acked-by", "approver"] = "approved-by"
    source: Literal["trailer", "ci", "manual"]
    revision: Revision | None = None


class SuppressionRecord(_Strict):
    kind: str
    reason: str
    path: str
    line: int
    ticket: str | None = None
    expires: str | None = None


class FindingRecord(_Strict):
    """`auditor.core.findings.Finding.as_dict()`, validated."""

    code: str
    name: str
    severity: Literal["info", "warning", "error"]
    message: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    fix: str = ""
    fingerprint: str
    suppressed: bool = False
    suppression: SuppressionRecord | None = None


class SuppressionUse(_Strict):
    """A suppression or waiver that silenced a finding in this decision, with its reason."""

    fingerprint: str
    code: str
    kind: str
    reason: str
    path: str
    line: int
    ticket: str | None = None
    expires: str | None = None


class ValidatorResult(_Strict):
    """An external validator run (e.g. `kumod --validate`): exit code and a digest of its output only."""

    command: str | None = None
    exit_code: int
    output_sha256: Sha256


class UpgradeItem(_Strict):
    """One place where a KumoMTA release upgrade touches the policy."""

    kind: OneLine
    severity: Literal["change", "review"]
    path: OneLine
    line: int
    column: int
    subject: OneLine
    message: OneLine
    release: OneLine = ""
    link: OneLine = ""


class UpgradeEvidence(_Strict):
    """What `kumo-audit upgrade` found for a jump between two KumoMTA releases."""

    from_release: OneLine
    to_release: OneLine
    verdict: Literal["safe", "review", "needs-changes"]
    items: list[UpgradeItem] = Field(default_factory=list)
    manual_review: list[OneLine] = Field(default_factory=list)


class Evidence(_Strict):
    tool_version: str
    api_table_version: str | None = None
    ruleset_hash: str | None = None
    findings: list[FindingRecord] = Field(default_factory=list)
    suppressions: list[SuppressionUse] = Field(default_factory=list)
    validator: ValidatorResult | None = None
    kumomta_release: OneLine | None = None
    """The KumoMTA release the policy runs on when the decision was made, where known."""
    upgrade: UpgradeEvidence | None = None


class Rollback(_Strict):
    last_good: Revision | None = None
    command: str | None = None


class Link(_Strict):
    title: OneLine
    url: OneLine


class ChainHead(_Strict):
    """The newest entry of one writer's chain when a checkpoint was written."""

    hash: Sha256
    entries: int = Field(ge=1, description="length of the chain up to and including this entry")


class Checkpoint(_Strict):
    """A signed statement of every writer's chain head at one moment (like a signed tree head)."""

    heads: dict[str, ChainHead]
    entries: int = Field(ge=0, description="entries covered: the sum of the chain lengths")


OPTIONAL_FIELDS = ("checkpoint", "signature")
"""Fields added after the first release: left out of the record when empty, so the records (and
hashes) of entries written before them do not change."""
OPTIONAL_EVIDENCE_FIELDS = ("kumomta_release", "upgrade")
"""The same for fields of `evidence`."""


class Entry(_Strict):
    """One immutable runbook entry (the canonical machine record)."""

    format: Literal["kumo-audit-runbook/1"] = FORMAT
    id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
    hash: Sha256
    prev_hash: Sha256 | None = None
    writer: OneLine
    decided_at: Timestamp
    recorded_at: Timestamp
    decision: Decision
    summary: OneLine
    actor: Actor
    host: OneLine
    environment: OneLine | None = None
    change: Change | None = None
    reload: ReloadImpact | None = None
    why: Why = Field(default_factory=Why)
    approvals: list[Approval] = Field(default_factory=list)
    evidence: Evidence
    rollback: Rollback | None = None
    links: list[Link] = Field(default_factory=list)
    supersedes: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")] | None = None
    review_due: DateStr | None = None
    checkpoint: Checkpoint | None = None
    signature: Annotated[str, StringConstraints(max_length=20000)] | None = Field(
        default=None,
        description="SSH signature (namespace kumo-audit-runbook) over `hash`; not part of the hash",
    )

    @property
    def short_id(self) -> str:
        return self.id[:SHORT_ID_LENGTH]

    def record(self) -> dict[str, Any]:
        """The full record as plain JSON data."""
        data = self.model_dump(mode="json")
        for name in OPTIONAL_FIELDS:
            if data[name] is None:
                del data[name]
        for name in OPTIONAL_EVIDENCE_FIELDS:
            if data["evidence"].get(name, "") is None:
                del data["evidence"][name]
        return data

    def body(self) -> dict[str, Any]:
        """What the hash covers: everything but `id`, `hash` and `signature`."""
        data = self.record()
        del data["id"], data["hash"]
        data.pop("signature", None)
        return data

    def computed_hash(self) -> str:
        return hash_body(self.body())

    def file_name(self) -> str:
        """`entries/YYYY/MM/<decided_at compact>-<decision>-<short id>.md`."""
        return entry_path(self.decided_at, self.decision, self.id)

    @classmethod
    def seal(cls, body: dict[str, Any]) -> Entry:
        """Build an entry from its body, deriving `hash` and `id` from the content."""
        draft = cls.model_validate({**body, "id": "0" * ID_LENGTH, "hash": "0" * 64})
        digest = draft.computed_hash()
        return draft.model_copy(update={"hash": digest, "id": digest[:ID_LENGTH]})


def format_timestamp(moment: datetime) -> str:
    """UTC, second precision, `Z` suffix: the only timestamp form stored."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_moment(text: str, *, end_of_day: bool = False) -> str:
    """A user-given date or ISO 8601 date-time as a stored timestamp; ValueError if unreadable."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = date.fromisoformat(text)
        clock = "23:59:59" if end_of_day else "00:00:00"
        return f"{day.isoformat()}T{clock}Z"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return format_timestamp(moment)


def now_timestamp() -> str:
    return format_timestamp(datetime.now(UTC))
