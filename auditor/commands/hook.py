"""`kumo-audit hook pre-commit|commit-msg|lint`: what the Git hooks and the pre-commit framework run.

- `hook pre-commit` audits the **index** (exactly what will be committed) as a change from HEAD (no base
  before the first commit). It blocks (exit 1) on error findings the change introduces, printed as
  `file:line:col: CODE message` relative to the repository top, prints the reload impact in one line,
  and exits 0 at once when nothing staged touches the policy tree.
- `hook commit-msg FILE` requires a ticket reference (Config.ticket_pattern) in the message when the
  staged change needs a kumod restart or uses a suppression in a changed file.
- `hook lint FILE...` (per-file pre-commit hook) audits the policy containing the files (working tree)
  and reports only findings located in those files; a file the policy does not load is audited on its
  own (a data file as the helper file its name or content tells, a Lua file as a module).

Where the policy is: `--policy DIR`, else `git config kumo-audit.policy`, else the shallowest directory
of the index holding one of the entry candidates (`init.lua`, `policy/init.lua`, `etc/policy/init.lua`,
...) — the repository root when the policy is at the top.

The gate fails closed: a named policy directory that is not in the index, a configuration it cannot
read, an index it cannot read, a staged change to a second policy it was not told to guard, or one
that deletes the policy entry ends the hook with exit 2 and one line, unless the staged change touches
no policy file (`.lua`, `.toml`, `.json`) at all.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from auditor.core.errors import AuditError, UsageError
from auditor.core.impacts import CONSEQUENCE
from auditor.kumo.paths import ENTRY_CANDIDATES

MAX_PRINTED = 50


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "hook",
        help="run as a Git hook (pre-commit, commit-msg) or as a per-file lint",
        description="Entry points for Git hooks and the pre-commit framework.",
    )
    kinds = parser.add_subparsers(dest="hook", metavar="HOOK")

    pre = kinds.add_parser("pre-commit", help="audit the staged change (the index) against HEAD")
    _common(pre)
    pre.set_defaults(func=run_pre_commit)

    msg = kinds.add_parser(
        "commit-msg",
        help="require a ticket reference for restart-impact changes or new suppressions",
    )
    msg.add_argument("message_file", type=Path, metavar="FILE", help="the commit message file")
    _common(msg)
    msg.set_defaults(func=run_commit_msg)

    lint = kinds.add_parser("lint", help="report findings located in the given files")
    lint.add_argument("files", nargs="*", type=Path, metavar="FILE")
    _common(lint)
    lint.set_defaults(func=run_lint)
    parser.set_defaults(func=lambda _args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        default=None,
        metavar="DIR",
        help="policy directory relative to the repository top (default: git config "
        "kumo-audit.policy, else found from the entry file in the index)",
    )
    parser.add_argument("--entry", default=None, help="entry file relative to the policy directory")
    parser.add_argument("--config", type=Path, metavar="FILE", help="configuration file to use")
    parser.add_argument(
        "--fail-on",
        choices=("error", "warning", "info"),
        default=None,
        help="lowest severity that blocks (default: the configuration's fail_on, error)",
    )


# -- locating the repository and the policy ---------------------------------------------------------


def _repo() -> Path:
    from auditor.source.git import find_repo

    repo = find_repo(Path.cwd())
    if repo is None:
        raise AuditError("not inside a Git repository")
    return repo


def index_paths(repo: Path) -> list[str]:
    from auditor.source.git import run_git

    out = run_git(repo, "ls-files", "-z", "--cached").stdout
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


POLICY_SUFFIXES = (".lua", ".toml", ".json")


def find_policy(repo: Path, option: str | None, paths: list[str] | None = None) -> str:
    """The policy directory relative to the repository top ("" = the top)."""
    return locate_policy(repo, option, paths)[0]


def locate_policy(
    repo: Path, option: str | None, paths: list[str] | None = None
) -> tuple[str, str | None, list[str]]:
    """(policy directory relative to the top, where it was named or None when discovered, the other
    discovered policy directories)."""
    from auditor.source.git import run_git

    origin = "--policy" if option is not None else None
    if option is None:
        configured = run_git(repo, "config", "--get", "kumo-audit.policy", check=False)
        option = configured.stdout.decode().strip() or None
        origin = "git config kumo-audit.policy" if option is not None else None
    if option is not None:
        rel = Path(option)
        full = (rel if rel.is_absolute() else repo / rel).resolve()
        try:
            inner = full.relative_to(repo.resolve()).as_posix()
        except ValueError:
            raise UsageError(f"policy directory {option} is outside the repository") from None
        return ("" if inner == "." else inner), origin, []
    found: list[str] = []
    for path in index_paths(repo) if paths is None else paths:
        if not path.endswith("init.lua"):
            continue
        for candidate in ENTRY_CANDIDATES:
            if path == candidate:
                found.append("")
            elif path.endswith("/" + candidate):
                found.append(path[: -len(candidate) - 1])
    if not found:
        return "", None, []
    chosen = min(found, key=lambda d: (d.count("/") + bool(d), d))
    return chosen, None, sorted({d for d in found if d != chosen})


def _policy_files(paths: list[str]) -> list[str]:
    return [p for p in paths if p.endswith(POLICY_SUFFIXES)]


def _in_index(repo: Path, subdir: str) -> bool:
    """True when the index holds files under directory `subdir` ("" = the top)."""
    from auditor.source.git import run_git

    if not subdir:
        return True
    out = run_git(repo, "ls-files", "-z", "--cached", "--", subdir).stdout
    prefix = subdir.encode("utf-8", "surrogateescape") + b"/"
    return any(p.startswith(prefix) for p in out.split(b"\0"))


def _guarded(repo: Path, args: argparse.Namespace, changed: list[str]) -> str | None:
    """The policy directory to audit, or None when the staged change touches no policy file.
    Raises when the policy cannot be found but the change touches policy files (fail closed)."""
    subdir, origin, others = locate_policy(repo, args.policy)
    touched = _policy_files(changed)
    if origin is not None and not _in_index(repo, subdir):
        if not touched:
            return None
        raise AuditError(
            f"policy directory '{subdir}' (from {origin}) is not a directory of the index, so the "
            f"staged {touched[0]} cannot be audited: fix {origin} (or commit with --no-verify)"
        )
    if origin is None and not subdir and not touched:
        return None  # no policy found and no policy-looking file staged
    stray = [d for d in others if not under(d, subdir) and any(under(p, d) for p in changed)]
    if stray:
        raise AuditError(
            f"the staged change touches the policy in {stray[0]}, but the hook audits "
            f"{subdir or 'the repository top'} (several policies here): name the one to guard with "
            "`git config kumo-audit.policy DIR` or --policy DIR"
        )
    return subdir


def staged_changes(repo: Path, head: str | None) -> list[str]:
    """Paths the commit would add, change or delete (the whole index before the first commit)."""
    from auditor.source.git import run_git

    if head is None:
        return index_paths(repo)
    out = run_git(repo, "diff-index", "--cached", "--no-renames", "--name-only", "-z", head).stdout
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def under(path: str, subdir: str) -> bool:
    return not subdir or path == subdir or path.startswith(subdir + "/")


def audit_staged(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """(report, config, located, changed paths) for the index against HEAD, or None when nothing staged
    is under the policy directory."""
    from auditor.source.git import head_commit, repo_state

    repo = _repo()
    head = head_commit(repo)
    changed = staged_changes(repo, head)
    subdir = _guarded(repo, args, changed)
    if subdir is None:
        return None
    relevant = [p for p in changed if under(p, subdir)]
    if not relevant:
        return None
    from auditor.change import audit_git_change
    from auditor.commands.change_common import Located
    from auditor.config.settings import load_explicit
    from auditor.pipeline import AuditOptions
    from auditor.pipeline.cache import parse_cache_for

    options = AuditOptions(
        config=load_explicit(args.config) if args.config else None,
        entry=args.entry,
        cached=parse_cache_for(repo),
    )
    report = audit_git_change(repo, head, "INDEX", options, subdir)
    return report, report.head.context.config, Located(repo, subdir), relevant, repo_state(repo)


# -- pre-commit ------------------------------------------------------------------------------------


def location(finding, prefix: str) -> str:  # type: ignore[no-untyped-def]
    path = f"{prefix}/{finding.path}" if prefix else finding.path
    return f"{path}:{finding.span.line}:{finding.span.column}"


def impact_line(report) -> str:  # type: ignore[no-untyped-def]
    """One line: what the change touches at its strongest impact, and what that means."""
    change = report.change
    impact = change.impact
    names = list(dict.fromkeys(e.element for e in change.elements if e.impact == impact))
    if not names:
        return f"reload impact: {impact}: {CONSEQUENCE.get(impact, impact)}"
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (
        f"reload impact: {impact}: this commit changes {shown}: {CONSEQUENCE.get(impact, impact)}"
    )


def run_pre_commit(args: argparse.Namespace) -> int:
    from auditor.core.findings import Severity, at_or_above

    try:
        audited = audit_staged(args)
    except AuditError:
        alone = staged_alone(args)
        if alone is None:
            raise
        return alone
    if audited is None:
        return 0
    report, config, where, _changed, state = audited
    threshold = Severity.parse(args.fail_on or config.fail_on)
    blocking = at_or_above(report.introduced, threshold)
    out = sys.stderr
    if state != "clean":
        print(f"kumo-audit: {state} in progress: auditing the staged result against HEAD", file=out)
    from auditor.render.text import printable

    for finding in blocking[:MAX_PRINTED]:
        print(
            printable(f"{location(finding, where.subdir)}: {finding.code} {finding.message}"),
            file=out,
        )
        if finding.fix:
            print(f"    fix: {printable(finding.fix)}", file=out)
    if len(blocking) > MAX_PRINTED:
        print(f"... and {len(blocking) - MAX_PRINTED} more", file=out)
    if blocking:
        print(
            f"kumo-audit: commit refused: {len(blocking)} finding(s) at or above "
            f"{threshold.value} introduced by this change (bypass: git commit --no-verify)",
            file=out,
        )
        return 1
    print(f"kumo-audit: {printable(impact_line(report))}", file=out)
    return 0


def staged_alone(args: argparse.Namespace) -> int | None:
    """A repository without a policy entry (no init.lua staged, none configured): every staged data
    or Lua file is audited on its own, as its helper's data file or as a module. None when there is a
    policy entry after all (its error stands)."""
    from auditor.core.findings import Severity, at_or_above
    from auditor.pipeline import AuditOptions, audit
    from auditor.pipeline.api import resolve_config
    from auditor.source.git import head_commit
    from auditor.source.git_snapshot import open_snapshot

    repo = _repo()
    paths = index_paths(repo)
    if args.entry or args.policy or any(p.rsplit("/", 1)[-1] == "init.lua" for p in paths):
        return None
    changed = staged_changes(repo, head_commit(repo))
    present = set(paths)
    deleted = [p for p in changed if p not in present and p.rsplit("/", 1)[-1] == "init.lua"]
    if deleted:  # the policy the gate guarded goes away: nothing is left to audit it as
        raise AuditError(
            f"the staged change deletes the policy entry {deleted[0]}: kumod would have no policy "
            "to load (it exits at start, and a running kumod fails every new Lua context); restore "
            "it, or commit with --no-verify if the policy is meant to go"
        )
    files = [p for p in changed if p in paths and p.endswith((".lua", ".toml", ".json"))]
    shown = []
    with open_snapshot(repo, "INDEX", None) as snapshot:
        config, _ = resolve_config(snapshot, AuditOptions())
        if config.entry:
            return None
        for path in files:
            result = audit(snapshot, AuditOptions(entry=path))
            shown.extend(f for f in result.findings if not f.suppressed and f.path == path)
    threshold = Severity.parse(args.fail_on or config.fail_on)
    blocking = at_or_above(shown, threshold)
    for finding in blocking[:MAX_PRINTED]:
        print(f"{location(finding, '')}: {finding.code} {finding.message}", file=sys.stderr)
    if blocking:
        print(
            f"kumo-audit: commit refused: {len(blocking)} finding(s) at or above "
            f"{threshold.value} in the staged files (bypass: git commit --no-verify)",
            file=sys.stderr,
        )
        return 1
    return 0


# -- commit-msg ------------------------------------------------------------------------------------


def message_text(path: Path) -> str:
    """The commit message without Git's comment lines and the verbose diff."""
    from auditor.core.small_file import SmallFileError, read_small_file

    try:
        raw = read_small_file(path).decode("utf-8", errors="replace")
    except SmallFileError as exc:
        raise UsageError(str(exc)) from None
    lines = []
    for line in raw.splitlines():
        if line.startswith("# ------------------------ >8 ------------------------"):
            break
        if not line.startswith("#"):
            lines.append(line)
    return "\n".join(lines)


