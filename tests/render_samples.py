"""Findings and render inputs shared by the renderer tests (built directly, no audit run)."""

from __future__ import annotations

from typing import Any

import auditor.rules  # noqa: F401  (fills the registry)
from auditor.core.findings import Finding, Severity, Span, Suppression
from auditor.render.base import RenderInput
from auditor.rules.registry import get

NASTY = 'bad value 100% of `x` | a, b: c\r\nsecond <line> & "quoted" \x01 end'


def meta(code: str):  # type: ignore[no-untyped-def]
    registered = get(code)
    assert registered is not None, f"{code} is not registered"
    return registered.meta


def sample_findings() -> list[Finding]:
    """A mix: every severity, a multi-line span, a suppressed finding, an unregistered code, odd text."""
    inline = Suppression(
        "inline", "legacy handler, removed in OPS-7", "init.lua", 11, ticket="OPS-7"
    )
    waiver = Suppression("waiver", "vendor requires it", "waivers.toml", 3, expires="2030-01-01")
    return [
        meta("E204").finding("init.lua", Span(4, 3, 4, 20), "unknown function kumo.foo", key="foo"),
        meta("E201").finding(
            "init.lua", Span(20, 1, 26, 4), "second handler for 'smtp_server_message_received'"
        ),
        meta("E201")
        .finding("init.lua", Span(12, 1, 12, 10), "duplicate handler", key="dup")
        .suppress(inline),
        meta("X001").finding("policy/sub dir/é.lua", Span(2, 5, 2, 5), NASTY, key="nasty"),
        Finding(
            code="Z999",
            name="custom-check",
            severity=Severity.INFO,
            message="informational note",
            path="data/shaping.toml",
            span=Span(7, 1, 7, 9),
        ),
        meta("E204")
        .finding("data/shaping.toml", Span(1, 1, 1, 2), "waived thing", key="w")
        .with_severity(Severity.WARNING)
        .suppress(waiver),
    ]


def summary_of(findings: list[Finding], files: int = 3) -> dict[str, Any]:
    counted = [f for f in findings if not f.suppressed]
    return {
        "files": files,
        "findings": len(counted),
        "suppressed": len(findings) - len(counted),
        "by_severity": {s.value: sum(f.severity == s for f in counted) for s in Severity},
    }


def sample_input(**extra: Any) -> RenderInput:
    findings = sample_findings()
    return RenderInput(
        root="policy",
        findings=findings,
        summary=summary_of(findings),
        suppressions=[f.suppression for f in findings if f.suppression],
        extra=dict(extra),
    )


def many_findings(n_errors: int, n_warnings: int, n_infos: int) -> list[Finding]:
    out: list[Finding] = []
    for severity, count in (
        (Severity.ERROR, n_errors),
        (Severity.WARNING, n_warnings),
        (Severity.INFO, n_infos),
    ):
        for i in range(count):
            out.append(
                meta("E204")
                .finding(
                    "init.lua",
                    Span(i + 1, 1, i + 1, 5),
                    f"{severity.value} {i}",
                    key=f"{severity.value}{i}",
                )
                .with_severity(severity)
            )
    return out
