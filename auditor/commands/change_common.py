"""What `diff`, `ci` and the pre-commit hook share: opening Git states, auditing, rendering, recording."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.commands.common import (
    add_output_options,
    add_record_options,
    load_explicit_config,
    output_plan,
    split_codes,
    use_color,
    write_outputs,
)
from auditor.core.errors import AuditError
from auditor.core.findings import Severity, at_or_above

FORMATS = ("text", "json", "sarif", "github", "junit", "codequality", "markdown")


def add_change_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="the policy directory inside the repository (default: current directory)",
    )
    parser.add_argument("--entry", default=None, help="entry file relative to the policy directory")
    add_output_options(parser, FORMATS)
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="do not report findings recorded in this baseline file",
    )
    parser.add_argument(
        "--write-baseline",
        type=Path,
        metavar="FILE",
        help="write the findings of the new state as a baseline file",
    )
    add_record_options(parser, "write a runbook entry for the decision")


@dataclass
class Located:
    repo: Path
    subdir: str  # the policy directory, relative to the repository root ("" = root)


def locate(policy: Path) -> Located:
    from auditor.source.git import find_repo

    policy = policy.resolve()
    if not policy.is_dir():
        raise AuditError(f"{policy} is not a directory")
    repo = find_repo(policy)
    if repo is None:
        raise AuditError(f"{policy} is not inside a Git repository")
    rel = policy.relative_to(repo.resolve()).as_posix()
    return Located(repo, "" if rel == "." else rel)


def audit_options(args: argparse.Namespace, cached=None):  # type: ignore[no-untyped-def]
    """The pipeline options the command line asks for. The configuration is read from each audited
    snapshot, unless `--config FILE` names one explicitly."""
    from auditor.kumo.paths import PathMap
    from auditor.pipeline import AuditOptions

    return AuditOptions(
        config=load_explicit_config(args.config),
        select=tuple(split_codes(args.select, "--select")),
        ignore=tuple(split_codes(args.ignore, "--ignore")),
        entry=args.entry,
        path_map=dict(PathMap.parse_option(o) for o in args.path_map),
        use_suppressions=not args.no_suppressions,
        cached=cached,
    )


def run_audit(  # type: ignore[no-untyped-def]
    args: argparse.Namespace,
    where: Located,
    base_spec: str | None,
    head_spec: str,
    reader=None,
    cached=None,
):
    """Audit head_spec as a change from base_spec (None: no previous state); `reader` and `cached`
    (a `BlobReader` of the repository, a parse cache) are shared by a caller auditing many changes."""
    from auditor.change import audit_git_change
    from auditor.pipeline.cache import parse_cache_for

    options = audit_options(args, cached or parse_cache_for(where.repo))
    report = audit_git_change(where.repo, base_spec, head_spec, options, where.subdir, reader)
    if args.baseline:
        from auditor.filter.baseline import apply_baseline, read_baseline

        apply_baseline(report, read_baseline(args.baseline))
    if args.write_baseline:
        from auditor.filter.baseline import write_baseline

        write_baseline(args.write_baseline, report.head.findings)
    return report, report.head.context.config


def exit_status(report, fail_on: str) -> int:  # type: ignore[no-untyped-def]
    """1 when the change introduces findings at or above `fail_on`; what was there before does not count."""
    return 1 if at_or_above(report.introduced, Severity.parse(fail_on)) else 0


def decision_of(report, status: int) -> str:  # type: ignore[no-untyped-def]
    if status:
        return "blocked"
    if report.change.impact == "restart":
        return "restart-required"
    return "accepted"


def render_report(args: argparse.Namespace, report, where: Located, extra: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    from auditor.render import render
    from auditor.render.base import RenderInput

    change = report.change_dict()
    change.update(extra)
    data = RenderInput(
        root=str(args.policy),
        findings=report.findings,
        summary=report.summary(),
        suppressions=report.suppressions,
        reload=report.change.reload_dict(),
        change=change,
        extra={"path_prefix": where.subdir, "tool": {"entry": report.head.entry}},
    )
    plan = output_plan(args.output_order)
    rendered = {fmt: render(fmt, data, color=use_color(target)) for fmt, target in plan}
    write_outputs(plan, rendered)
    return data  # type: ignore[return-value]


def record_decision(  # type: ignore[no-untyped-def]
    args: argparse.Namespace,
    report,
    where: Located,
    decision: str,
    base_rev: str | None,
    head_rev: str | None,
    *,
    actor_kind: str | None = None,
    links: list[tuple[str, str]] | None = None,
    why: str | None = None,
):
    """Write the runbook entry for this decision; returns the entry."""
    from auditor.kumo.api import load_api
    from auditor.rules.registry import ruleset_hash
    from auditor.runbook.gitinfo import change_from_git
    from auditor.runbook.model import Link, Rollback
    from auditor.runbook.record import EntryDraft, record
    from auditor.runbook.store import open_store

    summary = [f"{e.impact}: {e.element} ({e.path}:{e.line})" for e in report.change.elements][:200]
    change, commits = (None, [])
    if head_rev is not None:
        change, commits = change_from_git(where.repo, base_rev, head_rev, summary)
    rollback = None
    if base_rev is not None:
        rollback = Rollback(
            last_good=base_rev,
            command=f"git -C {where.repo} revert --no-edit {base_rev}..{head_rev or 'HEAD'}",
        )
    draft = EntryDraft(
        decision=decision,
        why=why,
        commits=commits,
        change=change,
        reload=report.change.reload_dict(),
        findings=report.introduced if decision == "blocked" else report.findings,
        api_table_version=load_api().release,
        ruleset_hash=ruleset_hash(),
        rollback=rollback,
        links=[Link(title=t, url=u) for t, u in (links or [])],
        environment=args.environment,
        actor_kind=actor_kind,  # type: ignore[arg-type]
    )
    store = open_store(where.repo, args.runbook_branch, args.runbook_dir)
    return record(store, draft, repo=where.repo)
