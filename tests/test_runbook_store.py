"""Stores and the writing API on real Git repositories and directories."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_runbook_support import ROOT, at, branch_files, commit_file, git, make_repo
from test_runbook_support import runbook_env as runbook_env  # the fixture

from auditor.core.errors import AuditError
from auditor.core.findings import Finding, Severity, Span, Suppression
from auditor.runbook.gitinfo import change_from_git
from auditor.runbook.markdown import parse_entry_file
from auditor.runbook.record import EntryDraft, ValidatorRun, record, record_many
from auditor.runbook.store import DirStore, GitStore, StoreConflict
from auditor.runbook.verify import verify_store

pytestmark = pytest.mark.usefixtures("runbook_env")


def test_writing_never_touches_worktree_index_or_head(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    commit_file(repo, "sources.toml", "[a]\n", "Add sources")
    (repo / "init.lua").write_text("-- edited, not staged\n")
    (repo / "staged.toml").write_text("x = 1\n")
    git(repo, "add", "staged.toml")
    (repo / "untracked.txt").write_text("u\n")
    index_before = (repo / ".git" / "index").read_bytes()
    status_before = git(repo, "status", "--porcelain=v1", "--untracked-files=all")
    head_before = git(repo, "symbolic-ref", "HEAD"), git(repo, "rev-parse", "HEAD")

    store = GitStore(repo)
    change, commits = change_from_git(repo, "HEAD~1", "HEAD")
    record(store, EntryDraft(decision="accepted", change=change, commits=commits))
    record(store, EntryDraft(decision="note", why="restart done"))

    assert (repo / ".git" / "index").read_bytes() == index_before
    assert git(repo, "status", "--porcelain=v1", "--untracked-files=all") == status_before
    assert (git(repo, "symbolic-ref", "HEAD"), git(repo, "rev-parse", "HEAD")) == head_before
    files = branch_files(repo)
    assert sorted(files) == sorted(["README.md", *store.state().names])
    assert len(store.state().names) == 2
    assert git(repo, "rev-list", "--count", "kumo-runbook") == "2"


def test_entries_chain_per_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = GitStore(make_repo(tmp_path / "repo"))
    a1 = record(store, EntryDraft(decision="accepted", why="a1"), now=at(1))
    monkeypatch.setenv("KUMO_AUDIT_WRITER", "human:elsewhere:1")
    b1 = record(store, EntryDraft(decision="blocked", why="b1"), now=at(2))
    monkeypatch.delenv("KUMO_AUDIT_WRITER")
    monkeypatch.setenv("KUMO_AUDIT_HOST", "host-b")  # the store's id was created on host-a
    a2 = record(store, EntryDraft(decision="promoted", why="a2"), now=at(3))
    daemon = record(
        store, EntryDraft(decision="drift-detected", why="d", actor_kind="daemon"), now=at(4)
    )
    assert a1.writer.startswith("human:host-a:") and a2.writer == a1.writer
    assert b1.writer == "human:elsewhere:1"
    assert daemon.writer.startswith("daemon:host-b:")
    assert a1.prev_hash is None and b1.prev_hash is None and daemon.prev_hash is None
    assert a2.prev_hash == a1.hash
    assert daemon.actor.name == "kumo-audit@host-b" and daemon.actor.resolved_by == "host-identity"
    assert verify_store(store).ok


def test_compare_and_swap_rejects_a_stale_state(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    store = GitStore(repo)
    first = record(store, EntryDraft(decision="note", why="first"))
    stale = store.state()
    second = record(store, EntryDraft(decision="note", why="second"))
    with pytest.raises(StoreConflict):
        store.add(stale, {"entries/2026/01/x.md": b"x"}, "m", first.actor)
    assert second.prev_hash == first.hash
    assert len(store.state().names) == 2


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    code = (
        "import sys; from pathlib import Path\n"
        "from auditor.runbook.store import GitStore\n"
        "from auditor.runbook.record import EntryDraft, record\n"
        "s = GitStore(Path(sys.argv[1]))\n"
        "for i in range(5): record(s, EntryDraft(decision='note', why=f'{sys.argv[2]} {i}'))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(repo), f"w{n}"],
            cwd=ROOT,
            env={
                **__import__("os").environ,
                "PYTHONPATH": str(ROOT),
                "KUMO_AUDIT_HOST": f"h{n % 2}",
            },
        )
        for n in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    store = GitStore(repo)
    assert len(store.state().names) == 20
    report = verify_store(store)
    assert report.ok, report.problems
    assert report.writers == 1  # one clone, one writer: the processes took turns on its chain


def test_record_many_writes_one_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    store = GitStore(repo)
    drafts = [EntryDraft(decision="note", why=f"n{i}", decided_at=at(i)) for i in range(30)]
    entries = record_many(store, drafts)
    assert git(repo, "rev-list", "--count", "kumo-runbook") == "1"
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert verify_store(store).ok


def test_directory_store(tmp_path: Path) -> None:
    store = DirStore(tmp_path / "runbook")
    entry = record(store, EntryDraft(decision="waived", why="waive OPS-7", review_due="2026-12-01"))
    path = tmp_path / "runbook" / entry.file_name()
    assert path.is_file()
    assert parse_entry_file(path.read_bytes()).record == entry.record()
    assert entry.why.tickets == ["OPS-7"]
    with pytest.raises(AuditError, match="already exists"):
        store.add(store.state(), {entry.file_name(): b"replacement"}, "m", entry.actor)
    assert parse_entry_file(path.read_bytes()).record == entry.record()
    assert verify_store(store).ok


def test_supersedes_resolves_prefixes(tmp_path: Path) -> None:
    store = DirStore(tmp_path / "rb")
    wrong = record(store, EntryDraft(decision="accepted", why="wrong reason"))
    fixed = record(store, EntryDraft(decision="note", why="correction", supersedes=wrong.id[:6]))
    assert fixed.supersedes == wrong.id
    with pytest.raises(AuditError, match="no entry"):
        record(store, EntryDraft(decision="note", supersedes="ffffffff"))


def test_change_facts_from_git(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    base = git(repo, "rev-parse", "HEAD")
    commit_file(
        repo, "init.lua", "-- v2\n", "Tighten relay OPS-12\n\nReviewed-by: Bob <bob@example.com>"
    )
    commit_file(
        repo, "data/sources.toml", "[x]\n", "Add sources\n\nApproved-by: Carol <carol@example.com>"
    )
    change, commits = change_from_git(repo, base, "HEAD")
    entry = record(GitStore(repo), EntryDraft(decision="accepted", change=change, commits=commits))
    assert entry.change is not None and entry.change.base == base
    assert {(f.path, f.status) for f in entry.change.files} == {
        ("init.lua", "modified"),
        ("data/sources.toml", "added"),
    }
    added = next(f for f in entry.change.files if f.status == "added")
    assert added.before is None and added.after == git(repo, "rev-parse", "HEAD:data/sources.toml")
    assert [c.subject for c in entry.why.commits] == ["Tighten relay OPS-12", "Add sources"]
    assert entry.why.tickets == ["OPS-12"]
    assert {(a.role, a.email) for a in entry.approvals} == {
        ("reviewed-by", "bob@example.com"),
        ("approved-by", "carol@example.com"),
    }
    assert entry.rollback is not None and entry.rollback.last_good == base
    assert entry.rollback.command == f"git revert --no-edit {base}..{entry.change.head}"
    assert entry.summary == "Add sources"


def test_findings_suppressions_and_validator_are_recorded(tmp_path: Path) -> None:
    store = DirStore(tmp_path / "rb")
    waiver = Suppression(
        "waiver", "legacy relay until migration", "sources.toml", 3, ticket="OPS-3"
    )
    findings = [
        Finding(
            "S201",
            "open-relay",
            Severity.ERROR,
            "relay_hosts allows 0.0.0.0/0",
            "init.lua",
            Span(4, 3, 4, 9),
        ),
        Finding(
            "D301", "no-dkim", Severity.WARNING, "no DKIM signer", "init.lua", Span(9, 1, 9, 2)
        ).suppress(waiver),
    ]
    entry = record(
        store,
        EntryDraft(
            decision="blocked",
            findings=findings,
            reload={
                "impact": "restart",
                "elements": [{"element": "listener", "impact": "restart"}],
            },
            validator=ValidatorRun(exit_code=1, output="config error", command="kumod --validate"),
            api_table_version="3",
            ruleset_hash="abc123",
        ),
    )
    assert [f.code for f in entry.evidence.findings] == ["S201", "D301"]
    assert entry.evidence.findings[0].fingerprint == findings[0].fingerprint
    assert [(s.code, s.kind, s.reason) for s in entry.evidence.suppressions] == [
        ("D301", "waiver", "legacy relay until migration")
    ]
    assert entry.evidence.validator is not None and entry.evidence.validator.exit_code == 1
    assert entry.reload is not None and entry.reload.impact == "restart"


def test_bad_drafts_are_one_line_errors(tmp_path: Path) -> None:
    store = DirStore(tmp_path / "rb")
    with pytest.raises(AuditError, match="decision"):
        record(store, EntryDraft(decision="perhaps"))
    with pytest.raises(AuditError, match="decision time"):
        record(store, EntryDraft(decision="note", decided_at="yesterday"))
    with pytest.raises(AuditError, match="reload"):
        record(store, EntryDraft(decision="note", reload={"impact": "sometimes"}))
    assert store.state().names == {}


def test_fleet_orders_one_second_of_promotions_by_the_chain(tmp_path: Path) -> None:
    """Entries have a one-second resolution: a host's live revision is the last one of its chain,
    whatever the entry names (content ids) sort like."""
    from auditor.runbook.fleet import fleet

    store = GitStore(make_repo(tmp_path / "repo"))
    for i in range(8):
        reload = {"impact": "epoch", "elements": [], "daemon": {"release": f"rel-{i}"}}
        draft = EntryDraft(
            decision="promoted", why=f"p{i}", actor_kind="daemon", host="mx9", reload=reload
        )
        record(store, draft, now=at(1))
    (row,) = fleet(store)
    assert (row["host"], row["release"], row["last_decision"]) == ("mx9", "rel-7", "promoted")
