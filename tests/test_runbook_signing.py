"""Signed entries and checkpoints, with keys made by ssh-keygen and checked against allowed_signers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_runbook_support import at, cli, git, make_repo
from test_runbook_support import runbook_env as runbook_env  # the fixture

from auditor.runbook.checkpoint import write_checkpoint
from auditor.runbook.markdown import render_entry
from auditor.runbook.model import Entry
from auditor.runbook.record import EntryDraft, record
from auditor.runbook.signing import (
    NAMESPACE,
    Checker,
    message,
    parse_allowed_signers,
    sign_in_process,
)
from auditor.runbook.store import DirStore, GitStore
from auditor.runbook.verify import verify_store

pytestmark = pytest.mark.usefixtures("runbook_env")
HUMAN = "human:host-a:aaaa0001"
CI = "ci:github:acme/policy:7"


def keygen(directory: Path, name: str, kind: str = "ed25519") -> Path:
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", str(path)], check=True
    )
    return path


def public(key: Path) -> str:
    kind, blob, *_ = key.with_suffix(".pub").read_text().split()
    return f"{kind} {blob}"


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    directory = tmp_path / "keys"
    directory.mkdir()
    return {name: keygen(directory, name) for name in ("alice", "ci", "mallory")}


@pytest.fixture
def allowed_text(keys: dict[str, Path]) -> str:
    return (
        "# who may sign runbook entries\n"
        f'human:host-a:* namespaces="{NAMESPACE}" {public(keys["alice"])}\n'
        f"ci:github:acme/policy:* {public(keys['ci'])}\n"
    )


def signed_chain(
    tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch, count: int = 3
) -> tuple[DirStore, list[Entry]]:
    store = DirStore(tmp_path / "rb")
    monkeypatch.setenv("KUMO_AUDIT_WRITER", HUMAN)
    entries = [
        record(
            store,
            EntryDraft(decision="accepted", why=f"a{i}", decided_at=at(i)),
            now=at(i),
            signing_key=str(keys["alice"]),
        )
        for i in range(1, count + 1)
    ]
    monkeypatch.delenv("KUMO_AUDIT_WRITER")
    return store, entries


def kinds(report) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(p.kind, p.name) for p in report.problems}


def rewrite(store: DirStore, entries: list[Entry], keep_signatures: bool) -> list[Entry]:
    """A forger edits the first entry and re-seals the whole chain with recomputed hashes."""
    for entry in entries:
        (store.root / entry.file_name()).unlink()
    out: list[Entry] = []
    prev = None
    for i, entry in enumerate(entries):
        body = {**entry.body(), "prev_hash": prev}
        if i == 0:
            body["why"] = {**body["why"], "text": "approved by the CTO"}
        new = Entry.seal(body)
        if keep_signatures:
            new = new.model_copy(update={"signature": entry.signature})
        target = store.root / new.file_name()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(render_entry(new))
        out.append(new)
        prev = new.hash
    return out


def test_signatures_are_openssh_signatures(
    tmp_path: Path, keys: dict[str, Path], allowed_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, entries = signed_chain(tmp_path, keys, monkeypatch)
    allowed = parse_allowed_signers(allowed_text, "allowed_signers")
    report = verify_store(store, allowed=allowed, require_signed=True)
    assert report.ok, report.problems
    assert report.signed == 3
    signers = tmp_path / "allowed_signers"
    signers.write_text(allowed_text)
    sig = tmp_path / "entry.sig"
    sig.write_text(entries[0].signature + "\n")
    command = ["ssh-keygen", "-Y", "verify", "-f", str(signers), "-n", NAMESPACE, "-s", str(sig)]
    good = subprocess.run(
        [*command, "-I", HUMAN], input=message(entries[0].hash), capture_output=True
    )
    assert good.returncode == 0, good.stderr
    # OpenSSH agrees with the checks made in this process: another writer, another message.
    assert subprocess.run([*command, "-I", CI], input=message(entries[0].hash)).returncode != 0
    assert subprocess.run([*command, "-I", HUMAN], input=message(entries[1].hash)).returncode != 0
    checker = Checker(allowed)
    assert checker.check(entries[0].signature, message(entries[0].hash), HUMAN).status == "good"
    assert checker.check(entries[0].signature, message(entries[1].hash), HUMAN).status == "bad"
    assert checker.check(entries[0].signature, message(entries[0].hash), CI).status == (
        "wrong-signer"
    )


def test_in_process_signatures_and_other_key_types_match_openssh(
    tmp_path: Path, allowed_text: str
) -> None:
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    ecdsa = keygen(tmp_path, "ecdsa", "ecdsa")
    rsa = keygen(tmp_path, "rsa", "rsa")
    text = f"w:* {public(ecdsa)}\nw:* {public(rsa)}\n"
    signers = tmp_path / "signers"
    signers.write_text(text)
    checker = Checker(parse_allowed_signers(text, "signers"))
    for key in (ecdsa, rsa):
        proc = subprocess.run(
            ["ssh-keygen", "-q", "-Y", "sign", "-n", NAMESPACE, "-f", str(key)],
            input=b"data",
            capture_output=True,
            check=True,
        )
        armored = proc.stdout.decode()
        assert checker.check(armored, b"data", "w:1").status == "good"
        assert checker.check(armored, b"datA", "w:1").status == "bad"
    ed = keygen(tmp_path, "ed")
    private = load_ssh_private_key(ed.read_bytes(), None)
    armored = sign_in_process(private, b"hello")
    signers.write_text(f"w:* {public(ed)}\n")
    sig = tmp_path / "x.sig"
    sig.write_text(armored + "\n")
    verify = ["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", "w:1", "-n", NAMESPACE]
    proc = subprocess.run([*verify, "-s", str(sig)], input=b"hello", capture_output=True)
    assert proc.returncode == 0, proc.stderr


def test_rewritten_signed_chain_is_caught(
    tmp_path: Path, keys: dict[str, Path], allowed_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, entries = signed_chain(tmp_path, keys, monkeypatch)
    allowed = parse_allowed_signers(allowed_text, "allowed_signers")
    forged = rewrite(store, entries, keep_signatures=True)
    report = verify_store(store, allowed=allowed)
    assert kinds(report) == {("bad-signature", e.file_name()) for e in forged}
    # Without the signatures the forgery passes the hash chain; requiring signatures catches it.
    store2, entries2 = signed_chain(tmp_path / "2", keys, monkeypatch)
    stripped = rewrite(store2, entries2, keep_signatures=False)
    assert verify_store(store2, allowed=allowed).ok
    report = verify_store(store2, allowed=allowed, require_signed=True)
    assert kinds(report) == {("unsigned", e.file_name()) for e in stripped}


def test_rewritten_chain_covered_by_a_checkpoint_is_caught(
    tmp_path: Path, keys: dict[str, Path], allowed_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, entries = signed_chain(tmp_path, keys, monkeypatch)
    monkeypatch.setenv("KUMO_AUDIT_WRITER", CI)
    point = write_checkpoint(store, now=at(30), signing_key=str(keys["ci"]))
    monkeypatch.delenv("KUMO_AUDIT_WRITER")
    assert point.checkpoint is not None and point.checkpoint.entries == 3
    assert point.checkpoint.heads[HUMAN].hash == entries[-1].hash
    allowed = parse_allowed_signers(allowed_text, "allowed_signers")
    report = verify_store(store, allowed=allowed, require_signed=True)
    assert report.ok, report.problems
    assert report.latest_checkpoint().hash == point.hash  # type: ignore[union-attr]
    rewrite(store, entries, keep_signatures=False)
    report = verify_store(store, allowed=allowed)  # not even --require-signed
    assert kinds(report) == {("checkpoint", point.file_name())}
    assert HUMAN in report.problems[0].detail and "3 entries" in report.problems[0].detail


def test_wrong_key_and_other_writers_key_are_caught(
    tmp_path: Path, keys: dict[str, Path], allowed_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = signed_chain(tmp_path, keys, monkeypatch, count=1)
    monkeypatch.setenv("KUMO_AUDIT_WRITER", HUMAN)
    stranger = record(
        store, EntryDraft(decision="note", why="m"), now=at(5), signing_key=str(keys["mallory"])
    )
    borrowed = record(
        store, EntryDraft(decision="note", why="c"), now=at(6), signing_key=str(keys["ci"])
    )
    allowed = parse_allowed_signers(allowed_text, "allowed_signers")
    report = verify_store(store, allowed=allowed)
    assert kinds(report) == {
        ("unknown-signer", stranger.file_name()),
        ("wrong-signer", borrowed.file_name()),
    }
    detail = {p.kind: p.detail for p in report.problems}
    assert "not in allowed_signers" in detail["unknown-signer"]
    assert f"not for writer {HUMAN}" in detail["wrong-signer"]


def test_unsigned_entries_and_the_cli(
    tmp_path: Path, keys: dict[str, Path], allowed_text: str
) -> None:
    repo = make_repo(tmp_path / "policy")
    for text in ("one", "two"):
        proc = cli("runbook", "record", "--decision", "note", "--why", text, cwd=repo)
        assert proc.returncode == 0, proc.stderr
    (repo / ".kumo-audit").mkdir()
    (repo / ".kumo-audit" / "allowed_signers").write_text(allowed_text)
    git(repo, "add", ".kumo-audit/allowed_signers")
    git(repo, "commit", "-q", "-m", "Runbook signers")
    proc = cli("runbook", "verify", cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = cli("runbook", "verify", "--require-signed", cwd=repo)
    assert proc.returncode == 1 and proc.stdout.count("unsigned:") == 2
    # From now on this clone signs: its writer id is human:host-a:<random>, allowed for alice.
    git(repo, "config", "kumo-audit.signingKey", str(keys["alice"]))
    proc = cli("runbook", "record", "--decision", "note", "--why", "signed", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    history = cli("runbook", "history", cwd=repo).stdout.splitlines()
    signed = [line for line in history if "signed:human:host-a:*" in line]
    assert len(history) == 3 and len(signed) == 1 and "signed" in signed[0]
    proc = cli("runbook", "checkpoint", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "wrote checkpoint" in proc.stdout and "3 entries in 1 writer chains" in proc.stdout
    proc = cli("runbook", "verify", cwd=repo)
    assert proc.returncode == 0 and "4 entries" in proc.stdout and "2 signed" in proc.stdout
    assert "latest checkpoint:" in proc.stdout
    shown = cli("runbook", "checkpoint", "--show", cwd=repo)
    assert shown.returncode == 0 and "latest checkpoint" in shown.stdout
    digest = shown.stdout.split()[2]
    assert cli("runbook", "verify", "--expect-checkpoint", digest[:12], cwd=repo).returncode == 0
    proc = cli("runbook", "verify", "--expect-checkpoint", "0123456789ab", cwd=repo)
    assert proc.returncode == 1 and "checkpoint: 0123456789ab" in proc.stdout
    assert GitStore(repo).state().names
    # A checkpoint needs a key.
    git(repo, "config", "--unset", "kumo-audit.signingKey")
    proc = cli("runbook", "checkpoint", cwd=repo)
    assert proc.returncode == 2 and "must be signed" in proc.stderr


def test_ci_record_writes_checkpoints_on_the_configured_cadence(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    repo = make_repo(tmp_path / "policy")
    (repo / "kumo-audit.toml").write_text("[runbook]\ncheckpoint_every = 2\n")
    git(repo, "add", "kumo-audit.toml")
    git(repo, "commit", "-q", "-m", "Checkpoint every two entries")
    git(repo, "config", "kumo-audit.signingKey", str(keys["alice"]))
    decisions = []
    for i in range(4):
        base = git(repo, "rev-parse", "HEAD")
        (repo / "init.lua").write_text(f"local kumo = require 'kumo'\n-- {i}\n")
        git(repo, "commit", "-q", "-am", f"edit {i}")
        proc = cli("ci", "--base", base, "--record", cwd=repo)
        assert proc.returncode in (0, 1), proc.stderr
        decisions.append("recorded runbook checkpoint" in proc.stderr)
    # entries: e1, e2 -> checkpoint (3 entries), e3, e4 -> checkpoint
    assert decisions == [False, True, False, True]
    report = verify_store(GitStore(repo), allowed=None)
    assert report.ok and report.checkpoints() == 2 and report.entries == 6


def test_report_history_and_export_show_signers_checkpoints_writers_and_hosts(
    tmp_path: Path, keys: dict[str, Path], allowed_text: str
) -> None:
    import csv
    import io
    import json

    repo = make_repo(tmp_path / "policy")
    (repo / ".kumo-audit").mkdir()
    (repo / ".kumo-audit" / "allowed_signers").write_text(allowed_text)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "Runbook signers")
    run = lambda *a, **kw: cli("runbook", *a, cwd=repo, **kw)  # noqa: E731
    assert run("record", "--decision", "note", "--why", "=unsigned first").returncode == 0
    git(repo, "config", "kumo-audit.signingKey", str(keys["alice"]))
    assert run("record", "--decision", "blocked", "--why", "signed").returncode == 0
    ci_env = {"KUMO_AUDIT_WRITER": CI, "KUMO_AUDIT_HOST": "runner-7"}
    proc = run(
        "record",
        "--decision",
        "accepted",
        "--why",
        "ci",
        "--signing-key",
        str(keys["ci"]),
        env=ci_env,
    )
    assert proc.returncode == 0, proc.stderr
    assert run("checkpoint").returncode == 0

    lines = run("history", "--writer", "ci:*").stdout.splitlines()
    assert len(lines) == 1 and "signed:ci:github:acme/policy:*" in lines[0]
    assert len(run("history", "--host", "runner-*").stdout.splitlines()) == 1
    assert len(run("history", "--host", "host-a").stdout.splitlines()) == 3

    out = tmp_path / "report"
    assert run("report", "-o", str(out)).returncode == 0
    index = (out / "index.html").read_text()
    assert "Checkpoints" in index and "3 signed" in index
    assert "good: human:host-a:*" in index and "unsigned" in index
    assert len(list((out / "writers").glob("*.html"))) == 2
    assert len(list((out / "hosts").glob("*.html"))) == 2
    pages = [p.read_text() for p in (out / "entries").glob("*.html")]
    assert sum("Signed statement of every writer" in p for p in pages) == 1

    jsonl = run("export", "--format", "jsonl").stdout.splitlines()
    records = [json.loads(line) for line in jsonl]
    # Entries recorded within one second sort by name: compare by decision.
    by_decision = {r["decision"]: r for r in records}
    assert sorted(by_decision) == ["accepted", "blocked", "checkpoint", "note"]
    assert "signature" not in by_decision["note"]
    assert by_decision["blocked"]["signature"].startswith("-----BEGIN")
    rows = list(csv.DictReader(io.StringIO(run("export", "--format", "csv").stdout)))
    by_row = {r["decision"]: r for r in rows}
    assert sorted(by_row) == ["accepted", "blocked", "checkpoint", "note"] and len(rows) == 4
    assert by_row["note"]["summary"] == "'=unsigned first"  # never a spreadsheet formula
    assert by_row["blocked"]["signed_by"].startswith("SHA256:")
    assert by_row["note"]["signed_by"] == ""
    assert by_row["checkpoint"]["checkpoint_entries"] == "3"
    only = run("export", "--format", "csv", "--writer", CI).stdout.splitlines()
    assert len(only) == 2
