"""Audit a change: both states through the check pipeline, the change set, the change rules (Cxxx)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from auditor.change.changeset import ChangeSet, compute
from auditor.check import CheckResult, audit_snapshot
from auditor.config import DEFAULT, Config
from auditor.errors import AuditError
from auditor.filter import apply_filters
from auditor.findings import Finding, Suppression, dedupe_fingerprints
from auditor.rules import registry
from auditor.snapshot import Snapshot


@dataclass
class ChangeContext:
    """What a change rule reads: both states and the change set."""

    base: CheckResult | None
    head: CheckResult
    change: ChangeSet
    config: Config


@dataclass
class ChangeReport:
    base: CheckResult | None
    head: CheckResult
    change: ChangeSet
    change_findings: list[Finding] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        """Every finding of the new state plus the change rules' findings."""
        return sorted(self.head.findings + self.change_findings, key=Finding.sort_key)

    @property
    def introduced(self) -> list[Finding]:
        return sorted(
            self.change.introduced + [f for f in self.change_findings if not f.suppressed],
            key=Finding.sort_key,
        )

    @property
    def resolved(self) -> list[Finding]:
        return sorted(self.change.resolved, key=Finding.sort_key)

    def summary(self) -> dict[str, Any]:
        summary = self.head.summary()
        counted = [f for f in self.findings if not f.suppressed]
        summary["findings"] = len(counted)
        summary["by_severity"] = {
            s: sum(1 for f in counted if f.severity.value == s)
            for s in ("error", "warning", "info")
        }
        summary["suppressed"] = len(self.findings) - len(counted)
        summary["introduced"] = len(self.introduced)
        summary["resolved"] = len(self.resolved)
        summary["changed_files"] = len(self.change.changed_files)
        return summary

    def change_dict(self) -> dict[str, Any]:
        return {
            "introduced": [f.as_dict() for f in self.introduced],
            "resolved": [f.as_dict() for f in self.resolved],
            "changed_files": sorted(set(self.change.changed_files)),
            "shaping": self.change.shaping,
            "values": [
                {
                    "path": v.path,
                    "key": v.label().split(" ", 1)[1],
                    "line": v.line,
                    "before": v.before,
                    "after": v.after,
                }
                for v in self.change.value_changes
            ],
        }


LOAD_ERRORS = ("E101", "E102", "E105")


def unloadable(result: CheckResult) -> set[str]:
    """Lua files of a state that KumoMTA could not load: their model is incomplete."""
    lua = set(result.context.model.modules) | {result.entry}
    return {
        f.path
        for f in result.findings
        if f.code in LOAD_ERRORS and (f.path in lua or f.path.endswith(".lua"))
    }


def audit_change(
    base: Snapshot | None,
    head: Snapshot,
    config: Config = DEFAULT,
    *,
    entry: str | None = None,
    path_map_overrides: dict[str, str] | None = None,
    cached: Callable[[str, str, Callable[[], object]], object] | None = None,
    use_suppressions: bool = True,
) -> ChangeReport:
    """Audit `head` as a change from `base` (None: everything is new, e.g. the first commit)."""
    head_result = audit_snapshot(
        head,
        config,
        entry=entry,
        path_map_overrides=path_map_overrides,
        cached=cached,
        use_suppressions=use_suppressions,
    )
    base_result: CheckResult | None = None
    if base is not None:
        try:
            base_result = audit_snapshot(
                base,
                config,
                entry=entry or head_result.entry,
                path_map_overrides=path_map_overrides,
                cached=cached,
                use_suppressions=use_suppressions,
            )
        except AuditError:
            base_result = None  # no policy before this change (e.g. init.lua added now)
    change = compute(base_result, head_result)
    context = ChangeContext(base_result, head_result, change, config)
    raw: list[Finding] = []
    rules = [] if unloadable(head_result) else registry.iter_checks(change=True)
    for rule_obj in rules:
        if rule_obj.check is not None:
            raw.extend(rule_obj.check(context))
    raw = dedupe_fingerprints(raw)
    filtered, used = apply_filters(
        raw, head_result.context, use_suppressions=use_suppressions, suppression_findings=False
    )
    return ChangeReport(base_result, head_result, change, filtered, head_result.suppressions + used)
