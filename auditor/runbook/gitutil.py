"""Running Git plumbing commands; failures become one-line `AuditError`s."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from auditor.core.errors import AuditError

ZERO_OID = "0" * 40


class GitFailed(AuditError):
    """A Git command exited non-zero."""

    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        first = next((line for line in stderr.splitlines() if line.strip()), "").strip()
        super().__init__(f"git {' '.join(args[:2])} failed: {first or f'exit {returncode}'}")
        self.returncode = returncode
        self.stderr = stderr


def git(
    repo: Path,
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> str:
    """Run `git -C repo args...` and return stdout as text (stripped of the final newline)."""
    return (
        git_bytes(repo, *args, input=input, env=env, check=check)
        .decode("utf-8", "replace")
        .rstrip("\n")
    )


def git_bytes(
    repo: Path,
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> bytes:
    full_env = None
    if env:
        full_env = {**os.environ, **env}
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args],
            input=input,
            capture_output=True,
            env=full_env,
            check=False,
        )
    except FileNotFoundError:
        raise AuditError("git is not installed or not on PATH") from None
    if check and proc.returncode != 0:
        raise GitFailed(list(args), proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return proc.stdout


def find_repo(start: Path) -> Path:
    """The top of the Git repository containing `start` (its git dir for a bare repository)."""
    if not start.exists():
        raise AuditError(f"{start}: no such directory")
    proc = subprocess.run(
        ["git", "-C", str(start), "rev-parse", "--is-bare-repository", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise AuditError(f"{start} is not inside a Git repository (use --repo or --runbook-dir)")
    lines = proc.stdout.splitlines()
    if lines and lines[0] == "true":
        return Path(git(start, "rev-parse", "--absolute-git-dir"))
    return Path(lines[1]) if len(lines) > 1 else start


def git_dir(repo: Path) -> Path:
    return Path(git(repo, "rev-parse", "--absolute-git-dir"))


def rev_parse(repo: Path, rev: str) -> str | None:
    """The object id `rev` names, or None if it names nothing."""
    out = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    return out or None


def config_value(repo: Path, key: str) -> str | None:
    out = git(repo, "config", "--get", key, check=False)
    return out or None
