"""Several writers, two clones, one bare remote: push/pull merge entries without loss."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_runbook_support import ROOT, cli, configure, git, make_repo
from test_runbook_support import runbook_env as runbook_env  # the fixture

from auditor.runbook.store import GitStore
from auditor.runbook.verify import verify_store

pytestmark = pytest.mark.usefixtures("runbook_env")


@pytest.fixture
def clones(tmp_path: Path) -> tuple[Path, Path, Path]:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    one = make_repo(tmp_path / "one")
    git(one, "remote", "add", "origin", str(remote))
    git(one, "push", "-q", "origin", "main")
    two = tmp_path / "two"
    git(tmp_path, "clone", "-q", str(remote), str(two))
    configure(two, "Sam Ops", "sam@example.com")
    return remote, one, two


def run(repo: Path, host: str, *args: str) -> str:
    proc = cli("runbook", *args, cwd=repo, env={"KUMO_AUDIT_HOST": host})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def entry_names(repo: Path) -> set[str]:
    return set(GitStore(repo).state().names)


def test_two_writers_push_and_pull(clones: tuple[Path, Path, Path]) -> None:
    remote, one, two = clones
    status = {r: git(r, "status", "--porcelain=v1") for r in (one, two)}
    run(one, "cfg-1", "record", "--decision", "blocked", "--why", "S201 open relay OPS-1")
    run(one, "cfg-1", "record", "--decision", "accepted", "--why", "relay fixed OPS-1")
    run(two, "cfg-2", "record", "--decision", "restart-required", "--why", "listener moved OPS-2")

    assert "pushed" in run(one, "cfg-1", "push")
    assert "pushed" in run(two, "cfg-2", "push")  # has to merge the remote's entries first
    assert "pulled" in run(one, "cfg-1", "pull")

    everything = entry_names(remote)
    assert len(everything) == 3
    assert entry_names(one) == entry_names(two) == everything
    for repo in (remote, one, two):
        report = verify_store(GitStore(repo))
        assert report.ok, report.problems
        assert report.writers == 2
    assert {r: git(r, "status", "--porcelain=v1") for r in (one, two)} == status
    assert git(one, "rev-parse", "HEAD") == git(two, "rev-parse", "HEAD")

    history = run(two, "cfg-2", "history", "--format", "text")
    assert sorted(line.split()[1] for line in history.splitlines()) == [
        "accepted",
        "blocked",
        "restart-required",
    ]
    assert "up-to-date" in run(one, "cfg-1", "pull")


def test_concurrent_pushes_retry_until_everything_arrives(clones: tuple[Path, Path, Path]) -> None:
    remote, one, two = clones
    for repo, host in ((one, "cfg-1"), (two, "cfg-2")):
        for i in range(3):
            run(repo, host, "record", "--decision", "note", "--why", f"{host} note {i}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for round_ in range(3):
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "auditor", "runbook", "push"],
                cwd=repo,
                env={**env, "KUMO_AUDIT_HOST": host},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for repo, host in ((one, "cfg-1"), (two, "cfg-2"))
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        for repo, host in ((one, "cfg-1"), (two, "cfg-2")):
            run(repo, host, "record", "--decision", "note", "--why", f"{host} round {round_}")
    run(one, "cfg-1", "push")
    run(two, "cfg-2", "push")
    run(one, "cfg-1", "pull")
    assert len(entry_names(remote)) == 12
    assert entry_names(one) == entry_names(remote)
    assert verify_store(GitStore(remote)).ok


def test_push_without_a_remote_is_a_one_line_error(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "solo")
    run(repo, "cfg-1", "record", "--decision", "note", "--why", "x")
    proc = cli("runbook", "push", "--remote", "nowhere", cwd=repo)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    proc = cli("runbook", "push", "--runbook-dir", str(tmp_path / "d"), cwd=repo)
    assert proc.returncode == 2 and "runbook branch" in proc.stderr
