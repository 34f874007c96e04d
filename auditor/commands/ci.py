"""`kumo-audit ci --base REF`: audit everything a branch changes since its merge base with REF."""

from __future__ import annotations

import argparse
import sys

from auditor.commands.change_common import (
    add_change_options,
    decision_of,
    exit_status,
    locate,
    record_decision,
    render_report,
    run_audit,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "ci",
        help="audit a branch's whole change for CI (merge base of --base and HEAD to HEAD)",
        description="Audit the change from the merge base of --base and HEAD to HEAD; fails on "
        "error findings the change introduces.",
    )
    parser.add_argument(
        "--base",
        default=None,
        help="the target branch (default: detected from the CI environment, else origin/main)",
    )
    parser.add_argument("--head", default="HEAD", help="the revision to audit (default: HEAD)")
    parser.add_argument(
        "--each-commit",
        action="store_true",
        help="also audit every commit between the merge base and HEAD on its own",
    )
    parser.add_argument(
        "--summary",
        default=None,
        metavar="FILE",
        help="write a Markdown job summary to FILE (e.g. $GITHUB_STEP_SUMMARY)",
    )
    add_change_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from auditor.change.gitrepo import commits_between, merge_base, resolve_rev
    from auditor.commands.ci_env import detect

    where = locate(args.policy)
    env = detect()
    base_ref = args.base or env.base_ref or "origin/main"
    head = resolve_rev(where.repo, args.head)
    base = merge_base(where.repo, resolve_rev(where.repo, base_ref), head)
    if args.each_commit:
        each_commit(args, where, base, head, commits_between(where.repo, base, head))
    report, config, _ = run_audit(args, where, base, head)
    status = exit_status(report, args.fail_on or config.fail_on)
    data = render_report(args, report, where, {"base": base, "head": head, "ci": env.name})
    if args.summary:
        from auditor.commands.common import write_atomic
        from auditor.render import render

        write_atomic(_path(args.summary), render("markdown", data))
    if args.record:
        entry = record_decision(
            args,
            report,
            where,
            decision_of(report, status),
            base,
            head,
            actor_kind="ci" if env.name else None,
            links=env.links,
        )
        print(f"recorded runbook entry {entry.id} ({entry.decision})", file=sys.stderr)
    return status


def _path(text: str):  # type: ignore[no-untyped-def]
    from pathlib import Path

    return Path(text)


def each_commit(args: argparse.Namespace, where, base: str, head: str, commits: list[str]) -> None:  # type: ignore[no-untyped-def]
    """One line per commit: its verdict on its own (parent to commit), with a progress bar on a TTY."""
    from auditor.change.gitrepo import run_git

    tty = sys.stderr.isatty()
    parent = base
    for index, commit in enumerate(commits, 1):
        if tty:
            done = int(30 * index / max(len(commits), 1))
            sys.stderr.write(f"\r[{'#' * done}{'.' * (30 - done)}] {index}/{len(commits)}")
            sys.stderr.flush()
        report, config, _ = run_audit(_quiet(args), where, parent, commit)
        status = exit_status(report, args.fail_on or config.fail_on)
        subject = (
            run_git(where.repo, "log", "-1", "--format=%s", commit)
            .stdout.decode(errors="replace")
            .strip()
        )
        verdict = "blocked" if status else report.change.impact
        if tty:
            sys.stderr.write("\r" + " " * 50 + "\r")
        sys.stderr.write(
            f"{commit[:10]} {verdict:<12} +{len(report.introduced)} -{len(report.resolved)}  {subject}\n"
        )
        parent = commit


def _quiet(args: argparse.Namespace) -> argparse.Namespace:
    copy = argparse.Namespace(**vars(args))
    copy.baseline = None
    copy.write_baseline = None
    return copy
