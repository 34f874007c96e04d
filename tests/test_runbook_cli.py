"""The `runbook` command line end to end, the HTML report, and the no-secrets guarantee."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_runbook_support import at, branch_files, cli, commit_file, git, make_repo
from test_runbook_support import runbook_env as runbook_env  # the fixture

from auditor.core.findings import Finding, Severity, Span
from auditor.runbook.model import Change, ChangedFile
from auditor.runbook.record import EntryDraft, ValidatorRun, record
from auditor.runbook.store import GitStore

pytestmark = pytest.mark.usefixtures("runbook_env")

CHROMIUM = Path("/usr/bin/chromium")


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def finding(code: str, path: str = "init.lua") -> Finding:
    return Finding(code, "rule", Severity.ERROR, f"{code} problem", path, Span(3, 1, 3, 5))


@pytest.fixture
def populated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A policy repo whose runbook holds entries from two hosts over two months."""
    repo = make_repo(tmp_path / "policy")
    store = GitStore(repo)
    record(
        store,
        EntryDraft(
            decision="blocked",
            why="open relay",
            change=Change(files=[ChangedFile.from_bytes("init.lua", b"a", b"b")]),
            findings=[finding("S201")],
            decided_at=at(0),
        ),
    )
    record(
        store,
        EntryDraft(
            decision="accepted",
            why="relay closed",
            change=Change(files=[ChangedFile.from_bytes("data/sources.toml", None, b"x")]),
            decided_at=at(60 * 24 * 40),
        ),
    )
    monkeypatch.setenv("KUMO_AUDIT_HOST", "host-b")
    monkeypatch.setenv("KUMO_AUDIT_ACTOR", "Daemon Ops <ops@example.com>")
    record(
        store,
        EntryDraft(
            decision="restart-required",
            why="listener moved",
            findings=[finding("R101")],
            reload={
                "impact": "restart",
                "elements": [{"element": "listener :25", "impact": "restart"}],
            },
            decided_at=at(60 * 24 * 41),
        ),
    )
    return repo


def history(repo: Path, *args: str) -> list[dict]:  # type: ignore[type-arg]
    return json.loads(ok(cli("runbook", "history", "--format", "json", *args, cwd=repo)))


def test_history_filters(populated: Path) -> None:
    repo = populated
    everything = history(repo)
    assert [e["decision"] for e in everything] == ["blocked", "accepted", "restart-required"]
    for e in everything:
        assert {"id", "decided_at", "decision", "actor", "change"} <= set(e)
    assert [e["decision"] for e in history(repo, "--decision", "blocked")] == ["blocked"]
    assert [e["decision"] for e in history(repo, "--since", "2026-04-01")] == [
        "accepted",
        "restart-required",
    ]
    assert [e["decision"] for e in history(repo, "--until", "2026-03-01")] == ["blocked"]
    assert [e["decision"] for e in history(repo, "--host", "host-b")] == ["restart-required"]
    assert [e["decision"] for e in history(repo, "--actor", "ops@")] == ["restart-required"]
    assert [e["decision"] for e in history(repo, "--code", "S201")] == ["blocked"]
    assert [e["decision"] for e in history(repo, "--file", "data")] == ["accepted"]
    assert [e["decision"] for e in history(repo, "--file", "*.lua")] == ["blocked"]
    assert history(repo, "--decision", "waived") == []
    text = ok(cli("runbook", "history", "--decision", "blocked", cwd=repo))
    assert text.startswith("2026-03-01T00:00:00Z  blocked")


def test_show_by_prefix(populated: Path) -> None:
    entry = history(populated, "--decision", "accepted")[0]
    shown = ok(cli("runbook", "show", entry["id"][:6], cwd=populated))
    assert shown.startswith("---\n") and "# Accepted: relay closed" in shown
    as_json = json.loads(ok(cli("runbook", "show", entry["id"], "--format", "json", cwd=populated)))
    assert as_json == entry
    missing = cli("runbook", "show", "ffffffff", cwd=populated)
    assert missing.returncode == 2 and missing.stderr.startswith(
        "kumo-audit: error: no runbook entry"
    )


