"""`kumo-audit install-hooks [--force] [--commit-msg]`: install the Git hooks into a repository.

The hooks go where Git looks for them (`git rev-parse --git-path hooks`, which honours
`core.hooksPath`). A hook we did not write is never overwritten without `--force`, and with it is kept
as `NAME.kumo-audit-backup` (numbered when that exists). The installed script remembers this Python
interpreter, so it works from a virtualenv that is not on PATH; it falls back to `kumo-audit` on PATH.
The same scripts, without a remembered interpreter, are shipped as `hooks/pre-commit` and
`hooks/commit-msg`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from auditor.core.errors import AuditError, UsageError

MARKER = "(installed-by: kumo-audit)"

_DESCRIPTIONS = {
    "pre-commit": (
        "# Audits exactly what is staged (the index) against HEAD and refuses the commit when the change\n"
        "# introduces error findings. Bypass once with: git commit --no-verify\n"
        "# Install with: kumo-audit install-hooks\n"
    ),
    "commit-msg": (
        "# Requires a ticket reference in the message when the staged change needs a kumod restart\n"
        "# or uses a suppression. Bypass once with: git commit --no-verify\n"
        "# Install with: kumo-audit install-hooks --commit-msg\n"
    ),
}
_ARGS = {"pre-commit": "hook pre-commit", "commit-msg": 'hook commit-msg "$1"'}


def hook_script(kind: str, python: str | None = None) -> str:
    """The shell script for hook `kind`; `python` (an interpreter with kumo-audit) is tried first."""
    default = shlex.quote(python) if python else ""
    if default.startswith("'"):
        default = '"' + python.replace('"', '\\"') + '"'  # type: ignore[union-attr]
    return (
        "#!/bin/sh\n"
        f"# kumo-audit {kind} hook {MARKER}.\n"
        f"{_DESCRIPTIONS[kind]}"
        f'KUMO_AUDIT_PYTHON="${{KUMO_AUDIT_PYTHON:-{default}}}"\n'
        'if [ -n "$KUMO_AUDIT_PYTHON" ] && [ -x "$KUMO_AUDIT_PYTHON" ]; then\n'
        f'    exec "$KUMO_AUDIT_PYTHON" -m auditor.commands.{_ARGS[kind]}\n'
        "fi\n"
        "if command -v kumo-audit >/dev/null 2>&1; then\n"
        f"    exec kumo-audit {_ARGS[kind]}\n"
        "fi\n"
        'echo "kumo-audit: not found (pip install kumo-audit, or set KUMO_AUDIT_PYTHON); '
        'commit refused" >&2\n'
        'echo "kumo-audit: bypass once with: git commit --no-verify" >&2\n'
        "exit 1\n"
    )


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "install-hooks",
        help="install the kumo-audit Git hooks into the current repository",
        description="Install the pre-commit hook (and with --commit-msg the commit-msg hook) where Git "
        "looks for hooks (core.hooksPath is honoured).",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a hook kumo-audit did not write (it is kept as NAME.kumo-audit-backup)",
    )
    parser.add_argument(
        "--commit-msg", action="store_true", help="also install the commit-msg hook"
    )
    parser.add_argument(
        "--repo", type=Path, default=Path("."), metavar="DIR", help="repository (default: here)"
    )
    parser.set_defaults(func=run)


def hooks_dir(repo: Path) -> Path:
    from auditor.source.git import run_git

    out = run_git(repo, "rev-parse", "--git-path", "hooks").stdout.decode().strip()
    path = Path(out)
    return path if path.is_absolute() else (repo / path)


def backup_name(target: Path) -> Path:
    candidate = target.with_name(f"{target.name}.kumo-audit-backup")
    number = 1
    while candidate.exists():
        number += 1
        candidate = target.with_name(f"{target.name}.kumo-audit-backup.{number}")
    return candidate


def install(repo: Path, kind: str, force: bool, python: str | None) -> str:
    """Install one hook; returns a one-line description of what was done."""
    directory = hooks_dir(repo)
    target = directory / kind
    text = hook_script(kind, python)
    note = ""
    if target.exists() or target.is_symlink():
        try:
            current = target.read_text(encoding="utf-8", errors="replace")
        except OSError:
            current = ""
        if current == text:
            return f"{target}: already installed"
        if MARKER not in current:
            if not force:
                raise UsageError(
                    f"{target} exists and was not written by kumo-audit; "
                    "rerun with --force to replace it (it will be kept as a backup)"
                )
            backup = backup_name(target)
            os.replace(target, backup)
            note = f" (previous hook kept as {backup.name})"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{kind}.{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o755)
        os.replace(tmp, target)
    except OSError as exc:
        raise AuditError(f"cannot write {target}: {exc.strerror or exc}") from None
    return f"{target}: installed{note}"


def run(args: argparse.Namespace) -> int:
    from auditor.source.git import find_repo

    repo = find_repo(args.repo)
    if repo is None:
        raise UsageError(f"{args.repo.resolve()} is not inside a Git repository")
    kinds = ["pre-commit", *(["commit-msg"] if args.commit_msg else [])]
    for kind in kinds:
        print(install(repo, kind, args.force, sys.executable))
    return 0
