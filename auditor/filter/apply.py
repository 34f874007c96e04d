"""Filter stage: configuration (select/ignore, severities, per-path ignores), suppressions and waivers."""

from __future__ import annotations

from datetime import date
from fnmatch import fnmatch
from typing import TYPE_CHECKING, Any

from auditor.core.findings import Finding, Severity, Span, Suppression
from auditor.filter.suppressions import InlineSuppression, collect
from auditor.rules import registry
from auditor.rules.suppression import (
    SUPPRESSION_EXPIRED,
    SUPPRESSION_WITHOUT_REASON,
    UNUSED_SUPPRESSION,
)

if TYPE_CHECKING:
    from auditor.rules.context import AuditContext


def code_matches(code: str, patterns: list[str]) -> bool:
    """A code matches a pattern that equals it or is a prefix of it (`S`, `S1`, `S101`)."""
    return any(code.startswith(p) for p in patterns)


def selected(code: str, select: list[str], ignore: list[str]) -> bool:
    if select and not code_matches(code, select):
        return False
    return not code_matches(code, ignore)


def apply_filters(
    findings: list[Finding],
    context: AuditContext,
    *,
    use_suppressions: bool = True,
    today: date | None = None,
    suppression_findings: bool = True,
) -> tuple[list[Finding], list[Suppression]]:
    """Findings after configuration, with suppressed ones marked (not dropped); the suppressions used."""
    config = context.config
    today = today or date.today()
    out: list[Finding] = []
    for finding in findings:
        if not selected(finding.code, config.select, config.ignore):
            continue
        if any(
            fnmatch(finding.path, p.path) and code_matches(finding.code, p.codes)
            for p in config.per_path_ignores
        ):
            continue
        override = config.severity.get(finding.code)
        if override:
            finding = finding.with_severity(Severity.parse(override))
        out.append(finding)
    if not use_suppressions:
        return out, []
    inline = [s for path, mod in context.model.modules.items() for s in collect(path, mod.facts)]
    out, used = _apply_inline(out, inline, today)
    out, used_waivers, waiver_findings = _apply_waivers(out, context, today)
    extra = [
        f
        for f in _suppression_findings(inline, today) + waiver_findings
        if suppression_findings and selected(f.code, config.select, config.ignore)
    ]
    return sorted(out + extra, key=Finding.sort_key), used + used_waivers


def _valid(s: InlineSuppression, today: date) -> bool:
    return s.reason is not None and not s.problems and not (s.expires and s.expires < today)


def _apply_inline(
    findings: list[Finding], suppressions: list[InlineSuppression], today: date
) -> tuple[list[Finding], list[Suppression]]:
    used: list[Suppression] = []
    out: list[Finding] = []
    by_path: dict[str, list[InlineSuppression]] = {}
    for s in suppressions:
        by_path.setdefault(s.path, []).append(s)
    for finding in findings:
        meta = registry.get(finding.code)
        match = None
        if meta is None or meta.meta.suppressible:
            match = next(
                (s for s in by_path.get(finding.path, ()) if s.covers(finding.code, finding.line)),
                None,
            )
        if match is not None:
            match.used = True
            if _valid(match, today):
                record = Suppression(
                    kind="file" if match.file_level else "inline",
                    reason=match.reason or "",
                    path=match.path,
                    line=match.span.line,
                    ticket=match.ticket,
                    expires=match.expires.isoformat() if match.expires else None,
                )
                finding = finding.suppress(record)
                if record not in used:
                    used.append(record)
        out.append(finding)
    return out, used


def _suppression_findings(suppressions: list[InlineSuppression], today: date) -> list[Finding]:
    out: list[Finding] = []
    for s in suppressions:
        codes = ",".join(s.codes)
        key = f"{s.path}:allow({codes})"
        if s.reason is None or s.problems:
            detail = "; ".join(s.problems) if s.problems else 'it has no reason="…"'
            out.append(
                SUPPRESSION_WITHOUT_REASON.finding(
                    s.path,
                    s.span,
                    f"suppression of {codes or 'no codes'} is not applied: {detail}",
                    key=key,
                )
            )
        elif s.expires and s.expires < today:
            out.append(
                SUPPRESSION_EXPIRED.finding(
                    s.path,
                    s.span,
                    f"suppression of {codes} expired on {s.expires.isoformat()}; the findings it covered "
                    "are reported again",
                    key=key,
                )
            )
        elif not s.used and not all((r := registry.get(c)) and r.meta.change for c in s.codes):
            # (suppressions of change-only rules are judged by change audits, not here)
            unsuppressible = [
                c for c in s.codes if (r := registry.get(c)) and not r.meta.suppressible
            ]
            why = (
                f"{', '.join(unsuppressible)} cannot be suppressed"
                if unsuppressible
                else "no finding matched it"
            )
            out.append(
                UNUSED_SUPPRESSION.finding(
                    s.path, s.span, f"suppression of {codes} is unused: {why}; remove it", key=key
                )
            )
    return out


def _apply_waivers(
    findings: list[Finding], context: AuditContext, today: date
) -> tuple[list[Finding], list[Suppression], list[Finding]]:
    waivers = context.config.waiver
    if not waivers:
        return findings, [], []
    used_index: set[int] = set()
    used: list[Suppression] = []
    out: list[Finding] = []
    for finding in findings:
        meta = registry.get(finding.code)
        if meta is not None and not meta.meta.suppressible:
            out.append(finding)
            continue
        for i, waiver in enumerate(waivers):
            if not (
                fnmatch(finding.path, waiver.path)
                and code_matches(finding.code, [waiver.code.upper()])
            ):
                continue
            if waiver.key and waiver.key not in finding.key:
                continue
            used_index.add(i)
            if waiver.expires and waiver.expires < today:
                continue
            record = Suppression(
                "waiver",
                waiver.reason,
                waiver.path,
                0,
                waiver.ticket,
                waiver.expires.isoformat() if waiver.expires else None,
            )
            finding = finding.suppress(record)
            if record not in used:
                used.append(record)
            break
        out.append(finding)
    extra: list[Finding] = []
    config_path = _config_label(context)
    for i, waiver in enumerate(waivers):
        key = f"waiver:{waiver.path}:{waiver.code}:{waiver.key or ''}"
        label = f"waiver for {waiver.code} on {waiver.path}" + (
            f" ({waiver.key})" if waiver.key else ""
        )
        if waiver.expires and waiver.expires < today:
            extra.append(
                SUPPRESSION_EXPIRED.finding(
                    config_path,
                    Span.point(1, 1),
                    f"{label} expired on {waiver.expires.isoformat()}",
                    key=key,
                )
            )
        elif i not in used_index:
            extra.append(
                UNUSED_SUPPRESSION.finding(
                    config_path, Span.point(1, 1), f"{label} matched no finding; remove it", key=key
                )
            )
    return out, used, extra


def _config_label(context: Any) -> str:
    return getattr(context, "config_path", None) or "kumo-audit.toml"
