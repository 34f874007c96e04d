"""A real Git repository in a temporary directory, driven through the git command line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import write_tree

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Alice Operator",
    "GIT_AUTHOR_EMAIL": "alice@example.net",
    "GIT_COMMITTER_NAME": "Alice Operator",
    "GIT_COMMITTER_EMAIL": "alice@example.net",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


class Repo:
    def __init__(self, path: Path, *, init: bool = True) -> None:
        self.path = path
        if init:
            path.mkdir(parents=True, exist_ok=True)
            self.git("init", "-q", "-b", "main")

    def git(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            text=True,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def write(self, files: dict[str, str | bytes]) -> None:
        write_tree(self.path, files)

    def commit(self, files: dict[str, str | bytes] | None = None, message: str = "change") -> str:
        if files:
            self.write(files)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def status(self) -> str:
        return self.git("status", "--porcelain")