def run_commit_msg(args: argparse.Namespace) -> int:
    import re

    message = message_text(args.message_file)
    audited = audit_staged(args)
    if audited is None:
        return 0
    report, config, where, changed, _state = audited
    reasons = []
    if report.change.impact == "restart":
        reasons.append(f"it needs a kumod restart ({impact_line(report)})")
    prefix = f"{where.subdir}/" if where.subdir else ""
    used = sorted(
        {
            f"{prefix}{s.path}:{s.line}"
            for s in report.suppressions
            if f"{prefix}{s.path}" in changed and s.kind in ("inline", "file")
        }
    )
    if used:
        reasons.append(f"it uses suppressions in changed files ({', '.join(used[:5])})")
    if not reasons:
        return 0
    try:
        pattern = re.compile(config.ticket_pattern)
    except re.error as exc:
        raise UsageError(f"invalid ticket_pattern {config.ticket_pattern!r}: {exc}") from None
    if pattern.search(message):
        return 0
    print(
        f"kumo-audit: commit message needs a ticket reference (matching {config.ticket_pattern}) "
        f"because {'; and '.join(reasons)}",
        file=sys.stderr,
    )
    return 1


# -- per-file lint ---------------------------------------------------------------------------------


def run_lint(args: argparse.Namespace) -> int:
    from auditor.commands.common import load_explicit_config
    from auditor.core.findings import Severity, at_or_above
    from auditor.pipeline import AuditOptions, audit
    from auditor.pipeline.api import resolve_config
    from auditor.pipeline.cache import parse_cache_for
    from auditor.source.git_snapshot import open_snapshot

    if not args.files:
        return 0
    repo = _repo()
    top = repo.resolve()
    subdir = find_policy(repo, args.policy)
    wanted: set[str] = set()
    for file in args.files:
        full = (file if file.is_absolute() else Path.cwd() / file).resolve()
        try:
            rel = full.relative_to(top).as_posix()
        except ValueError:
            continue
        if under(rel, subdir):
            wanted.add(rel[len(subdir) + 1 :] if subdir else rel)
    if not wanted:
        return 0
    options = AuditOptions(
        config=load_explicit_config(args.config),
        entry=args.entry,
        cached=parse_cache_for(repo),
    )
    shown = []
    with open_snapshot(repo, "WORKTREE", subdir or None) as snapshot:
        try:
            result = audit(snapshot, options)
        except AuditError:
            config = resolve_config(snapshot, options)[0]
            if options.entry or config.entry:
                raise
            covered: set[str] = set()  # no policy entry here: every file is audited on its own
        else:
            config = result.context.config
            shown = [f for f in result.findings if not f.suppressed and f.path in wanted]
            covered = set(result.context.model.modules) | set(result.context.data)
        for alone in sorted(wanted - covered):
            if not snapshot.exists(alone) or not alone.endswith((".lua", ".toml", ".json")):
                continue
            # a file the policy does not load: a data file by its role, a Lua file as a module
            own = audit(snapshot, dataclasses.replace(options, entry=alone))
            shown.extend(f for f in own.findings if not f.suppressed and f.path == alone)
    threshold = Severity.parse(args.fail_on or config.fail_on)
    from auditor.render.text import printable

    for finding in shown:
        print(
            printable(
                f"{location(finding, subdir)}: {finding.code} [{finding.severity.value}] "
                f"{finding.message}"
            )
        )
    return 1 if at_or_above(shown, threshold) else 0


if __name__ == "__main__":  # `python -m auditor.commands.hook HOOK ...`, what installed hooks run
    from auditor.cli import main

    sys.exit(main(["hook", *sys.argv[1:]]))
