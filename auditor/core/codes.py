"""Rule codes as data: the metadata every finding's code has (name, severity, docs), the one table of
code prefixes (category, and the rule family module that defines them), and the codes that pipeline
stages produce themselves (load errors in `load_codes`, data-file errors in `data_codes`)."""

from __future__ import annotations

from typing import Any, NamedTuple

from auditor.core.findings import Finding, Severity, Span
from auditor.core.record import dataclass


class Prefix(NamedTuple):
    prefix: str
    category: str
    family: str  # the module of auditor.rules that defines the codes


PREFIXES = (
    Prefix("E1", "load", "load"),
    Prefix("E2", "api", "api_use"),
    Prefix("E3", "data", "data"),
    Prefix("E4", "reference", "references"),
    Prefix("R", "reload", "reload"),
    Prefix("S", "security", "security"),
    Prefix("D", "delivery", "delivery"),
    Prefix("C", "change", "change"),
    Prefix("X", "suppression", "suppression"),
)


def prefix_of(code: str) -> Prefix | None:
    """The entry of PREFIXES for `code` (two-character prefixes before one-character ones)."""
    return next((p for p in PREFIXES if code.startswith(p.prefix)), None)


def category_of(code: str) -> str:
    found = prefix_of(code)
    return found.category if found else "other"


@dataclass(frozen=True, slots=True)
class RuleMeta:
    """A rule's metadata: code, name, severity, category and documentation."""

    code: str
    name: str
    severity: Severity
    category: str
    summary: str
    doc: str
    bad: str
    good: str
    fix: str
    suppressible: bool = True
    change: bool = False  # only runs when auditing a change between two states

    def finding(
        self,
        path: str,
        span: Span,
        message: str,
        *,
        key: str = "",
        fix: str | None = None,
        severity: Severity | None = None,
    ) -> Finding:
        """Build a finding of this rule; `key` is the semantic identity used for the fingerprint.
        `severity` lowers (or raises) the rule's own where the context changes what is at stake."""
        return Finding(
            code=self.code,
            name=self.name,
            severity=self.severity if severity is None else severity,
            message=message,
            path=path,
            span=span,
            key=key,
            fix=self.fix if fix is None else fix,
        )


def make_meta(code: str, name: str, severity: str, summary: str, **kw: Any) -> RuleMeta:
    return RuleMeta(
        code=code,
        name=name,
        severity=Severity.parse(severity),
        category=category_of(code),
        summary=summary,
        doc=kw["doc"].strip(),
        bad=kw["bad"].strip("\n"),
        good=kw["good"].strip("\n"),
        fix=kw["fix"].strip(),
        suppressible=kw["suppressible"],
        change=kw["change"],
    )


def stage_code(code: str, name: str, severity: str, summary: str, **kw: Any) -> RuleMeta:
    """Metadata of a code that a pipeline stage produces (no check function of its own); the rule
    family module registers it (`auditor.rules.registry.register`)."""
    kw.setdefault("suppressible", True)
    kw.setdefault("change", False)
    return make_meta(code, name, severity, summary, **kw)
