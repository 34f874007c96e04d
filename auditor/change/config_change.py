"""A change to the audited configuration is part of the change: what it relaxes is reported (C107).

The configuration comes from each audited state, so a commit can carry a new `ignore`, a lowered
`fail_on` or a new waiver together with the policy edit it would let through. Both states of the change
are judged with the new configuration; these findings say what the new configuration stops reporting.
They are not filtered by the configuration they describe.
"""

from __future__ import annotations

from collections.abc import Iterator

from auditor.config.settings import Config
from auditor.core.findings import Finding, Severity, Span

_LENIENCY = {"info": 0, "warning": 1, "error": 2}


def relaxations(base: Config, head: Config) -> Iterator[tuple[str, str]]:
    """(configuration key, what the head configuration relaxes) for each relaxation of `base`."""
    for code in head.ignore:
        if code not in base.ignore:
            yield "ignore", f"`ignore` now drops {code} findings"
    if head.select and set(head.select) != set(base.select):
        narrower = not base.select or any(
            not any(b.startswith(h) for h in head.select) for b in base.select
        )
        if narrower:
            shown = ", ".join(head.select)
            yield (
                "select",
                f"`select` now reports only {shown} (other codes are no longer reported)",
            )
    for code, level in sorted(head.severity.items()):
        before = base.severity.get(code) or _default_severity(code)
        if before and Severity.parse(level).rank < Severity.parse(before).rank:
            yield "severity", f"`severity` lowers {code} from {before} to {level}"
    for entry in head.per_path_ignores:
        if entry not in base.per_path_ignores:
            codes = ", ".join(entry.codes)
            yield "per_path_ignores", f"`per_path_ignores` now drops {codes} in {entry.path}"
    if _LENIENCY[head.fail_on] > _LENIENCY[base.fail_on]:
        yield "fail_on", f"`fail_on` raised from {base.fail_on} to {head.fail_on}"
    for waiver in head.waiver:
        if waiver not in base.waiver:
            yield (
                "waiver",
                f"new [[waiver]] for {waiver.code} at {waiver.path} {waiver.key}: {waiver.reason}",
            )
    for bound in base.bounds:
        if bound not in head.bounds:
            yield "bounds", f"bound on {bound.key} removed"
    yield from _thresholds(base, head)
    if head.entry != base.entry and base.entry is not None:
        yield "entry", f"`entry` changed from {base.entry} to {head.entry or 'the default'}"


def _thresholds(base: Config, head: Config) -> Iterator[tuple[str, str]]:
    b, h = base.thresholds, head.thresholds
    for name in ("relay_ipv4_min_prefix", "relay_ipv6_min_prefix"):
        if getattr(h, name) < getattr(b, name):
            yield name, f"`thresholds.{name}` widened from {getattr(b, name)} to {getattr(h, name)}"
    if h.rate_jump_factor > b.rate_jump_factor:
        yield (
            "rate_jump_factor",
            f"`thresholds.rate_jump_factor` raised from {b.rate_jump_factor} to {h.rate_jump_factor}",
        )
    if h.min_max_age != b.min_max_age:
        from auditor.kumo.values import parse_duration

        try:
            shorter = parse_duration(h.min_max_age) < parse_duration(b.min_max_age)
        except ValueError:
            shorter = True
        if shorter:
            yield (
                "min_max_age",
                f"`thresholds.min_max_age` lowered from {b.min_max_age} to {h.min_max_age}",
            )


def _default_severity(code: str) -> str | None:
    from auditor.rules import registry

    found = registry.get(code)
    return found.meta.severity.value if found else None


def relaxation_findings(
    base: Config, head: Config, path: str | None, text: str | None
) -> list[Finding]:
    """C107 findings at the configuration file of the new state (or of the old one, when the new
    state has none)."""
    from auditor.rules.change import CONFIG_RELAXED

    lines = (text or "").splitlines()
    out = []
    for key, message in relaxations(base, head):
        line = next((i for i, t in enumerate(lines, 1) if key in t), 1)
        out.append(
            CONFIG_RELAXED.finding(
                path or "kumo-audit.toml",
                Span.point(line, 1),
                f"the configuration change relaxes the audit: {message}",
                key=f"config:{message}",
            )
        )
    return out
