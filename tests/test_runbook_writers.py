"""Writers: one id per writing store, any number of writers per host, older runbooks keep verifying."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_runbook_support import cli, commit_file, configure, git, make_repo
from test_runbook_support import runbook_env as runbook_env  # the fixture

from auditor.runbook.store import GitStore
from auditor.runbook.verify import verify_store

pytestmark = pytest.mark.usefixtures("runbook_env")


def ok(proc) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def two_clones(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A bare remote and two clones of it on this host, used by the same person."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    a = make_repo(tmp_path / "a")
    git(a, "remote", "add", "origin", str(remote))
    git(a, "push", "-q", "origin", "main")
    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(remote), str(b))
    configure(b, "Jane Doe", "jane@example.com")
    return remote, a, b


def test_two_clones_on_one_host_are_two_writers(two_clones: tuple[Path, Path, Path]) -> None:
    remote, a, b = two_clones
    base = git(a, "rev-parse", "HEAD")
    commit_file(a, "init.lua", "local kumo = require 'kumo'\n-- a\n", "Edit in clone A")
    proc = cli("ci", "--base", base, "--record", cwd=a)
    assert proc.returncode in (0, 1), proc.stderr
    ok(cli("runbook", "push", cwd=a))
    commit_file(b, "init.lua", "local kumo = require 'kumo'\n-- b\n", "Edit in clone B")
    proc = cli("ci", "--base", base, "--record", cwd=b)
    assert proc.returncode in (0, 1), proc.stderr
    ok(cli("runbook", "push", cwd=b))
    ok(cli("runbook", "pull", cwd=a))

    writer_a = git(a, "config", "--get", "kumo-audit.writer-human")
    writer_b = git(b, "config", "--get", "kumo-audit.writer-human")
    assert writer_a != writer_b
    assert writer_a.startswith("human:host-a:") and writer_b.startswith("human:host-a:")
    out = ok(cli("runbook", "verify", cwd=a))
    assert "2 entries in 2 writer chains" in out
    ok(cli("runbook", "record", "--decision", "note", "--why", "still mine", cwd=a))
    report = verify_store(GitStore(a))
    assert report.ok and report.writers == 2 and report.entries == 3
    entries = json.loads(ok(cli("runbook", "history", "--format", "json", cwd=a)))
    mine = [e for e in entries if e["writer"] == writer_a]
    assert len(mine) == 2 and mine[1]["prev_hash"] == mine[0]["hash"]
    assert verify_store(GitStore(remote)).ok


def test_runbooks_written_under_per_host_ids_keep_verifying(
    two_clones: tuple[Path, Path, Path],
) -> None:
    """Older tools named the writer `<kind>:<host>`: two clones forked one chain under it."""
    _, a, b = two_clones
    legacy = {"KUMO_AUDIT_WRITER": "human:host-a"}
    for repo, text in ((a, "from a"), (b, "from b")):
        ok(cli("runbook", "record", "--decision", "note", "--why", text, cwd=repo, env=legacy))
        ok(
            cli(
                "runbook",
                "record",
                "--decision",
                "note",
                "--why",
                text + " 2",
                cwd=repo,
                env=legacy,
            )
        )
        ok(cli("runbook", "push", cwd=repo))
    ok(cli("runbook", "pull", cwd=a))
    out = ok(cli("runbook", "verify", cwd=a))
    assert "note: writer id human:host-a (older per-host form) was shared" in out
    # Tampering inside such a chain is still caught.
    report = verify_store(GitStore(a))
    assert report.ok and report.entries == 4
    forked = {"KUMO_AUDIT_WRITER": "human:host-a:0123abcd"}
    for repo in (a, b):
        why = f"new id in {repo.name}"  # two identical entries would be one file, not a fork
        ok(cli("runbook", "record", "--decision", "note", "--why", why, cwd=repo, env=forked))
        ok(cli("runbook", "push", cwd=repo))
    ok(cli("runbook", "pull", cwd=a))
    proc = cli("runbook", "verify", cwd=a)
    assert (
        proc.returncode == 1
        and "writer human:host-a:0123abcd has several first entries" in proc.stdout
    )


def test_three_clones_record_and_push_concurrently(tmp_path: Path) -> None:
    """Three clones record and push at the same time; pushes retry; no entry is lost."""
    import os
    import subprocess
    import sys

    from test_runbook_support import ROOT

    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    seed = make_repo(tmp_path / "seed")
    git(seed, "remote", "add", "origin", str(remote))
    git(seed, "push", "-q", "origin", "main")
    clones = []
    for n in range(3):
        clone = tmp_path / f"clone{n}"
        git(tmp_path, "clone", "-q", str(remote), str(clone))
        configure(clone, f"Op {n}", f"op{n}@example.com")
        clones.append(clone)
    script = (
        "import sys; from pathlib import Path\n"
        "from auditor.runbook.record import EntryDraft, record\n"
        "from auditor.runbook.store import GitStore\n"
        "from auditor.runbook.sync import push\n"
        "store = GitStore(Path(sys.argv[1]))\n"
        "for i in range(4):\n"
        "    record(store, EntryDraft(decision='note', why=f'{sys.argv[1]} {i}'))\n"
        "    push(store, 'origin')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(clone)], env=env, stderr=subprocess.PIPE, text=True
        )
        for clone in clones
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    for clone in clones:
        ok(cli("runbook", "pull", cwd=clone))
    expected = set(GitStore(remote).state().names)
    assert len(expected) == 12
    for repo in (remote, *clones):
        assert set(GitStore(repo).state().names) == expected
        report = verify_store(GitStore(repo), full=True)
        assert report.ok, report.problems
        assert report.writers == 3
