"""The finding type shared by every stage: rules produce findings, filters mark them, renderers print them."""

from __future__ import annotations

import hashlib
from dataclasses import field, replace
from enum import Enum
from typing import NamedTuple

from auditor.core.record import dataclass


class Severity(str, Enum):
    """Ordered severities; compare with `rank`."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ValueError(
                f"unknown severity {text!r} (expected one of: error, warning, info)"
            ) from None


_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.ERROR: 3}


class Span(NamedTuple):
    """A 1-based source range; columns count characters, not bytes.

    A named tuple: parse results hold tens of thousands of spans, and tuples are created, hashed and
    unpickled in C."""

    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def point(cls, line: int, column: int = 1) -> Span:
        return cls(line, column, line, column)

    @property
    def multiline(self) -> bool:
        return self.end_line != self.line


UNKNOWN_SPAN = Span(1, 1, 1, 1)


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why a finding was not counted: an inline comment, a file-level comment or a data-file waiver."""

    kind: str  # "inline" | "file" | "waiver" | "baseline"
    reason: str
    path: str
    line: int
    ticket: str | None = None
    expires: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "reason": self.reason,
            "path": self.path,
            "line": self.line,
            "ticket": self.ticket,
            "expires": self.expires,
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at one place.

    `key` is the semantic identity of what the finding is about (e.g. ``listener 0.0.0.0:25 relay_hosts``);
    the fingerprint is derived from code, path and key, never from line numbers, so it survives
    unrelated edits above the finding.
    """

    code: str
    name: str
    severity: Severity
    message: str
    path: str
    span: Span
    key: str = ""
    fix: str = ""
    suppressed: bool = False
    suppression: Suppression | None = None
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(
                self, "fingerprint", fingerprint_of(self.code, self.path, self.key or self.message)
            )

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def column(self) -> int:
        return self.span.column

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.span.line, self.span.column, self.code, self.message)

    def with_severity(self, severity: Severity) -> Finding:
        return replace(self, severity=severity)

    def suppress(self, suppression: Suppression) -> Finding:
        return replace(self, suppressed=True, suppression=suppression)

    def as_dict(self) -> dict[str, object]:
        """The JSON contract of one finding (DESIGN.md, Contracts)."""
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.path,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "fix": self.fix,
            "fingerprint": self.fingerprint,
            "suppressed": self.suppressed,
            "suppression": self.suppression.as_dict() if self.suppression else None,
        }


def fingerprint_of(code: str, path: str, key: str) -> str:
    digest = hashlib.sha256(f"{code}\0{path}\0{key}".encode()).hexdigest()
    return digest[:16]


def dedupe_fingerprints(findings: list[Finding]) -> list[Finding]:
    """Give findings that share a fingerprint distinct ones, in source order, so each stays addressable."""
    seen: dict[str, int] = {}
    out: list[Finding] = []
    for finding in sorted(findings, key=Finding.sort_key):
        count = seen.get(finding.fingerprint, 0)
        seen[finding.fingerprint] = count + 1
        if count:
            finding = replace(
                finding,
                fingerprint=fingerprint_of(finding.code, finding.path, f"{finding.key}#{count}"),
            )
        out.append(finding)
    return out


def at_or_above(findings: list[Finding], threshold: Severity) -> list[Finding]:
    return [f for f in findings if not f.suppressed and f.severity.rank >= threshold.rank]
