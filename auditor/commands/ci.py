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
    from auditor.core.ci import detect
    from auditor.source.git import commits_between, merge_base, resolve_rev

    where = locate(args.policy)
    env = detect()
    base_ref = args.base or env.base_ref or "origin/main"
    head = resolve_rev(where.repo, args.head)
    base = merge_base(where.repo, resolve_rev(where.repo, base_ref), head)
    from auditor.pipeline.cache import parse_cache_for
    from auditor.source.git_snapshot import BlobReader

    reader = BlobReader(where.repo)  # one `git cat-file` for every state audited here
    cached = parse_cache_for(where.repo)
    try:
        if args.each_commit:
            commits = commits_between(where.repo, base, head)
            each_commit(args, where, base, head, commits, reader, cached)
        report, config = run_audit(args, where, base, head, reader, cached)
    finally:
        reader.close()
    status = exit_status(report, args.fail_on or config.fail_on)
    data = render_report(args, report, where, {"base": base, "head": head, "ci": env.name})
    if args.summary:
        from auditor.core.atomic import write_atomic
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
        _checkpoint_if_due(args, where, config, "ci" if env.name else None)
    return status


def _checkpoint_if_due(args: argparse.Namespace, where, config, actor_kind: str | None) -> None:  # type: ignore[no-untyped-def]
    """The configured checkpoint cadence (`[runbook] checkpoint_every` / `checkpoint_daily`)."""
    options = config.runbook
    if not options.checkpoint_every and not options.checkpoint_daily:
        return
    from auditor.runbook.checkpoint import due, maybe_checkpoint
    from auditor.runbook.store import open_store

    store = open_store(where.repo, args.runbook_branch, args.runbook_dir)
    point = maybe_checkpoint(
        store,
        every=options.checkpoint_every,
        daily=options.checkpoint_daily,
        repo=where.repo,
        actor_kind=actor_kind,
    )
    if point is not None:
        print(f"recorded runbook checkpoint {point.id}", file=sys.stderr)
    elif due(store, options.checkpoint_every, options.checkpoint_daily):
        print("runbook checkpoint due, but no signing key is configured", file=sys.stderr)


def _path(text: str):  # type: ignore[no-untyped-def]
    from pathlib import Path

    return Path(text)


def each_commit(  # type: ignore[no-untyped-def]
    args: argparse.Namespace, where, base: str, head: str, commits: list[str], reader, cached
) -> None:
    """One line per commit: its verdict on its own (parent to commit), with a progress bar on a TTY.

    A commit's verdict depends only on the two trees, the configuration and the tool, so it is cached
    under those: a second run over the same history parses and audits nothing again.
    """
    from auditor.core.secrets import Redactor, repository_salt, secrets_in_text
    from auditor.render.text import printable
    from auditor.source.git import run_git

    if not commits:
        return
    log = run_git(where.repo, "log", "--no-walk=unsorted", "--format=%H%x00%s", *commits).stdout
    subjects = dict(
        line.split("\0", 1) for line in log.decode(errors="replace").splitlines() if "\0" in line
    )
    redactor = Redactor(lambda: repository_salt(where.repo))  # the salt is read only if needed
    subjects = {c: redactor.text(s, secrets_in_text(s)) for c, s in subjects.items()}
    trees = _trees(where, [base, *commits])
    cache = verdict_cache(where.repo)
    options = _options_key(args)
    tty = sys.stderr.isatty()
    parent = base
    for index, commit in enumerate(commits, 1):
        if tty:
            done = int(30 * index / len(commits))
            sys.stderr.write(f"\r[{'#' * done}{'.' * (30 - done)}] {index}/{len(commits)}")
            sys.stderr.flush()
        key = f"{trees.get(parent)}..{trees.get(commit)}:{options}"
        verdict = cache.get("ci-verdict", key, "1") if cache else None
        if verdict is None:
            report, config = run_audit(_quiet(args), where, parent, commit, reader, cached)
            status = exit_status(report, args.fail_on or config.fail_on)
            verdict = (
                "blocked" if status else report.change.impact,
                len(report.introduced),
                len(report.resolved),
            )
            if cache:
                cache.put("ci-verdict", key, "1", verdict)
        if tty:
            sys.stderr.write("\r" + " " * 50 + "\r")
        impact, introduced, resolved = verdict  # type: ignore[misc]
        sys.stderr.write(
            f"{commit[:10]} {impact:<12} +{introduced} -{resolved}  "
            f"{printable(subjects.get(commit, ''))}\n"
        )
        parent = commit


def _trees(where, revisions: list[str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Tree id of the policy directory at each revision (one git call)."""
    from auditor.source.git import run_git

    suffix = f":{where.subdir}" if where.subdir else "^{tree}"
    proc = run_git(where.repo, "rev-parse", *(f"{r}{suffix}" for r in revisions), check=False)
    ids = proc.stdout.decode().split()
    return dict(zip(revisions, ids, strict=False)) if proc.returncode == 0 else {}


def _options_key(args: argparse.Namespace) -> str:
    """Everything besides the trees that decides a verdict: tool, API table, options, an explicit
    configuration file, day. The configuration of each state is in its tree."""
    import datetime
    import hashlib
    import json

    from auditor import __version__
    from auditor.kumo.api import load_api
    from auditor.pipeline.cache import code_fingerprint

    parts = {
        "tool": f"{__version__}:{code_fingerprint()}",
        "api": load_api().api_hash(),
        "select": sorted(args.select),
        "ignore": sorted(args.ignore),
        "fail_on": args.fail_on,
        "entry": args.entry,
        "path_map": sorted(args.path_map),
        "config": hashlib.sha256(args.config.read_bytes()).hexdigest() if args.config else None,
        "suppressions": not args.no_suppressions,
        "today": datetime.date.today().isoformat(),  # suppressions and waivers expire
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def verdict_cache(repo):  # type: ignore[no-untyped-def]
    from auditor.pipeline.cache import ContentCache, default_cache_dir

    directory = default_cache_dir(repo)
    return ContentCache(directory) if directory is not None else None


def _quiet(args: argparse.Namespace) -> argparse.Namespace:
    copy = argparse.Namespace(**vars(args))
    copy.baseline = None
    copy.write_baseline = None
    return copy
