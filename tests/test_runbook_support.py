"""Helpers shared by the runbook tests: real Git repositories in temporary directories."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Variables that would change who the actor is or which writer chain is used.
IDENTITY_VARS = (
    "SUDO_USER",
    "KUMO_AUDIT_ACTOR",
    "KUMO_AUDIT_HOST",
    "KUMO_AUDIT_WRITER",
    "GITHUB_ACTIONS",
    "GITHUB_ACTOR",
    "GITHUB_REPOSITORY",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "GITLAB_CI",
    "GITLAB_USER_LOGIN",
    "GITLAB_USER_EMAIL",
    "CI",
    "CI_PROJECT_PATH",
    "CI_PIPELINE_ID",
    "CI_JOB_ID",
)


@pytest.fixture
def runbook_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No global or system Git config, no inherited identity variables."""
    for name in IDENTITY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("KUMO_AUDIT_HOST", "host-a")


def git(cwd: Path, *args: str, input: bytes | None = None) -> str:
    proc = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, input=input, check=True
    )
    return proc.stdout.decode().rstrip("\n")


def make_repo(path: Path, name: str = "Jane Doe", email: str = "jane@example.com") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    configure(path, name, email)
    (path / "init.lua").write_text("local kumo = require 'kumo'\n")
    git(path, "add", "init.lua")
    git(path, "commit", "-q", "-m", "Initial policy")
    return path


def configure(repo: Path, name: str, email: str) -> None:
    git(repo, "config", "user.name", name)
    git(repo, "config", "user.email", email)


def commit_file(repo: Path, rel: str, content: str, message: str) -> str:
    target = repo / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    git(repo, "add", rel)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def branch_files(repo: Path, ref: str = "kumo-runbook") -> dict[str, bytes]:
    names = git(repo, "ls-tree", "-r", "--name-only", ref).splitlines()
    return {
        n: subprocess.run(
            ["git", "-C", str(repo), "show", f"{ref}:{n}"], capture_output=True, check=True
        ).stdout
        for n in names
    }


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m auditor ARGS` as a real subprocess."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "auditor", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def at(minutes: int) -> datetime:
    """A fixed point in time, `minutes` after 2026-03-01 00:00 UTC."""
    return datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=minutes)
