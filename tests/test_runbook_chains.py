"""The chain-head index: recording reads only the entries added since the last record, stays right
after other writers' entries arrive by pull, and is rebuilt when the branch was rewritten."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_runbook_support import at, git, make_repo
from test_runbook_support import runbook_env as runbook_env  # the fixture

from auditor.runbook import chains
from auditor.runbook.record import EntryDraft, record
from auditor.runbook.store import GitStore
from auditor.runbook.sync import pull, push
from auditor.runbook.verify import verify_store

pytestmark = pytest.mark.usefixtures("runbook_env")


def full_read(store: GitStore) -> Path:
    """The file the store writes when it reads the front matter of every entry."""
    return store.private / "summaries.json"


def note(store: GitStore, why: str, minute: int, **extra: object):  # type: ignore[no-untyped-def]
    return record(store, EntryDraft(decision="note", why=why, **extra), now=at(minute))  # type: ignore[arg-type]


def test_recording_reads_only_new_entries_and_follows_pulled_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    one = make_repo(tmp_path / "one")
    git(one, "remote", "add", "origin", str(remote))
    git(one, "push", "-q", "origin", "main")
    two = make_repo(tmp_path / "two")
    git(two, "remote", "add", "origin", str(remote))
    mine, theirs = GitStore(one), GitStore(two)

    previous = None
    for minute in range(1, 6):
        entry = note(mine, f"one {minute}", minute)
        assert entry.prev_hash == (previous.hash if previous else None)
        previous = entry
    full_read(mine).unlink(missing_ok=True)  # from here on, a full read would write it again
    push(mine, "origin")

    monkeypatch.setenv("KUMO_AUDIT_WRITER", "human:two:1")
    pull(theirs, "origin")
    other = [note(theirs, f"two {m}", 10 + m) for m in range(3)]
    assert other[0].prev_hash is None and other[2].prev_hash == other[1].hash
    push(theirs, "origin")
    monkeypatch.delenv("KUMO_AUDIT_WRITER")

    pull(mine, "origin")  # a fast-forward bringing the other writer's entries
    after_pull = note(mine, "one again", 20)
    assert after_pull.prev_hash == previous.hash
    # the pulled writer's chain continues from its own last entry, known without a full read
    monkeypatch.setenv("KUMO_AUDIT_WRITER", "human:two:1")
    continued = note(mine, "two continued here", 21)
    assert continued.prev_hash == other[-1].hash
    assert not full_read(mine).exists()
    index = chains.load(mine)
    assert index is not None and index.commit == mine.head()
    assert verify_store(mine).ok


def test_a_rewritten_branch_or_a_damaged_index_rebuilds_it(tmp_path: Path) -> None:
    store = GitStore(make_repo(tmp_path / "repo"))
    first = note(store, "first", 1)
    after_first = store.head()
    note(store, "second", 2)
    third = note(store, "third", 3)
    # the branch moved back to an earlier commit: the index's commit is not an ancestor any more
    git(store.repo, "update-ref", "refs/heads/kumo-runbook", str(after_first))
    again = note(store, "after the reset", 4)
    assert again.prev_hash == first.hash

    fourth = note(store, "fourth", 5)
    assert fourth.prev_hash == again.hash
    path = next(store.private.glob("chains-*.json"))
    damaged = path.read_bytes().replace(fourth.hash.encode(), third.hash.encode())
    path.write_bytes(damaged)  # edited: its seal no longer matches
    fifth = note(store, "fifth", 6)
    assert fifth.prev_hash == fourth.hash
    assert verify_store(store).ok


def test_an_entry_removed_from_the_branch_is_not_chained_to(tmp_path: Path) -> None:
    store = GitStore(make_repo(tmp_path / "repo"))
    first = note(store, "first", 1)
    second = note(store, "second", 2)
    # a later commit deletes the newest entry (verify reports it; the chain must not name it)
    name = next(n for n in store.state().names if second.short_id in n)
    env = {**os.environ, "GIT_INDEX_FILE": str(tmp_path / "index")}
    for args in (["read-tree", "kumo-runbook"], ["rm", "-q", "--cached", name]):
        subprocess.run(["git", *args], cwd=store.repo, env=env, check=True)
    tree = subprocess.run(
        ["git", "write-tree"], cwd=store.repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    commit = git(store.repo, "commit-tree", tree, "-p", "kumo-runbook", "-m", "drop an entry")
    git(store.repo, "update-ref", "refs/heads/kumo-runbook", commit)
    third = note(store, "third", 3)
    assert third.prev_hash == first.hash


def test_tidy_packs_the_loose_objects_recording_leaves(tmp_path: Path) -> None:
    from auditor.source.snapshot import git_blob_id

    store = GitStore(make_repo(tmp_path / "repo"))
    git(store.repo, "config", "gc.autoDetach", "false")  # here: finish before asserting
    for minute in range(12):
        note(store, f"entry {minute}", minute)
    objects = store.repo / ".git" / "objects"
    recorded = git(store.repo, "rev-list", "--objects", "kumo-runbook").split("\n")
    recorded_ids = [line.split()[0] for line in recorded if line]

    def loose(oid: str) -> bool:
        return (objects / oid[:2] / oid[2:]).exists()

    assert sum(map(loose, recorded_ids)) > 40  # per entry: blob, month tree, trees above, commit
    store.tidy()
    assert sum(map(loose, recorded_ids)) > 40  # below Git's threshold: nothing to do yet
    # Git estimates the loose objects from one fan-out directory (17/): fill it past the threshold
    git(store.repo, "config", "gc.auto", "256")
    found = [d for d in (f"noise {i}".encode() for i in range(5000)) if git_blob_id(d)[:2] == "17"]
    for data in found[:3]:
        git(store.repo, "hash-object", "-w", "--stdin", input=data)
    store.tidy()
    assert not any(map(loose, recorded_ids))
    assert verify_store(store).ok
