"""`kumo-audit diff BASE [HEAD]` and `kumo-audit diff --staged`: audit a change between two states."""

from __future__ import annotations

import argparse

from auditor.commands.change_common import (
    add_change_options,
    decision_of,
    exit_status,
    locate,
    record_decision,
    render_report,
    run_audit,
)
from auditor.core.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "diff",
        help="audit the change between two states of the policy repository",
        description="Audit HEAD (default: the working tree) as a change from BASE: reload impact, "
        "findings introduced and resolved, change rules.",
    )
    parser.add_argument("base", nargs="?", help="base revision (e.g. main, HEAD~1)")
    parser.add_argument("head", nargs="?", help="head revision (default: the working tree)")
    parser.add_argument(
        "--staged",
        action="store_true",
        help="audit what is staged (the index) as a change from HEAD",
    )
    add_change_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from auditor.source.git import head_commit, resolve_rev

    where = locate(args.policy)
    if args.staged:
        if args.base or args.head:
            raise UsageError("--staged takes no revisions (it compares the index with HEAD)")
        base_spec = head_commit(where.repo)  # None before the first commit
        head_spec = "INDEX"
    else:
        if not args.base:
            raise UsageError("diff needs a BASE revision, or --staged")
        base_spec = resolve_rev(where.repo, args.base)
        head_spec = resolve_rev(where.repo, args.head) if args.head else "WORKTREE"
    report, config = run_audit(args, where, base_spec, head_spec)
    status = exit_status(report, args.fail_on or config.fail_on)
    head_rev = head_spec if head_spec not in ("WORKTREE", "INDEX") else None
    render_report(args, report, where, {"base": base_spec, "head": head_rev or head_spec.lower()})
    if args.record:
        entry = record_decision(
            args, report, where, decision_of(report, status), base_spec, head_rev
        )
        import sys

        print(f"recorded runbook entry {entry.id} ({entry.decision})", file=sys.stderr)
    return status
