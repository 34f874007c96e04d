"""Files a user names on the command line (a configuration, a baseline, an allowed signers file, a
commit message) are read only when they are regular files under a size limit: `/dev/zero`, a named
pipe or a directory is a one-line error (exit 2) at once, never a hang or memory exhausted."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_runbook_support import cli

from auditor.core.small_file import SmallFileError, read_small_file
from tests.conftest import write_tree


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_tree(tmp_path, {"init.lua": "local kumo = require 'kumo'\n"})
    git = ["git", "-c", "user.name=A", "-c", "user.email=a@example.net"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], cwd=tmp_path, check=True)
    os.mkfifo(tmp_path / "pipe")
    return tmp_path


@pytest.mark.parametrize("target", ["/dev/zero", "pipe", "."], ids=["device", "fifo", "dir"])
@pytest.mark.parametrize(
    "command",
    [
        ["check", ".", "--config", "{}"],
        ["ci", "--base", "main", "--baseline", "{}"],
        ["runbook", "verify", "--allowed-signers", "{}"],
        ["hook", "commit-msg", "{}"],
    ],
    ids=["config", "baseline", "allowed-signers", "commit-msg"],
)
def test_a_named_file_that_is_not_regular_is_one_line(
    repo: Path, command: list[str], target: str
) -> None:
    # `cli` has a timeout: a regression would read /dev/zero until memory runs out
    proc = cli(*[target if a == "{}" else a for a in command], cwd=repo)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "is not a regular file" in proc.stderr


def test_reader_limit_edges_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    assert read_small_file(path, limit=10) == b"x" * 10  # the limit itself is read
    with pytest.raises(SmallFileError, match="over 9 bytes"):
        read_small_file(path, limit=9)
    with pytest.raises(SmallFileError, match="does not exist"):
        read_small_file(tmp_path / "missing")
    path.chmod(0)
    if os.geteuid() != 0:  # root reads anything
        with pytest.raises(SmallFileError, match="cannot read"):
            read_small_file(path)
    big = tmp_path / "big"
    big.write_bytes(b"y" * (3 << 20))  # read in chunks: more than one read call
    assert read_small_file(big) == b"y" * (3 << 20)
