"""Audit a change: both states through the check pipeline, the change set, the change rules (Cxxx)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.change.changeset import ChangeSet, compute, unloadable
from auditor.config.settings import Config
from auditor.core.errors import AuditError
from auditor.core.findings import Finding, Suppression, dedupe_fingerprints
from auditor.data.locate import render_path
from auditor.filter.apply import apply_filters
from auditor.pipeline.api import AuditOptions, resolve_config
from auditor.pipeline.stages import AuditResult, audit_snapshot
from auditor.rules import registry
from auditor.source.snapshot import FileProblem, Snapshot

if TYPE_CHECKING:
    from auditor.source.git_snapshot import BlobReader


@dataclass
class ChangeContext:
    """What a change rule reads: both states and the change set."""

    base: AuditResult | None
    head: AuditResult
    change: ChangeSet
    config: Config


@dataclass
class ChangeResult:
    base: AuditResult | None
    head: AuditResult
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
                    "key": render_path(v.key),
                    "line": v.line,
                    "before": v.before,
                    "after": v.after,
                }
                for v in self.change.value_changes
            ],
        }


def audit_change(
    base: Snapshot | None, head: Snapshot, options: AuditOptions | None = None
) -> ChangeResult:
    """Audit `head` as a change from `base` (None: everything is new, e.g. the first commit).

    Both states are audited with the configuration of `head` (the state being decided on), read
    from the head snapshot unless `options.config` is given.
    """
    options = options or AuditOptions()
    config, source = resolve_config(head, options)
    head.size_limit = config.size_limit
    if base is not None:
        base.size_limit = config.size_limit
    head_result = audit_snapshot(
        head,
        config,
        entry=options.entry,
        path_map_overrides=dict(options.path_map),
        cached=options.cached,
        use_suppressions=options.use_suppressions,
        today=options.today,
    )
    base_result: AuditResult | None = None
    if base is not None:
        try:
            base_result = audit_snapshot(
                base,
                config,
                entry=options.entry or head_result.entry,
                path_map_overrides=dict(options.path_map),
                cached=options.cached,
                use_suppressions=options.use_suppressions,
                today=options.today,
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
        raw,
        head_result.context,
        use_suppressions=options.use_suppressions,
        suppression_findings=False,
    )
    if options.config is None:
        filtered += _config_relaxations(base, head, source)  # not filtered by what they describe
    return ChangeResult(base_result, head_result, change, filtered, head_result.suppressions + used)


def _config_relaxations(base: Snapshot | None, head: Snapshot, source: str | None) -> list[Finding]:
    """C107: what the head state's configuration relaxes compared with the base state's."""
    from auditor.change.config_change import relaxation_findings
    from auditor.config.load import config_from_snapshot
    from auditor.config.settings import DEFAULT

    base_config, base_source = DEFAULT, None
    if base is not None:
        try:
            base_config, base_source = config_from_snapshot(base)
        except AuditError:
            base_config = DEFAULT  # an unreadable old configuration: compare with the defaults
    head_config, _ = config_from_snapshot(head)
    path = source or base_source
    text = None
    if path is not None:
        snapshot = head if source else base
        try:
            text = snapshot.read(path).decode("utf-8", "replace") if snapshot else None
        except (OSError, FileProblem):
            text = None
    return relaxation_findings(base_config, head_config, path, text)


def audit_git_change(
    repo: Path,
    base: str | None,
    head: str,
    options: AuditOptions | None = None,
    subdir: str | None = None,
    reader: BlobReader | None = None,
) -> ChangeResult:
    """`audit_change` of two states of a Git repository: "INDEX", "WORKTREE" or a revision (base
    None: no previous state), with the policy in `subdir` of the repository. Both states are read
    through one `git cat-file` process: `reader` (a `BlobReader` of the repository, kept open by the
    caller across many changes), else one started and stopped here."""
    from auditor.source.git_snapshot import BlobReader, find_repo, open_snapshot

    if reader is None:
        top = find_repo(repo)
        own = BlobReader(top) if top is not None else None  # one `git cat-file` for both states
    else:
        own = None
    shared = reader or own
    try:
        head_snapshot = open_snapshot(repo, head, subdir or None, reader=shared)
        try:
            base_snapshot = (
                open_snapshot(repo, base, subdir or None, reader=shared) if base else None
            )
            try:
                return audit_change(base_snapshot, head_snapshot, options)
            finally:
                if base_snapshot is not None:
                    base_snapshot.close()
        finally:
            head_snapshot.close()
    finally:
        if own is not None:
            own.close()
