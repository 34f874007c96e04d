"""`runbook verify` detects every kind of tampering, naming the entry files involved."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_runbook_support import at, cli, git, make_repo
from test_runbook_support import runbook_env as runbook_env  # the fixture

from auditor.runbook.markdown import render_entry
from auditor.runbook.model import Entry
from auditor.runbook.record import EntryDraft, record
from auditor.runbook.store import DirStore, GitStore
from auditor.runbook.verify import verify_store

pytestmark = pytest.mark.usefixtures("runbook_env")


@pytest.fixture
def chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[DirStore, list[Entry], list[Entry]]:
    """Writer A: four entries a1..a4; writer B: two entries b1, b2 (distinct recording times)."""
    store = DirStore(tmp_path / "rb")
    a = [
        record(store, EntryDraft(decision="accepted", why=f"a{i}", decided_at=at(i)), now=at(i))
        for i in range(1, 5)
    ]
    monkeypatch.setenv("KUMO_AUDIT_WRITER", "human:host-b:0000000b")
    b = [
        record(
            store,
            EntryDraft(decision="blocked", why=f"b{i}", decided_at=at(10 + i)),
            now=at(10 + i),
        )
        for i in range(1, 3)
    ]
    assert verify_store(store).ok
    return store, a, b


def problems(store: DirStore) -> set[tuple[str, str]]:
    found = verify_store(store).problems
    assert all(isinstance(p.detail, str) and p.detail for p in found), found  # each says why
    return {(p.kind, p.name) for p in found}


def path_of(store: DirStore, entry: Entry) -> Path:
    return store.root / entry.file_name()


def write_entry(store: DirStore, entry: Entry) -> None:
    target = path_of(store, entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(render_entry(entry))


def test_clean_store_verifies(chain: tuple[DirStore, list[Entry], list[Entry]]) -> None:
    store = chain[0]
    report = verify_store(store)
    assert report.ok and report.entries == 6 and report.writers == 2


def test_edited_field(chain: tuple[DirStore, list[Entry], list[Entry]]) -> None:
    store, a, _ = chain
    path = path_of(store, a[1])
    text = path.read_text()
    assert '"text": "a2"' in text
    path.write_text(text.replace('"text": "a2"', '"text": "a2, approved by the CTO"'))
    assert problems(store) == {("edited", a[1].file_name())}


def test_deleted_entry_from_the_middle(chain: tuple[DirStore, list[Entry], list[Entry]]) -> None:
    store, a, _ = chain
    path_of(store, a[1]).unlink()
    found = verify_store(store).problems
    assert [(p.kind, p.name) for p in found] == [("deleted", a[2].file_name())]
    assert a[1].hash[:16] in found[0].detail


def test_swapped_timestamps(chain: tuple[DirStore, list[Entry], list[Entry]]) -> None:
    store, a, _ = chain
    first, second = path_of(store, a[1]), path_of(store, a[2])
    t1, t2 = first.read_text(), second.read_text()
    first.write_text(t1.replace(a[1].decided_at, a[2].decided_at))
    second.write_text(t2.replace(a[2].decided_at, a[1].decided_at))
    found = problems(store)
    assert {("edited", a[1].file_name()), ("edited", a[2].file_name())} <= found
    # Recording times were swapped too, so the chain also runs backwards.
    assert found - {("edited", a[1].file_name()), ("edited", a[2].file_name())} == {
        ("reordered", a[2].file_name())
    }


def test_swapped_file_names(chain: tuple[DirStore, list[Entry], list[Entry]]) -> None:
    store, a, _ = chain
    first, second = path_of(store, a[1]), path_of(store, a[2])
    t1, t2 = first.read_bytes(), second.read_bytes()
    first.write_bytes(t2)
    second.write_bytes(t1)
    assert problems(store) == {("renamed", a[1].file_name()), ("renamed", a[2].file_name())}


def test_reordered_chain_with_recomputed_hashes(
    chain: tuple[DirStore, list[Entry], list[Entry]],
) -> None:
    """A forger relinks a1 -> a3 -> a2 and re-seals both: the recording times now run backwards."""
    store, a, _ = chain
    path_of(store, a[1]).unlink()
    path_of(store, a[2]).unlink()
    new3 = Entry.seal({**a[2].body(), "prev_hash": a[0].hash})
    new2 = Entry.seal({**a[1].body(), "prev_hash": new3.hash})
    write_entry(store, new3)
    write_entry(store, new2)
    found = problems(store)
    assert ("reordered", new2.file_name()) in found
    assert ("deleted", a[3].file_name()) in found  # a4 still names the original a3


def test_forged_entry_with_a_plausible_name(
    chain: tuple[DirStore, list[Entry], list[Entry]],
) -> None:
    store, a, _ = chain
    # A copy of a real entry, edited and given a plausible name.
    text = path_of(store, a[1]).read_text().replace('"text": "a2"', '"text": "emergency"')
    fake_name = "entries/2026/03/2026-03-01T000230Z-accepted-0badf00.md"
    (store.root / fake_name).write_text(text)
    # A correctly sealed entry claiming to follow a1: the chain forks.
    fork = Entry.seal({**a[1].body(), "why": {"text": "inserted"}, "recorded_at": a[1].recorded_at})
    write_entry(store, fork)
    # A sealed entry of writer A linking into writer B's chain.
    cross = Entry.seal({**a[3].body(), "why": {"text": "cross"}, "prev_hash": chain[2][0].hash})
    write_entry(store, cross)
    # A file that is not an entry at all.
    (store.root / "entries/2026/03/notes.md").write_text("hello\n")
    found = problems(store)
    assert ("edited", fake_name) in found
    assert any(
        kind == "forged" and name in (fork.file_name(), a[1].file_name()) for kind, name in found
    )
    assert ("forged", cross.file_name()) in found
    assert ("forged", "entries/2026/03/notes.md") in found


def test_prose_edit_without_touching_the_record(
    chain: tuple[DirStore, list[Entry], list[Entry]],
) -> None:
    store, a, _ = chain
    path = path_of(store, a[1])
    text = path.read_text()
    assert "| Decision | **accepted** |" in text
    path.write_text(text.replace("| Decision | **accepted** |", "| Decision | **blocked** |"))
    found = verify_store(store).problems
    assert [(p.kind, p.name) for p in found] == [("prose-edited", a[1].file_name())]
    assert "line" in found[0].detail


def test_git_branch_history_catches_edits_and_tip_deletion(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    store = GitStore(repo)
    entries = [record(store, EntryDraft(decision="note", why=f"n{i}"), now=at(i)) for i in range(3)]
    # An ordinary clone, a commit deleting the newest entry, pushed back to the branch.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", "kumo-runbook", str(repo), str(clone))
    git(clone, "config", "user.name", "Mallory")
    git(clone, "config", "user.email", "m@example.com")
    git(clone, "rm", "-q", entries[-1].file_name())
    git(clone, "commit", "-q", "-m", "tidy")
    git(clone, "push", "-q", "origin", "kumo-runbook")
    found = {(p.kind, p.name) for p in verify_store(store).problems}
    assert found == {("history", entries[-1].file_name())}
    tidy = git(clone, "rev-parse", "HEAD")
    [problem] = verify_store(store).problems
    assert problem.detail == f"deleted after it was written, in commit {tidy[:12]}"

    proc = cli("runbook", "verify", "--repo", str(repo), cwd=tmp_path)
    assert proc.returncode == 1
    assert f"history: {entries[-1].file_name()}: deleted after it was written" in proc.stdout


def test_verify_cli_exit_codes(
    chain: tuple[DirStore, list[Entry], list[Entry]], tmp_path: Path
) -> None:
    store, a, _ = chain
    ok = cli("runbook", "verify", "--runbook-dir", str(store.root), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "6 entries in 2 writer chains" in ok.stdout
    path_of(store, a[2]).unlink()
    bad = cli(
        "runbook", "verify", "--runbook-dir", str(store.root), "--format", "json", cwd=tmp_path
    )
    assert bad.returncode == 1
    import json

    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert report["problems"][0]["name"] == a[3].file_name()


def test_incremental_verify_checks_only_what_was_added(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    store = GitStore(repo)
    for i in range(4):
        record(store, EntryDraft(decision="note", why=f"n{i}", decided_at=at(i)), now=at(i))
    first = verify_store(store)
    assert first.ok and not first.incremental and first.checked == 4
    record(store, EntryDraft(decision="note", why="n4", decided_at=at(4)), now=at(4))
    again = verify_store(store)
    assert again.ok and again.incremental and again.checked == 1 and again.entries == 5
    assert verify_store(store, full=True).checked == 5
    # The kept state is itself checked: an edited state is ignored (a full verify runs).
    state = store.private / "verified.json"
    state.write_text(state.read_text().replace("human:host-a:", "human:host-b:"))
    assert not verify_store(store).incremental
    # A tampered entry (a new commit changing a verified file) is reported on the next verify.
    name = sorted(store.state().names)[0]
    blob = store.read(store.state(), [name])[name].replace(b'"text": "n0"', b'"text": "n0!"')
    oid = store.write_blobs([blob])[0]
    head = store.head()
    tree = store.build_tree(head, {name: oid})
    actor = Entry.model_validate(__import__("json").loads(blob.split(b"```json\n")[-1][:-5])).actor
    commit = store.commit_tree(tree, [head], "edit", actor)  # type: ignore[list-item]
    store.move_ref(commit, head)
    problems = verify_store(store).problems
    found = {(p.kind, p.name) for p in problems}
    assert ("edited", name) in found and ("history", name) in found
    [history] = [p for p in problems if p.kind == "history"]
    assert history.detail == f"changed after it was written, in commit {commit[:12]}"
    proc = cli("runbook", "verify", "--full", cwd=repo)
    assert proc.returncode == 1


def test_a_branch_reset_past_what_this_clone_verified_is_reported(tmp_path: Path) -> None:
    """Removing the newest entries by moving the branch back leaves chains that still verify on
    their own: the last verified commit, which the branch no longer holds, is what tells."""
    repo = make_repo(tmp_path / "repo")
    store = GitStore(repo)
    for i in range(3):
        record(store, EntryDraft(decision="note", why=f"n{i}", decided_at=at(i)), now=at(i))
    verified = store.head()
    assert verified is not None and verify_store(store).ok
    store.move_ref(git(repo, "rev-parse", "kumo-runbook~2"), verified)
    for full in (False, True):  # --full re-reads the entries, not what was verified before
        report = verify_store(store, full=full)
        assert [(p.kind, p.name) for p in report.problems] == [("history", "kumo-runbook")]
        detail = report.problems[0].detail
        assert f"no longer holds commit {verified[:12]};" in detail
        assert f"verified it last at commit {verified[:12]} with 3 entries:" in detail
    proc = cli("runbook", "verify", cwd=repo)
    assert proc.returncode == 1 and "--accept-rewrite" in proc.stdout
    # Accepted once, the branch as it is becomes what later verifies hold to.
    assert cli("runbook", "verify", "--accept-rewrite", cwd=repo).returncode == 0
    assert verify_store(store).ok
    # New entries on top (a descendant of the verified commit) are no rewrite.
    record(store, EntryDraft(decision="note", why="n3", decided_at=at(3)), now=at(3))
    assert verify_store(store).ok


def test_the_state_follows_a_branch_that_moved_without_new_entries(tmp_path: Path) -> None:
    """A commit that adds no entry (a merge, an empty commit) still moves what was verified: the
    next verify starts from it, so a later reset past it is seen."""
    from auditor.runbook.verify import _Cache

    repo = make_repo(tmp_path / "repo")
    store = GitStore(repo)
    record(store, EntryDraft(decision="note", why="n0", decided_at=at(0)), now=at(0))
    assert verify_store(store).ok
    head = store.head()
    assert head is not None
    tree = git(repo, "rev-parse", f"{head}^{{tree}}")
    moved = git(repo, "commit-tree", tree, "-p", head, "-m", "no entry")
    store.move_ref(moved, head)
    again = verify_store(store)
    assert again.ok and again.incremental and again.checked == 0
    assert _Cache(store).last_verified() == (moved, 1)
    store.move_ref(head, moved)  # back to the entry commit: the empty commit is gone
    assert [p.kind for p in verify_store(store).problems] == ["history"]


def _reseal(store: GitStore, change) -> None:  # type: ignore[no-untyped-def]
    """Rewrite the kept state through `change` with a valid seal (what a local attacker can do)."""
    import hashlib
    import json

    path = store.private / "verified.json"
    data = json.loads(path.read_bytes().partition(b"\n")[2])
    change(data)
    payload = json.dumps(data, separators=(",", ":")).encode()
    header = b"kumo-audit-verified " + hashlib.sha256(payload).hexdigest().encode()
    path.write_bytes(header + b"\n" + payload)


def test_kept_state_is_used_only_when_its_parts_agree_and_is_kept_when_unwritable(
    tmp_path: Path,
) -> None:
    from auditor.runbook.verify import _Cache

    repo = make_repo(tmp_path / "repo")
    store = GitStore(repo)
    for i in range(2):
        record(store, EntryDraft(decision="note", why=f"n{i}", decided_at=at(i)), now=at(i))
    assert verify_store(store).ok
    assert verify_store(store).incremental
    _reseal(store, lambda data: data["facts"].pop())  # facts and blobs disagree: not used
    assert not verify_store(store).incremental
    assert verify_store(store).incremental  # the full verify kept a state whose parts agree
    _reseal(store, lambda data: data.pop("blobs"))
    assert not verify_store(store).incremental
    import hashlib

    sealed_list = b"kumo-audit-verified " + hashlib.sha256(b"[]").hexdigest().encode() + b"\n[]"
    (store.private / "verified.json").write_bytes(sealed_list)  # sealed, but not a state at all
    report = verify_store(store)
    assert report.ok and not report.incremental
    # --accept-rewrite on an unchanged branch keeps the state (nothing to forget).
    assert verify_store(store, accept_rewrite=True).ok
    assert _Cache(store).last_verified() is not None and verify_store(store).incremental
    # A state that cannot be written (its path is a directory) does not fail the verify.
    state = store.private / "verified.json"
    state.unlink()
    state.mkdir()
    assert verify_store(store).ok


def test_recording_remembers_the_rendered_entry(tmp_path: Path) -> None:
    from auditor.runbook.verify import _Cache
    from auditor.source.snapshot import git_blob_id

    store = GitStore(make_repo(tmp_path / "repo"))
    first = record(store, EntryDraft(decision="note", why="n0", decided_at=at(0)), now=at(0))
    second = record(store, EntryDraft(decision="note", why="n1", decided_at=at(1)), now=at(1))
    known = _Cache(store).load_rendered()
    assert {git_blob_id(render_entry(first)), git_blob_id(render_entry(second))} <= known


def test_checkpoint_summary_of_an_unsigned_checkpoint() -> None:
    from auditor.runbook.verify import Facts, checkpoint_summary

    facts = Facts("n", "id1", "h1", None, "human:a:1", "2026-01-01T00:00:00Z",
                  checkpoint={"human:a:1": ["h0", 3]}, checkpoint_entries=3)  # fmt: skip
    summary = checkpoint_summary(facts)
    assert summary["signature"] == "unsigned" and summary["signer"] == ""
    assert summary["heads"] == {"human:a:1": {"hash": "h0", "entries": 3}}
    signed = checkpoint_summary(Facts("n", "id1", "h1", None, "w", "t", signature="good"))
    assert signed["signature"] == "good" and signed["heads"] == {}


def test_record_of_reads_the_record_of_a_canonical_file_only(tmp_path: Path) -> None:
    from auditor.runbook.verify import _record_of

    store = DirStore(tmp_path / "rb")
    entry = record(store, EntryDraft(decision="note", why="n0", decided_at=at(0)), now=at(0))
    blob = render_entry(entry)
    assert _record_of(blob) == entry.record()
    assert _record_of(blob[:-10]) is None  # cut: the record is not whole
    assert _record_of(b"\xff\xfe") is None


def test_a_deleted_runbook_branch_is_reported_once_it_was_verified(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    store = GitStore(repo)
    fresh = verify_store(store)  # nothing recorded yet: nothing to hold to, and it says why
    assert fresh.ok and fresh.entries == 0
    assert any("kumo-runbook does not exist" in note for note in fresh.notes)
    for i in range(2):
        record(store, EntryDraft(decision="note", why=f"n{i}", decided_at=at(i)), now=at(i))
    assert verify_store(store).ok
    git(repo, "update-ref", "-d", "refs/heads/kumo-runbook")
    proc = cli("runbook", "verify", cwd=repo)
    assert proc.returncode == 1
    assert "history: kumo-runbook: the branch is gone" in proc.stdout and "2 entries" in proc.stdout
    assert cli("runbook", "verify", "--accept-rewrite", cwd=repo).returncode == 0
    assert cli("runbook", "verify", cwd=repo).returncode == 0


def test_a_union_merge_of_another_writers_entries_is_no_rewrite(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    store = GitStore(repo)
    record(store, EntryDraft(decision="note", why="ours", decided_at=at(1)), now=at(1))
    assert verify_store(store).ok
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", "kumo-runbook", str(repo), str(clone))
    theirs = record(
        GitStore(clone), EntryDraft(decision="note", why="theirs", decided_at=at(2)), now=at(2)
    )
    record(store, EntryDraft(decision="note", why="ours again", decided_at=at(3)), now=at(3))
    git(repo, "fetch", "-q", str(clone), "kumo-runbook:refs/remotes/peer/kumo-runbook")
    from auditor.runbook.sync import integrate

    assert integrate(store, git(repo, "rev-parse", "refs/remotes/peer/kumo-runbook")) == "merged"
    report = verify_store(store)
    assert report.ok, report.problems
    assert theirs.file_name() in store.state().names


def test_incremental_verify_cli(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    for i in range(2):
        assert (
            cli("runbook", "record", "--decision", "note", "--why", f"{i}", cwd=repo).returncode
            == 0
        )
    first = cli("runbook", "verify", cwd=repo)
    assert first.returncode == 0 and "(full;" in first.stdout
    assert cli("runbook", "record", "--decision", "note", "--why", "x", cwd=repo).returncode == 0
    second = cli("runbook", "verify", cwd=repo)
    assert second.returncode == 0 and "incremental: 1 new since the last verify" in second.stdout
    assert "(full;" in cli("runbook", "verify", "--full", cwd=repo).stdout


# ----- each kind of problem, one by one ---------------------------------------------------------


def sealed(entry: Entry, **changes: object) -> Entry:
    body = entry.body()
    body.update(changes)
    return Entry.seal(body)


def test_unreadable_entry_file(chain: tuple[DirStore, list[Entry], list[Entry]]) -> None:
    store, a, _ = chain
    path_of(store, a[2]).write_bytes(b"\xff\xfe not an entry")
    assert ("unreadable", a[2].file_name()) in problems(store)
    assert not verify_store(store).ok


def test_invalid_record_field(chain: tuple[DirStore, list[Entry], list[Entry]]) -> None:
    store, a, _ = chain
    bad = a[1].model_copy(update={"decision": "accepted"})
    text = render_entry(bad).decode()
    path_of(store, a[1]).write_text(text.replace('"decision": "accepted"', '"decision": 7', 1))
    kinds = {k for k, n in problems(store) if n == a[1].file_name()}
    assert kinds == {"invalid"}
    [detail] = [p.detail for p in verify_store(store).problems if p.kind == "invalid"]
    assert detail.split()[2] == "decision:"  # the field named: record field <where>: ...


def test_duplicate_hash(chain: tuple[DirStore, list[Entry], list[Entry]]) -> None:
    store, a, _ = chain
    copy = store.root / a[0].file_name().replace(a[0].id[:7], "0000000")
    copy.write_bytes(path_of(store, a[0]).read_bytes())
    copied = copy.relative_to(store.root).as_posix()
    found = problems(store)
    assert ("forged", copied) in found or ("forged", a[0].file_name()) in found, found
    assert {n for _, n in found} <= {copied, a[0].file_name()}


def test_fork_two_successors_of_one_entry(chain: tuple[DirStore, list[Entry], list[Entry]]) -> None:
    store, a, _ = chain
    fork = sealed(
        a[3],
        summary="a second successor of a3",
        recorded_at=at(5).isoformat().replace("+00:00", "Z"),
    )
    assert fork.prev_hash == a[3].prev_hash and fork.writer == a[3].writer
    write_entry(store, fork)
    found = problems(store)
    assert any(kind == "forged" for kind, _ in found), found
    assert {n for _, n in found} <= {fork.file_name(), a[3].file_name()}


def test_supersedes_a_missing_entry(chain: tuple[DirStore, list[Entry], list[Entry]]) -> None:
    store, a, _ = chain
    entry = record(
        store,
        EntryDraft(decision="accepted", why="again", decided_at=at(30), supersedes=a[0].id[:8]),
        now=at(30),
    )
    assert entry.supersedes == a[0].id
    assert verify_store(store).ok
    path_of(store, a[0]).unlink()
    found = problems(store)
    assert ("deleted", entry.file_name()) in found


def test_chain_length_counts_each_entry_once(
    chain: tuple[DirStore, list[Entry], list[Entry]],
) -> None:
    from auditor.runbook.verify import _facts, chain_length

    _, a, b = chain
    facts = {e.hash: _facts(e.file_name(), e.record()) for e in [*a, *b]}
    assert chain_length(facts, a[3].hash, 100) == 4
    assert chain_length(facts, b[1].hash, 100) == 2
    assert chain_length(facts, a[3].hash, 1) == 2  # stops after `limit` steps
    assert chain_length(facts, "0" * 64, 100) == 0


# ----- exact reports ----------------------------------------------------------------------------


def report_kinds(store: DirStore, **kwargs: object) -> list[tuple[str, str]]:
    found = verify_store(store, **kwargs).problems  # type: ignore[arg-type]
    assert all(isinstance(p.detail, str) and p.detail for p in found), found  # each says why
    return [(p.kind, p.name) for p in found]


def test_clean_report_as_dict(chain: tuple[DirStore, list[Entry], list[Entry]]) -> None:
    store, a, _ = chain
    assert verify_store(store).as_dict() == {
        "ok": True,
        "entries": 6,
        "writers": 2,
        "signed": 0,
        "checkpoints": 0,
        "latest_checkpoint": None,
        "incremental": False,
        "checked": 6,
        "allowed_signers": None,
        "problems": [],
        "notes": [],
    }
    path_of(store, a[1]).unlink()
    doc = verify_store(store).as_dict()
    assert doc["ok"] is False and doc["entries"] == 5 and doc["checked"] == 5
    assert [(p["kind"], p["name"]) for p in doc["problems"]] == [("deleted", a[2].file_name())]
    assert set(doc["problems"][0]) == {"kind", "name", "detail"}


def test_duplicate_hash_exactly(chain: tuple[DirStore, list[Entry], list[Entry]]) -> None:
    store, a, _ = chain
    copy = store.root / a[0].file_name().replace(a[0].id[:7], "0000000")
    copy.write_bytes(path_of(store, a[0]).read_bytes())
    copied = copy.relative_to(store.root).as_posix()
    found = verify_store(store).problems
    assert sorted((p.kind, p.name) for p in found) == [
        ("forged", a[0].file_name()),  # same hash as the copy, which sorts first
        ("forged", a[0].file_name()),  # and a second first entry of its writer
        ("renamed", copied),
    ]
    assert any(copied in p.detail for p in found if p.kind == "forged")


def test_fork_exactly(chain: tuple[DirStore, list[Entry], list[Entry]]) -> None:
    store, a, _ = chain
    fork = sealed(a[3], summary="fork", recorded_at=at(5).isoformat().replace("+00:00", "Z"))
    write_entry(store, fork)
    # the later of the two successors is the forged one; the other is named in the detail
    [problem] = verify_store(store).problems
    assert (problem.kind, problem.name) == ("forged", fork.file_name())
    assert a[3].file_name() in problem.detail and a[2].file_name() in problem.detail


def test_link_to_another_writers_entry_is_forged(
    chain: tuple[DirStore, list[Entry], list[Entry]],
) -> None:
    store, a, b = chain
    cross = sealed(b[1], prev_hash=a[3].hash)
    path_of(store, b[1]).unlink()
    write_entry(store, cross)
    assert report_kinds(store) == [("forged", cross.file_name())]


def test_older_per_host_writer_ids_may_fork(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DirStore(tmp_path / "rb")
    monkeypatch.setenv("KUMO_AUDIT_WRITER", "human:host-old")
    first = record(store, EntryDraft(decision="note", why="one"), now=at(1))
    write_entry(store, sealed(first, summary="another clone", recorded_at="2026-03-01T00:02:00Z"))
    report = verify_store(store)
    assert report.ok and report.writers == 1 and report.entries == 2
    assert len(report.notes) == 1 and "human:host-old" in report.notes[0]
    monkeypatch.setenv("KUMO_AUDIT_WRITER", "human:host-new:0000000c")
    store2 = DirStore(tmp_path / "rb2")
    first = record(store2, EntryDraft(decision="note", why="one"), now=at(1))
    second = sealed(first, summary="another clone", recorded_at="2026-03-01T00:02:00Z")
    write_entry(store2, second)
    assert report_kinds(store2) == [("forged", second.file_name())]
    assert verify_store(store2).notes == []


def test_recorded_at_equal_to_the_predecessor_is_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DirStore(tmp_path / "rb")
    monkeypatch.setenv("KUMO_AUDIT_WRITER", "human:host-a:0000000a")
    first = record(store, EntryDraft(decision="note", why="one"), now=at(1))
    record(store, EntryDraft(decision="note", why="two"), now=at(1))
    assert verify_store(store).ok
    later = record(store, EntryDraft(decision="note", why="three"), now=at(3))
    early = sealed(later, recorded_at=first.recorded_at.replace("00:01:00", "00:00:59"))
    path_of(store, later).unlink()
    write_entry(store, early)
    assert report_kinds(store) == [("reordered", early.file_name())]


def test_first_difference_line() -> None:
    from auditor.runbook.verify import _first_diff

    assert _first_diff(b"a\nb\nc\n", b"a\nx\nc\n") == 2
    assert _first_diff(b"a\nb\nc\n", b"x\nb\nc\n") == 1
    assert _first_diff(b"a\nb\n", b"a\nb\nc\n") == 3  # one is the start of the other
    assert _first_diff(b"a\nb\nc\nd\n", b"a\nb\n") == 3
    assert _first_diff(b"a\n", b"a\n\nb\n") == 2  # every line of one is a line of the other
    assert _first_diff(b"a\n\nb\n", b"a\n") == 2


def test_a_second_copy_of_the_record_appended_is_a_prose_edit(
    chain: tuple[DirStore, list[Entry], list[Entry]],
) -> None:
    from auditor.runbook.markdown import MARKER

    store, a, _ = chain
    path = path_of(store, a[1])
    original = path.read_bytes()
    block = original[original.rindex(f"\n{MARKER}\n".encode()) + 1 :]
    # the file as rendered, then a blank line and its record block again: the last record is
    # the entry's own, so only the Markdown around it differs
    path.write_bytes(original + b"\n" + block)
    assert report_kinds(store) == [("prose-edited", a[1].file_name())]


# ----- checkpoints --------------------------------------------------------------------------------


@pytest.fixture
def signing_key(tmp_path: Path) -> Path:
    import subprocess

    key = tmp_path / "ci-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def checkpoint(store: DirStore, key: Path, monkeypatch: pytest.MonkeyPatch) -> Entry:
    from auditor.runbook.checkpoint import write_checkpoint

    monkeypatch.setenv("KUMO_AUDIT_WRITER", "ci:github:acme/policy:7")
    point = write_checkpoint(store, now=at(30), signing_key=str(key))
    monkeypatch.delenv("KUMO_AUDIT_WRITER")
    return point


def with_heads(store: DirStore, point: Entry, heads: dict[str, tuple[str, int]]) -> Entry:
    """The checkpoint with other heads (re-sealed, so only the checkpoint check can object)."""
    body = point.body()
    body["checkpoint"] = {
        "heads": {w: {"hash": h, "entries": n} for w, (h, n) in heads.items()},
        "entries": sum(n for _, n in heads.values()),
    }
    new = Entry.seal(body)
    path_of(store, point).unlink()
    write_entry(store, new)
    return new


def test_checkpoint_report_and_summary(
    chain: tuple[DirStore, list[Entry], list[Entry]],
    signing_key: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, a, b = chain
    point = checkpoint(store, signing_key, monkeypatch)
    report = verify_store(store)
    assert report.ok and report.checkpoints() == 1 and report.signed == 1
    assert len(report.notes) == 1 and report.notes[0].startswith("1 signed entries")
    summary = report.as_dict()["latest_checkpoint"]
    assert summary == {
        "id": point.id,
        "hash": point.hash,
        "name": point.file_name(),
        "writer": "ci:github:acme/policy:7",
        "recorded_at": point.recorded_at,
        "entries": 6,
        "signature": "unchecked",
        "signer": summary["signer"],
        "heads": {
            a[3].writer: {"hash": a[3].hash, "entries": 4},
            b[1].writer: {"hash": b[1].hash, "entries": 2},
        },
    }
    assert summary["signer"].startswith("SHA256:")
    assert verify_store(store, expect_checkpoints=(point.hash[:8],)).ok
    assert verify_store(store, expect_checkpoints=(f"  {point.hash[:12].upper()} ",)).ok
    for wanted in (point.hash[:7], a[0].hash[:12], "0123456789ab"):
        assert report_kinds(store, expect_checkpoints=(wanted,)) == [
            ("checkpoint", wanted.strip().lower())
        ]


def test_checkpoint_heads_are_checked(
    chain: tuple[DirStore, list[Entry], list[Entry]],
    signing_key: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, a, b = chain
    point = checkpoint(store, signing_key, monkeypatch)
    wa, wb = a[0].writer, b[0].writer
    exact = with_heads(store, point, {wa: (a[3].hash, 4), wb: (b[1].hash, 2)})
    assert verify_store(store).ok
    # a head of the wrong writer, a chain one longer or shorter than covered, a missing head
    for heads in (
        {wa: (b[1].hash, 2)},
        {wa: (a[3].hash, 3)},
        {wa: (a[3].hash, 5)},
        {wb: ("f" * 64, 2)},
    ):
        exact = with_heads(store, exact, heads)
        assert report_kinds(store) == [("checkpoint", exact.file_name())], heads
    exact = with_heads(store, exact, {wa: (a[2].hash, 3)})  # an older head, still intact
    assert verify_store(store).ok


# ----- signatures ---------------------------------------------------------------------------------


def test_unsigned_after_a_signed_entry_of_the_same_writer(
    tmp_path: Path, signing_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DirStore(tmp_path / "rb")
    monkeypatch.setenv("KUMO_AUDIT_WRITER", "human:host-a:0000000a")
    record(store, EntryDraft(decision="note", why="s"), now=at(1), signing_key=str(signing_key))
    plain = record(store, EntryDraft(decision="note", why="p"), now=at(2))
    monkeypatch.setenv("KUMO_AUDIT_WRITER", "human:host-b:0000000b")
    other = record(store, EntryDraft(decision="note", why="o"), now=at(3))
    assert report_kinds(store) == [("unsigned", plain.file_name())]
    assert sorted(report_kinds(store, require_signed=True)) == sorted(
        [("unsigned", plain.file_name()), ("unsigned", other.file_name())]
    )
    report = verify_store(store)
    assert report.signed == 1 and len(report.notes) == 1


def test_a_tampered_rendered_cache_cannot_hide_an_edit(tmp_path: Path) -> None:
    """Blobs remembered as canonical skip the rendering check, never the hash check."""
    from auditor.runbook.verify import _Cache
    from auditor.source.snapshot import git_blob_id

    repo = make_repo(tmp_path / "repo")
    store = GitStore(repo)
    entry = record(store, EntryDraft(decision="note", why="n0", decided_at=at(0)), now=at(0))
    assert verify_store(store).ok
    name = entry.file_name()
    blob = store.read(store.state(), [name])[name]
    edited = blob.replace(b'"text": "n0"', b'"text": "n1"')
    renamed = render_entry(entry)
    cache = _Cache(store)
    cache.save_rendered(cache.load_rendered() | {git_blob_id(edited), git_blob_id(renamed)})
    head = store.head()
    other = name.replace(entry.id[:7], "1234567")
    oids = store.write_blobs([edited, renamed])
    tree = store.build_tree(head, {name: oids[0], other: oids[1]})
    store.move_ref(store.commit_tree(tree, [head], "edit", entry.actor), head)  # type: ignore[list-item]
    report = verify_store(store, full=True)
    assert all(p.detail for p in report.problems)
    found = {(p.kind, p.name) for p in report.problems}
    assert ("edited", name) in found and ("history", name) in found
    assert ("renamed", other) in found


# ----- the verified state -------------------------------------------------------------------------


def test_verified_state_is_kept_and_reused_only_when_it_applies(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    store = GitStore(repo)
    for i in range(2):
        record(store, EntryDraft(decision="note", why=f"n{i}", decided_at=at(i)), now=at(i))
    first = verify_store(store, require_signed=False)
    assert first.ok and not first.incremental and first.checked == 2
    state = store.private / "verified.json"
    kept = state.read_bytes()
    inode = state.stat().st_ino
    again = verify_store(store)
    assert again.incremental and again.checked == 0 and again.entries == 2
    assert state.read_bytes() == kept  # nothing added: nothing rewritten
    assert state.stat().st_ino == inode  # not even with the same bytes (a write replaces it)
    # A state verified without --require-signed does not stand for a verify with it ...
    strict = verify_store(store, require_signed=True)
    assert not strict.incremental and [p.kind for p in strict.problems] == ["unsigned"] * 2
    # ... and a failed verify keeps no state.
    assert state.read_bytes() == kept
    # A branch reset behind the verified commit: the state is not used for the entries, and the
    # reset itself is reported (entries were removed) until it is accepted.
    head = store.head()
    record(store, EntryDraft(decision="note", why="n2", decided_at=at(2)), now=at(2))
    verify_store(store)
    store.move_ref(head, store.head())  # type: ignore[arg-type]
    record(store, EntryDraft(decision="note", why="n3", decided_at=at(3)), now=at(3))
    after_reset = verify_store(store)
    assert not after_reset.incremental and after_reset.checked == 3
    assert [(p.kind, p.name) for p in after_reset.problems] == [("history", "kumo-runbook")]
    accepted = verify_store(store, accept_rewrite=True)
    assert accepted.ok and not accepted.incremental and accepted.checked == 3
    assert verify_store(store).incremental


def test_entries_written_elsewhere_are_remembered_once_checked(tmp_path: Path) -> None:
    """Entry files this tool did not render (another clone, a restore) are checked in full once;
    from then on their blob ids are known canonical."""
    from auditor.runbook.verify import _Cache

    repo = make_repo(tmp_path / "repo")
    store = GitStore(repo)
    for i in range(2):
        record(store, EntryDraft(decision="note", why=f"n{i}", decided_at=at(i)), now=at(i))
    cache = _Cache(store)
    cache.save_rendered(set())
    assert verify_store(store, full=True).ok
    assert cache.load_rendered() == set(store.state().names.values())


def test_committed_allowed_signers_are_used_by_default(
    tmp_path: Path, signing_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_runbook_support import commit_file

    repo = make_repo(tmp_path / "repo")
    public = " ".join(signing_key.with_suffix(".pub").read_text().split()[:2])
    commit_file(repo, ".kumo-audit/allowed_signers", f"human:host-a:* {public}\n", "signers")
    store = GitStore(repo)
    monkeypatch.setenv("KUMO_AUDIT_WRITER", "human:host-a:0000000a")
    entry = record(
        store, EntryDraft(decision="note", why="s"), now=at(1), signing_key=str(signing_key)
    )
    report = verify_store(store)
    assert report.ok and report.allowed_signers is not None
    assert report.facts[entry.file_name()].signature == "good"
    assert verify_store(store, allowed=None).facts[entry.file_name()].signature == "unchecked"


def test_a_verified_state_without_a_commit_is_not_used(tmp_path: Path) -> None:
    import hashlib
    import json

    repo = make_repo(tmp_path / "repo")
    store = GitStore(repo)
    for i in range(2):
        record(store, EntryDraft(decision="note", why=f"n{i}", decided_at=at(i)), now=at(i))
    assert verify_store(store).ok
    state = store.private / "verified.json"
    data = json.loads(state.read_bytes().partition(b"\n")[2])
    for commit in (None, 7, ["x"]):
        # a state whose digest matches but whose commit is not a commit id: a full verify runs
        data["commit"] = commit
        payload = json.dumps(data, separators=(",", ":")).encode()
        header = b"kumo-audit-verified " + hashlib.sha256(payload).hexdigest().encode()
        state.write_bytes(header + b"\n" + payload)
        report = verify_store(store)
        assert report.ok and not report.incremental and report.checked == 2, commit