def test_record_command_with_change_and_emergency_review(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "policy")
    base = git(repo, "rev-parse", "HEAD")
    commit_file(
        repo,
        "init.lua",
        "-- hotfix\n",
        "Hotfix listener INC-77\n\nApproved-by: Lee <lee@example.com>",
    )
    out = ok(
        cli(
            "runbook",
            "record",
            "--decision",
            "promoted",
            "--base",
            base,
            "--review-due",
            "2026-12-01",
            "--reload-impact",
            "epoch",
            "--environment",
            "production",
            "--ticket",
            "CHG-5",
            "--link",
            "https://tickets.example.com/INC-77",
            "--format",
            "json",
            cwd=repo,
        )
    )
    entry = json.loads(out)
    assert entry["review_due"] == "2026-12-01"
    assert entry["change"]["base"] == base and entry["change"]["files"][0]["path"] == "init.lua"
    assert entry["why"]["tickets"] == ["CHG-5", "INC-77"]
    assert entry["approvals"][0]["email"] == "lee@example.com"
    assert entry["reload"] == {"impact": "epoch", "elements": []}
    assert entry["actor"] == {
        "name": "Jane Doe",
        "email": "jane@example.com",
        "kind": "human",
        "resolved_by": "git-config",
    }
    assert entry["rollback"]["last_good"] == base
    assert git(repo, "status", "--porcelain") == ""

    sudo = cli(
        "runbook",
        "record",
        "--decision",
        "note",
        "--why",
        "restarted kumod",
        cwd=repo,
        env={"SUDO_USER": "alice"},
    )
    assert ok(sudo).startswith("recorded note ")
    assert history(repo, "--actor", "alice")[0]["actor"]["resolved_by"] == "sudo"
    assert ok(cli("runbook", "verify", cwd=repo)).startswith("ok: 2 entries")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["record", "--decision", "note", "--review-due", "soon"], "--review-due"),
        (["record", "--decision", "note", "--base", "no-such-rev"], "unknown revision"),
        (["history", "--since", "last tuesday"], "--since"),
        (["record", "--decision", "note", "--branch", "bad..name"], "invalid branch name"),
        (["show", "zz"], "hex digits"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    repo = make_repo(tmp_path / "policy")
    proc = cli("runbook", *args, cwd=repo)
    assert proc.returncode == 2
    assert (
        proc.stderr.count("\n") == 1 and message in proc.stderr and "Traceback" not in proc.stderr
    )


def test_outside_a_repository(tmp_path: Path) -> None:
    proc = cli("runbook", "history", cwd=tmp_path)
    assert proc.returncode == 2 and "not inside a Git repository" in proc.stderr
    ok(
        cli(
            "runbook",
            "record",
            "--decision",
            "note",
            "--why",
            "dir",
            "--runbook-dir",
            "rb",
            cwd=tmp_path,
        )
    )
    assert len(history(tmp_path, "--runbook-dir", "rb")) == 1


def test_html_report(populated: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    ok(cli("runbook", "report", "--output", str(out), cwd=populated))
    index = (out / "index.html").read_text()
    assert "<svg" in index and index.count("<circle") == 3
    assert "Integrity verified: 3 entries" in index
    assert sorted(p.name for p in (out / "months").iterdir()) == ["2026-03.html", "2026-04.html"]
    assert len(list((out / "entries").iterdir())) == 3
    for page in out.rglob("*.html"):
        assert "<script" not in page.read_text().lower()
    if CHROMIUM.exists():
        shot = tmp_path / "index.png"
        subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                f"--screenshot={shot}",
                "--window-size=1200,1000",
                (out / "index.html").as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert shot.exists() and shot.stat().st_size > 10_000


def test_report_shows_verification_failures(populated: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", "kumo-runbook", str(populated), str(clone))
    git(clone, "config", "user.name", "M")
    git(clone, "config", "user.email", "m@example.com")
    victim = next(p for p in (clone / "entries").rglob("*-accepted-*.md"))
    victim.write_text(victim.read_text().replace("relay closed", "relay left open"))
    git(clone, "commit", "-qam", "edit")
    git(clone, "push", "-q", "origin", "kumo-runbook")
    out = tmp_path / "report"
    ok(cli("runbook", "report", "-o", str(out), cwd=populated))
    assert "Integrity check failed" in (out / "index.html").read_text()


SECRET = "s3cr3t-DKIM-KEY-MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"


def test_no_secret_reaches_any_output(tmp_path: Path) -> None:
    """File contents, validator output and finding keys are handed to `record`; none is stored."""
    repo = make_repo(tmp_path / "policy")
    store = GitStore(repo)
    before = f"dkim_key = '{SECRET}'\n".encode()
    entry = record(
        store,
        EntryDraft(
            decision="blocked",
            why="S301 private key in the policy tree",
            change=Change(
                files=[ChangedFile.from_bytes("dkim_data.toml", before, b"key = 'file'\n")]
            ),
            findings=[
                Finding(
                    "S301",
                    "inline-dkim-key",
                    Severity.ERROR,
                    "DKIM private key inline in dkim_data.toml",
                    "dkim_data.toml",
                    Span(1, 1, 1, 9),
                    key=SECRET,
                )
            ],
            validator=ValidatorRun(exit_code=1, output=f"error: bad key {SECRET}"),
        ),
    )
    report_dir = tmp_path / "report"
    outputs = [
        ok(cli("runbook", "history", "--format", "json", cwd=repo)),
        ok(cli("runbook", "show", entry.id, cwd=repo)),
        ok(cli("runbook", "verify", cwd=repo)),
        ok(cli("runbook", "report", "-o", str(report_dir), cwd=repo)),
    ]
    for text in outputs:
        assert SECRET not in text
    for name, blob in branch_files(repo).items():
        assert SECRET.encode() not in blob, name
    for page in report_dir.rglob("*"):
        if page.is_file():
            assert SECRET.encode() not in page.read_bytes(), page
    assert entry.change is not None and entry.change.files[0].before is not None
    all_objects = git(repo, "cat-file", "--batch-all-objects", "--batch-check")
    assert (
        all_objects
    )  # the branch objects exist; none of them was made from the secret-bearing bytes
    leaked = git(repo, "hash-object", "--stdin", input=before)
    assert leaked not in all_objects


def test_actor_resolution_order(tmp_path: Path) -> None:
    from auditor.runbook.identity import resolve_actor, resolve_writer

    repo = make_repo(tmp_path / "policy")
    assert (
        resolve_actor(
            repo, env={"KUMO_AUDIT_ACTOR": "Ann <ann@x.org>", "SUDO_USER": "bob"}
        ).display()
        == "Ann <ann@x.org>"
    )
    assert resolve_actor(repo, env={"SUDO_USER": "bob"}).resolved_by == "sudo"
    assert resolve_actor(repo, env={}).resolved_by == "git-config"
    bare = tmp_path / "noconfig"
    git(tmp_path, "init", "-q", str(bare))
    ci_env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTOR": "octo",
        "GITHUB_REPOSITORY": "acme/policy",
        "GITHUB_RUN_ID": "42",
    }
    ci = resolve_actor(bare, env=ci_env)
    assert (ci.name, ci.kind, ci.resolved_by) == ("octo", "ci", "ci")
    assert resolve_writer(ci, "runner-1", env=ci_env) == "ci:github:acme/policy:42"
    daemon = resolve_actor(bare, kind="daemon", env={"KUMO_AUDIT_HOST": "cfg-9"})
    assert (daemon.name, daemon.resolved_by) == ("kumo-audit@cfg-9", "host-identity")
    writer = resolve_writer(daemon, "cfg-9", env={}, repo=bare)
    assert writer.startswith("daemon:cfg-9:") and len(writer) == len("daemon:cfg-9:") + 8
    # Created once, kept in the clone's own Git config, reused afterwards.
    assert git(bare, "config", "--get", "kumo-audit.writer-daemon") == writer
    assert resolve_writer(daemon, "other-name", env={}, repo=bare) == writer
    other = tmp_path / "other-clone"
    git(tmp_path, "init", "-q", str(other))
    assert resolve_writer(daemon, "cfg-9", env={}, repo=other) != writer


def test_actor_follows_gits_own_identity_precedence(tmp_path: Path) -> None:
    from auditor.runbook.identity import resolve_actor

    repo = make_repo(tmp_path / "policy")  # user.name Jane Doe in the repository config
    env = {"GIT_AUTHOR_NAME": "Env Author", "GIT_AUTHOR_EMAIL": "env@example.org"}
    actor = resolve_actor(repo, env=env)
    assert (actor.name, actor.email) == ("Env Author", "env@example.org")
    git(repo, "config", "author.name", "Config Author")
    git(repo, "config", "author.email", "author@example.org")
    assert resolve_actor(repo, env={}).display() == "Config Author <author@example.org>"
    assert resolve_actor(repo, env=env).display() == "Env Author <env@example.org>"
    bare = tmp_path / "noconfig"
    git(tmp_path, "init", "-q", str(bare))
    # No identity anywhere: Git would guess one; the login name is used instead.
    assert resolve_actor(bare, env={}).resolved_by == "login"
