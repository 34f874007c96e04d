"""Change facts from the policy repository: changed files (blob ids only), commits, trailers, tickets."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from auditor.core.errors import AuditError
from auditor.runbook.model import Approval, Change, ChangedFile, Commit, Why
from auditor.source.git import ZERO_OID, git, git_bytes, rev_parse

DEFAULT_TICKET_PATTERN = r"\b[A-Z][A-Z0-9]{1,9}-\d+\b"
APPROVAL_TRAILERS = {
    "reviewed-by": "reviewed-by",
    "approved-by": "approved-by",
    "acked-by": "acked-by",
}
_TRAILER_RE = re.compile(
    r"^(Reviewed-by|Approved-by|Acked-by):\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE
)
_STATUS = {
    "A": "added",
    "M": "modified",
    "D": "deleted",
    "R": "renamed",
    "T": "type-changed",
    "C": "added",
}
MAX_COMMITS = 500


def resolve(repo: Path, rev: str) -> str:
    oid = rev_parse(repo, rev)
    if oid is None:
        raise AuditError(f"unknown revision {rev!r} in {repo}")
    return oid


def changed_files(repo: Path, base: str | None, head: str) -> list[ChangedFile]:
    """Files changed from base to head (head's parent-less tree when base is None)."""
    args = ["diff-tree", "-r", "-z", "--raw", "-M", "--no-commit-id"]
    args += [base, head] if base else ["--root", head]
    out = git_bytes(repo, *args).decode("utf-8", "surrogateescape")
    fields = out.split("\0")
    files: list[ChangedFile] = []
    i = 0
    while i < len(fields) and fields[i].startswith(":"):
        meta = fields[i][1:].split()
        old_id, new_id, status_code = meta[2], meta[3], meta[4][0]
        if status_code in ("R", "C"):
            old_path, path = fields[i + 1], fields[i + 2]
            i += 3
        else:
            old_path, path = None, fields[i + 1]
            i += 2
        files.append(
            ChangedFile(
                path=path,
                status=_STATUS.get(status_code, "modified"),  # type: ignore[arg-type]
                before=None if old_id == ZERO_OID else old_id,
                after=None if new_id == ZERO_OID else new_id,
                old_path=old_path if status_code == "R" else None,
            )
        )
    return files


def commits(repo: Path, base: str | None, head: str) -> list[Commit]:
    """Commits in base..head, oldest first (only head itself when base is None)."""
    rng = [f"{base}..{head}"] if base else ["-1", head]
    out = git(
        repo,
        "log",
        f"--max-count={MAX_COMMITS}",
        "--reverse",
        "--format=%H%x00%an <%ae>%x00%B%x1e",
        *rng,
    )
    result: list[Commit] = []
    for record in out.split("\x1e"):
        record = record.strip("\n")
        if not record:
            continue
        revision, author, message = ([*record.split("\x00", 2), "", ""])[:3]
        subject, _, body = message.partition("\n")
        result.append(
            Commit(revision=revision, subject=subject.strip(), body=body.strip(), author=author)
        )
    return result


def approvals_from(commit_list: Iterable[Commit]) -> list[Approval]:
    """`Reviewed-by:` / `Approved-by:` / `Acked-by:` trailers, one approval per distinct person and role."""
    from auditor.runbook.identity import split_name_email

    seen: set[tuple[str, str]] = set()
    out: list[Approval] = []
    for commit in commit_list:
        for match in _TRAILER_RE.finditer(commit.body):
            role = APPROVAL_TRAILERS[match[1].lower()]
            name, email = split_name_email(match[2])
            key = (role, (email or name).lower())
            if key in seen:
                continue
            seen.add(key)
            out.append(
                Approval(
                    name=name, email=email, role=role, source="trailer", revision=commit.revision
                )  # type: ignore[arg-type]
            )
    return out


def tickets_in(texts: Iterable[str], pattern: str = DEFAULT_TICKET_PATTERN) -> list[str]:
    """Ticket ids found by `pattern` (its first group if it has one), in order of appearance, unique."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise AuditError(f"invalid ticket pattern {pattern!r}: {exc}") from None
    found: list[str] = []
    for text in texts:
        for match in regex.finditer(text):
            ticket = match.group(1) if regex.groups else match.group(0)
            if ticket and ticket not in found:
                found.append(ticket)
    return found


def why_from(
    text: str | None, commit_list: list[Commit], ticket_pattern: str = DEFAULT_TICKET_PATTERN
) -> Why:
    texts = [text or ""] + [f"{c.subject}\n{c.body}" for c in commit_list]
    return Why(text=text, commits=commit_list, tickets=tickets_in(texts, ticket_pattern))


def change_from_git(
    repo: Path, base: str | None, head: str, summary: list[str] | None = None
) -> tuple[Change, list[Commit]]:
    """The change between two revisions (resolved to full ids) and its commits."""
    head_id = resolve(repo, head)
    base_id = resolve(repo, base) if base else None
    change = Change(
        base=base_id,
        head=head_id,
        files=changed_files(repo, base_id, head_id),
        summary=summary or [],
    )
    return change, commits(repo, base_id, head_id)
