"""The `runbook` command: record, history, show, verify, report, push, pull.

`register(subparsers)` adds it to the main `kumo-audit` parser; every handler takes the parsed
arguments and returns the exit code, raising `AuditError` for anything the user must fix.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from auditor.core.decisions import DECISIONS, IMPACTS
from auditor.core.errors import AuditError


def register(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--repo", type=Path, help="policy Git repository (default: the one containing cwd)"
    )
    common.add_argument(
        "--branch", default="kumo-runbook", help="runbook branch (default: kumo-runbook)"
    )
    common.add_argument(
        "--runbook-dir", type=Path, help="use a plain directory instead of a branch"
    )

    runbook = subparsers.add_parser(
        "runbook", help="the Git-backed runbook of operational decisions"
    )
    commands = runbook.add_subparsers(dest="runbook_command", metavar="COMMAND", required=True)

    rec = commands.add_parser("record", parents=[common], help="record a manual decision")
    rec.add_argument(
        "--decision", required=True, choices=[d for d in DECISIONS if d != "checkpoint"]
    )
    rec.add_argument("--why", help="reason for the decision (ticket ids in it are extracted)")
    rec.add_argument(
        "--summary", help="one-line summary (default: first line of --why or the commit subject)"
    )
    rec.add_argument("--ticket", action="append", default=[], help="ticket id (repeatable)")
    rec.add_argument("--ticket-pattern", help="regular expression that finds ticket ids")
    rec.add_argument(
        "--base", help="revision before the change (fills change, commits and approvals)"
    )
    rec.add_argument("--head", help="revision after the change (default HEAD when --base is given)")
    rec.add_argument("--reload-impact", choices=IMPACTS)
    rec.add_argument("--environment", help="environment label, e.g. production")
    rec.add_argument("--decided-at", help="when it was decided (ISO 8601, UTC; default now)")
    rec.add_argument(
        "--review-due", help="date an emergency change must be reviewed by (YYYY-MM-DD)"
    )
    rec.add_argument(
        "--supersedes", metavar="ID", help="id (prefix) of the entry this one corrects"
    )
    rec.add_argument("--approved-by", action="append", default=[], metavar="'NAME <EMAIL>'")
    rec.add_argument("--link", action="append", default=[], metavar="URL")
    rec.add_argument("--rollback-to", metavar="REV", help="last good revision (default: --base)")
    rec.add_argument("--rollback-command", help="exact command that rolls the change back")
    rec.add_argument("--actor-kind", choices=("human", "ci", "daemon"))
    rec.add_argument(
        "--signing-key", metavar="KEY", help="SSH key to sign with (default: the configured key)"
    )
    rec.add_argument("--no-sign", action="store_true", help="do not sign, even with a key set")
    rec.add_argument("--format", choices=("text", "json"), default="text")
    rec.set_defaults(func=cmd_record)

    hist = commands.add_parser("history", parents=[common], help="list entries, filtered")
    hist.add_argument("--since", help="date or ISO 8601 time (inclusive)")
    hist.add_argument("--until", help="date or ISO 8601 time (inclusive)")
    hist.add_argument("--decision", action="append", default=[], choices=DECISIONS)
    hist.add_argument("--actor", help="substring of the actor's name or email")
    hist.add_argument("--file", help="changed file, directory or glob")
    hist.add_argument("--code", help="rule code among the findings")
    hist.add_argument("--host", help="host name (glob patterns allowed)")
    hist.add_argument("--writer", help="writer id (glob patterns allowed, e.g. 'daemon:*')")
    hist.add_argument("--format", choices=("text", "json"), default="text")
    hist.set_defaults(func=cmd_history)

    exp = commands.add_parser(
        "export", parents=[common], help="stream every entry as JSON lines or CSV (e.g. for a SIEM)"
    )
    exp.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    exp.add_argument("--since", help="date or ISO 8601 time (inclusive)")
    exp.add_argument("--until", help="date or ISO 8601 time (inclusive)")
    exp.add_argument("--decision", action="append", default=[], choices=DECISIONS)
    exp.add_argument("--host", help="host name (glob patterns allowed)")
    exp.add_argument("--writer", help="writer id (glob patterns allowed)")
    exp.set_defaults(func=cmd_export)

    show = commands.add_parser("show", parents=[common], help="print one entry")
    show.add_argument("id", help="entry id or a prefix of it")
    show.add_argument("--format", choices=("markdown", "json"), default="markdown")
    show.set_defaults(func=cmd_show)

    signers = argparse.ArgumentParser(add_help=False)
    signers.add_argument(
        "--allowed-signers",
        type=Path,
        metavar="FILE",
        help="OpenSSH allowed_signers file (default: Git config kumo-audit.allowedSignersFile, "
        "else .kumo-audit/allowed_signers committed on HEAD)",
    )
    ver = commands.add_parser(
        "verify",
        parents=[common, signers],
        help="check every entry, signature, hash chain and checkpoint",
    )
    ver.add_argument("--format", choices=("text", "json"), default="text")
    ver.add_argument(
        "--full", action="store_true", help="verify everything, not only what was added since"
    )
    ver.add_argument("--require-signed", action="store_true", help="an unsigned entry is a problem")
    ver.add_argument(
        "--accept-rewrite",
        action="store_true",
        help="accept, once, that the branch no longer holds what this clone verified last (a "
        "runbook restarted on purpose)",
    )
    ver.add_argument(
        "--expect-checkpoint",
        action="append",
        default=[],
        metavar="HASH",
        help="a checkpoint hash (or 8+ digit prefix) kept elsewhere that must still be there",
    )
    ver.set_defaults(func=cmd_verify)

    cp = commands.add_parser(
        "checkpoint",
        parents=[common, signers],
        help="write a signed checkpoint of every writer's chain head (or --show the latest)",
    )
    cp.add_argument("--show", action="store_true", help="print the latest checkpoint, write none")
    cp.add_argument("--signing-key", metavar="KEY", help="SSH key file (default: configured key)")
    cp.add_argument("--format", choices=("text", "json"), default="text")
    cp.set_defaults(func=cmd_checkpoint)

    flt = commands.add_parser(
        "fleet", parents=[common], help="which revision each host runs, and since when"
    )
    flt.add_argument("--format", choices=("text", "json"), default="text")
    flt.set_defaults(func=cmd_fleet)

    rep = commands.add_parser("report", parents=[common], help="write a static HTML report")
    rep.add_argument("--output", "-o", type=Path, required=True, help="output directory")
    rep.set_defaults(func=cmd_report)

    for name, func, text in (
        ("push", cmd_push, "push entries to a remote"),
        ("pull", cmd_pull, "pull entries"),
    ):
        sync = commands.add_parser(name, parents=[common], help=text)
        sync.add_argument("--remote", default="origin")
        sync.set_defaults(func=func)


def _store(args: argparse.Namespace) -> Any:
    from auditor.runbook.store import open_store

    return open_store(args.repo, args.branch, args.runbook_dir)


def _git_store(args: argparse.Namespace) -> Any:
    from auditor.runbook.store import GitStore

    if args.runbook_dir is not None:
        raise AuditError("push and pull work on a runbook branch, not on --runbook-dir")
    store = _store(args)
    assert isinstance(store, GitStore)
    return store


def _policy_repo(args: argparse.Namespace, required: bool) -> Path | None:
    from auditor.source.git import require_repo

    try:
        return require_repo(args.repo or Path.cwd(), " (use --repo or --runbook-dir)")
    except AuditError:
        if required:
            raise
        return None


def cmd_record(args: argparse.Namespace) -> int:
    from auditor.runbook import gitinfo
    from auditor.runbook.identity import split_name_email
    from auditor.runbook.model import Approval, Link, Rollback
    from auditor.runbook.record import EntryDraft, record, secrets_in_draft

    store = _store(args)
    needs_git = bool(args.base or args.head or args.rollback_to)
    repo = _policy_repo(args, required=needs_git)
    change = None
    commits: list[Any] = []
    if args.base or args.head:
        assert repo is not None
        change, commits = gitinfo.change_from_git(repo, args.base, args.head or "HEAD")
    rollback = None
    if args.rollback_to or args.rollback_command:
        last_good = gitinfo.resolve(repo, args.rollback_to) if args.rollback_to and repo else None
        rollback = Rollback(last_good=last_good, command=args.rollback_command)
        if rollback.command is None and last_good:
            rollback = Rollback(
                last_good=last_good, command=f"git revert --no-edit {last_good}..HEAD"
            )
    if args.review_due:
        try:
            date.fromisoformat(args.review_due)
        except ValueError:
            raise AuditError(
                f"--review-due {args.review_due!r}: use a date like 2026-12-31"
            ) from None
    approvals = [
        Approval(name=name, email=email, role="approved-by", source="manual")
        for name, email in (split_name_email(text) for text in args.approved_by)
    ]
    draft = EntryDraft(
        decision=args.decision,
        summary=args.summary,
        why=args.why,
        commits=commits,
        tickets=args.ticket,
        ticket_pattern=args.ticket_pattern or gitinfo.DEFAULT_TICKET_PATTERN,
        change=change,
        reload={"impact": args.reload_impact, "elements": []} if args.reload_impact else None,
        approvals=approvals,
        rollback=rollback,
        links=[Link(title=url, url=url) for url in args.link],
        supersedes=args.supersedes,
        review_due=args.review_due,
        environment=args.environment,
        decided_at=args.decided_at,
        actor_kind=args.actor_kind,
    )
    key = False if args.no_sign else (args.signing_key or None)
    hidden = secrets_in_draft(draft)
    entry = record(store, draft, repo=repo, signing_key=key)
    if hidden:
        print(
            f"kumo-audit: {len(hidden)} secret value(s) in the entry's text (--why, --summary, "
            "--link, commit messages) were recorded as markers, never as written",
            file=sys.stderr,
        )
    if args.format == "json":
        _print_json(entry.record())
    else:
        print(f"recorded {entry.decision} {entry.id} as {entry.file_name()} in {store.description}")
    return 0


def _moment(text: str | None, option: str, end_of_day: bool = False) -> str | None:
    from auditor.runbook.model import parse_moment

    if not text:
        return None
    try:
        return parse_moment(text, end_of_day=end_of_day)
    except ValueError:
        raise AuditError(
            f"{option} {text!r}: use a date (2026-11-29) or an ISO 8601 time"
        ) from None


def cmd_history(args: argparse.Namespace) -> int:
    from auditor.runbook.query import Filters, records, select

    store = _store(args)
    filters = Filters(
        since=_moment(args.since, "--since"),
        until=_moment(args.until, "--until", end_of_day=True),
        decisions=tuple(args.decision),
        actor=args.actor,
        file=args.file,
        code=args.code,
        host=args.host,
        writer=args.writer,
    )
    state = store.state()
    matches = select(store, filters, state)
    if args.format == "json":
        _print_json(records(store, matches, state))
        return 0
    names = _signer_names(args, store)
    for m in matches:
        f = m.front
        print(
            f"{f.get('decided_at')}  {f.get('decision', ''):<16} {str(f.get('id', ''))[:7]}  "
            f"{f.get('actor', '')}  @{f.get('host', '')}  {_signed_text(f, names)}  "
            f"{f.get('summary', '')}"
        )
    if not matches:
        print("no matching entries", file=sys.stderr)
    return 0


def _signer_names(args: argparse.Namespace, store: Any) -> dict[str, str]:
    """Key fingerprint -> the principals the allowed signers file names for it (best effort)."""
    from auditor.runbook.signing import load_allowed_signers, signers_by_fingerprint

    repo = getattr(store, "repo", None) or _policy_repo(args, required=False)
    try:
        allowed = load_allowed_signers(repo, getattr(args, "allowed_signers", None))
    except AuditError:
        return {}
    return signers_by_fingerprint(allowed) if allowed else {}


def _signed_text(front: dict[str, Any], names: dict[str, str]) -> str:
    key = front.get("signed_by")
    if not key:
        return "unsigned"
    return f"signed:{names.get(key, key)}"


def cmd_export(args: argparse.Namespace) -> int:
    from auditor.runbook.export import export
    from auditor.runbook.query import Filters

    store = _store(args)
    filters = Filters(
        since=_moment(args.since, "--since"),
        until=_moment(args.until, "--until", end_of_day=True),
        decisions=tuple(args.decision),
        host=args.host,
        writer=args.writer,
    )
    export(store, filters, args.format, sys.stdout)
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from auditor.runbook.checkpoint import write_checkpoint
    from auditor.runbook.verify import checkpoint_summary, verify_store

    store = _store(args)
    repo = getattr(store, "repo", None) or _policy_repo(args, required=False)
    if args.show:
        from auditor.runbook.signing import load_allowed_signers

        report = verify_store(
            store, allowed=load_allowed_signers(repo, args.allowed_signers), repo=repo
        )
        latest = report.latest_checkpoint()
        if latest is None:
            raise AuditError(f"no checkpoint in {store.description}")
        summary = checkpoint_summary(latest)
        summary["verified"] = report.ok
    else:
        entry = write_checkpoint(store, repo=repo, signing_key=args.signing_key or None)
        assert entry.checkpoint is not None
        summary = {
            "id": entry.id,
            "hash": entry.hash,
            "name": entry.file_name(),
            "writer": entry.writer,
            "recorded_at": entry.recorded_at,
            "entries": entry.checkpoint.entries,
            "heads": entry.checkpoint.model_dump()["heads"],
            "signature": "signed",
        }
    if args.format == "json":
        _print_json(summary)
        return 0
    verb = "latest checkpoint" if args.show else "wrote checkpoint"
    print(
        f"{verb} {summary['hash']} ({summary['name']}): {summary['entries']} entries in "
        f"{len(summary['heads'])} writer chains, recorded {summary['recorded_at']} "
        f"by writer {summary['writer']}, {summary['signature']}"
        + (f" ({summary.get('signer')})" if summary.get("signer") else "")
    )
    for writer, head in sorted(summary["heads"].items()):
        print(f"  {writer}: {head['entries']} entries, head {head['hash']}")
    if args.show and not summary.get("verified", True):
        print("the runbook does not verify: run `kumo-audit runbook verify`", file=sys.stderr)
        return 1
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from auditor.runbook.markdown import EntryFormatError, parse_entry_file
    from auditor.runbook.query import find

    store = _store(args)
    name, data = find(store, args.id)
    if args.format == "json":
        try:
            _print_json(parse_entry_file(data).record)
        except EntryFormatError as exc:
            raise AuditError(f"{name}: {exc}") from None
    else:
        sys.stdout.write(data.decode("utf-8", "replace"))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from auditor.runbook.signing import load_allowed_signers
    from auditor.runbook.verify import verify_store

    store = _store(args)
    repo = getattr(store, "repo", None) or _policy_repo(args, required=False)
    allowed = load_allowed_signers(repo, args.allowed_signers)
    if args.require_signed and allowed is None:
        raise AuditError(
            "--require-signed needs an allowed signers file (--allowed-signers, Git config "
            "kumo-audit.allowedSignersFile, or .kumo-audit/allowed_signers committed on HEAD)"
        )
    report = verify_store(
        store,
        allowed=allowed,
        require_signed=args.require_signed,
        full=args.full,
        repo=repo,
        expect_checkpoints=tuple(args.expect_checkpoint),
        accept_rewrite=args.accept_rewrite,
    )
    if args.format == "json":
        _print_json(report.as_dict())
        return 0 if report.ok else 1
    for note in report.notes:
        print(f"note: {note}")
    latest = report.latest_checkpoint()
    if latest is not None:
        print(
            f"latest checkpoint: {latest.hash} ({latest.name}), {latest.checkpoint_entries} "
            f"entries, {latest.signature or 'unsigned'}"
            + (f" by {latest.principals or latest.signer}" if latest.signer else "")
        )
    how = (
        f"incremental: {report.checked} new since the last verify" if report.incremental else "full"
    )
    if report.ok:
        print(
            f"ok: {report.entries} entries in {report.writers} writer chains verified, "
            f"{report.signed} signed ({how}; {store.description})"
        )
    else:
        for p in report.problems:
            print(f"{p.kind}: {p.name}: {p.detail}")
        print(
            f"{len(report.problems)} problem(s) in {report.entries} entries ({store.description})"
        )
    return 0 if report.ok else 1


def cmd_fleet(args: argparse.Namespace) -> int:
    from auditor.runbook.fleet import fleet, render_text

    rows = fleet(_store(args))
    print(
        json.dumps(rows, indent=2, sort_keys=True) if args.format == "json" else render_text(rows)
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from auditor.runbook.report import write_report

    count = write_report(_store(args), args.output)
    print(f"wrote a report of {count} entries to {args.output / 'index.html'}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from auditor.runbook.sync import push

    print(push(_git_store(args), args.remote))
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from auditor.runbook.sync import pull

    print(pull(_git_store(args), args.remote))
    return 0


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
