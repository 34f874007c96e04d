"""The config-host daemon, run for real: subprocesses on temporary trees, a real HTTP server on
127.0.0.1 recording config epoch bumps, real Git checkouts and a bare remote."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.daemon_support import (
    SAFE_SHAPING,
    UNSAFE_INIT_ADDITION,
    BumpServer,
    DaemonProc,
    Host,
    checkout_repo,
    cli,
    entries,
    policy_files,
)
from tests.gitrepo import Repo


@pytest.fixture
def bump_server():
    server = BumpServer()
    yield server
    server.close()


def digest_tree(root: Path) -> dict[str, str]:
    root = root.resolve()
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def checkout_host(tmp_path: Path, server: BumpServer, name: str = "mx1", **options):  # type: ignore[no-untyped-def]
    repo = checkout_repo(tmp_path / f"{name}-checkout")
    host = Host(tmp_path, name, {"kind": "checkout", "repo": str(repo.path)}, server.url, **options)
    host.seed_live(policy_files())
    host.init()
    return repo, host


def init_edit(repo: Repo) -> str:
    text = (repo.path / "init.lua").read_text()
    return text.replace("max_segment_duration = '1 minute'", "max_segment_duration = '5 minutes'")


def test_safe_commit_promoted_and_bumped_once_unsafe_blocked(tmp_path, bump_server):
    repo, host = checkout_host(tmp_path, bump_server)
    daemon = host.start()
    try:
        # the checkout's first commit has the live content: adopted without an epoch bump
        daemon.wait_for(lambda e: e.get("event") == "verdict")
        assert bump_server.bumps == []

        safe = repo.commit({"shaping.toml": SAFE_SHAPING}, "Raise the default connection limit")
        daemon.wait_for(lambda e: e.get("event") == "verdict", count=2)
        assert daemon.verdicts()[-1]["decision"] == "promoted"
        assert os.readlink(host.live).endswith(f"releases/{safe}")
        assert (host.live / "shaping.toml").read_text() == SAFE_SHAPING
        time.sleep(0.3)
        assert len(bump_server.bumps) == 1

        before = digest_tree(host.live)
        init = (repo.path / "init.lua").read_text()
        unsafe = repo.commit({"init.lua": init + UNSAFE_INIT_ADDITION}, "Run a command per message")
        daemon.wait_for(lambda e: e.get("event") == "verdict", count=3)
        assert daemon.verdicts()[-1]["decision"] == "blocked"
        assert digest_tree(host.live) == before
        assert os.readlink(host.live).endswith(f"releases/{safe}")
        time.sleep(0.3)
        assert len(bump_server.bumps) == 1

        status = host.status()
        assert status["running"] and status["live_release"] == safe
        assert status["last_verdict"]["decision"] == "blocked"
        assert status["last_verdict"]["candidate"] == unsafe
        assert status["last_epoch_bump"]["ok"] is True
        text = cli("daemon", "status", "--config", str(host.config)).stdout
        assert "last verdict: blocked" in text and safe in text

        # a second daemon on the same tree refuses, with one line and exit status 2
        second = subprocess.run(
            [*DaemonProc.command(host.config)],
            capture_output=True,
            text=True,
            timeout=30,
            env=DaemonProc.environment(),
            cwd=DaemonProc.cwd(),
        )
        assert second.returncode == 2
        assert second.stderr.count("\n") == 1 and "already manages" in second.stderr
    finally:
        assert daemon.stop() == 0

    records = entries(repo.path)
    by_head = {(r["decision"], r["change"]["head"]) for r in records}
    assert ("promoted", safe) in by_head and ("blocked", unsafe) in by_head
    blocked = next(r for r in records if r["decision"] == "blocked")
    assert {f["code"] for f in blocked["evidence"]["findings"]} >= {"S109"}
    assert all(r["host"] == "mx1" and r["actor"]["kind"] == "daemon" for r in records)
    promoted = next(r for r in records if r["change"]["head"] == safe)
    assert promoted["reload"]["daemon"]["epoch_bump"]["ok"] is True
    assert cli("runbook", "verify", "--repo", str(repo.path)).returncode == 0


def test_restart_change_held_or_promoted_per_option(tmp_path, bump_server):
    held_repo, held = checkout_host(tmp_path, bump_server, "hold-host", on_restart="hold")
    promo_repo, promo = checkout_host(tmp_path, bump_server, "promote-host", on_restart="promote")
    d1, d2 = held.start(), promo.start()
    try:
        for d in (d1, d2):
            d.wait_for(lambda e: e.get("event") == "verdict")
        h_rev = held_repo.commit({"init.lua": init_edit(held_repo)}, "Longer log segments")
        p_rev = promo_repo.commit({"init.lua": init_edit(promo_repo)}, "Longer log segments")
        for d in (d1, d2):
            d.wait_for(lambda e: e.get("event") == "verdict", count=2)
            assert d.verdicts()[-1]["decision"] == "restart-required"
        assert not os.readlink(held.live).endswith(h_rev)
        assert "5 minutes" not in (held.live / "init.lua").read_text()
        assert held.status()["held"] == h_rev
        assert os.readlink(promo.live).endswith(p_rev)
        assert "5 minutes" in (promo.live / "init.lua").read_text()
        # the operator promotes the held change in a restart window
        answer = cli("daemon", "promote", h_rev, "--config", str(held.config))
        assert "restart-required" in answer.stdout
        assert os.readlink(held.live).endswith(h_rev)
    finally:
        d1.stop()
        d2.stop()
    for repo, rev, promoted in ((held_repo, h_rev, False), (promo_repo, p_rev, True)):
        record = next(
            r
            for r in entries(repo.path)
            if r["decision"] == "restart-required"
            and r["change"]["head"] == rev
            and r["reload"]["daemon"]["promoted"] == promoted
        )
        assert record["reload"]["impact"] == "restart"
        assert record["reload"]["daemon"]["restart_command"] == "systemctl restart kumomta"
        assert "systemctl restart kumomta" in record["why"]["text"]


def test_drift_in_each_mode(tmp_path, bump_server):
    hosts = {}
    for mode in ("warn", "block", "heal"):
        hosts[mode] = checkout_host(tmp_path, bump_server, f"drift-{mode}", drift=mode)
    daemons = {mode: host.start() for mode, (_, host) in hosts.items()}
    try:
        for d in daemons.values():
            d.wait_for(lambda e: e.get("event") == "verdict")
        originals = {
            mode: (host.live / "shaping.toml").read_bytes() for mode, (_, host) in hosts.items()
        }
        for _, host in hosts.values():
            (host.live / "shaping.toml").write_text(SAFE_SHAPING.replace("12", "40"))
        for d in daemons.values():
            d.wait_for(lambda e: e.get("decision") == "drift-detected", timeout=10)
        # the same drift is recorded once, however many rescans see it
        time.sleep(1.5)
        for d in daemons.values():
            assert len(d.verdicts("drift-detected")) == 1
        warn_host, block_host, heal_host = (hosts[m][1] for m in ("warn", "block", "heal"))
        assert warn_host.status()["drift"]["files"] == ["shaping.toml"]
        assert (heal_host.live / "shaping.toml").read_bytes() == originals["heal"]
        assert heal_host.status()["drift"] is None
        # block: a new commit waits while the live tree has drifted
        block_repo = hosts["block"][0]
        rev = block_repo.commit(
            {"queues.toml": (block_repo.path / "queues.toml").read_text() + "\n"}, "Spacing"
        )
        daemons["block"].wait_for(
            lambda e: e.get("event") == "verdict" and e.get("decision") == "blocked"
        )
        assert not os.readlink(block_host.live).endswith(rev)
        # resolving the drift lets it through
        (block_host.live / "shaping.toml").write_bytes(originals["block"])
        daemons["block"].wait_for(
            lambda e: (
                e.get("event") == "verdict"
                and e.get("decision") == "promoted"
                and e.get("candidate") == rev
            )
        )
        # a different hand edit is a new drift
        (warn_host.live / "queues.toml").write_text("broken = [\n")
        daemons["warn"].wait_for(
            lambda e: e.get("decision") == "drift-detected", count=2, timeout=10
        )
    finally:
        for d in daemons.values():
            d.stop()
    heal_records = [r for r in entries(hosts["heal"][0].path) if r["decision"] == "drift-detected"]
    assert len(heal_records) == 1 and "healed" in heal_records[0]["why"]["text"]
    assert heal_records[0]["change"]["files"][0]["path"] == "shaping.toml"


def test_watch_mode_sees_atomic_rename_and_one_audit_per_burst(tmp_path, bump_server):
    runbook = Repo(tmp_path / "runbook")
    runbook.commit(message="runbook home")
    host = Host(
        tmp_path,
        "watcher",
        {"kind": "watch"},
        bump_server.url,
        rescan_interval=30.0,
        debounce_ms=200,
        runbook={"repo": str(runbook.path)},
    )
    host.seed_live(policy_files())
    daemon = host.start()
    try:
        daemon.wait_for(lambda e: e.get("event") == "verdict")  # the first state seen
        # an editor's save: write a temporary file, then rename it over the original
        tmp = host.live / ".shaping.toml.swp"
        tmp.write_text(SAFE_SHAPING)
        os.rename(tmp, host.live / "shaping.toml")
        daemon.wait_for(lambda e: e.get("event") == "verdict", count=2, timeout=5)
        assert daemon.verdicts()[-1]["decision"] == "accepted"
        # 1,000 files in one burst: one audit
        data = host.live / "data"
        data.mkdir()
        for i in range(1000):
            (data / f"f{i:04}.json").write_text(json.dumps({"i": i}))
        daemon.wait_for(lambda e: e.get("event") == "verdict", count=3, timeout=15)
        time.sleep(1.0)
        assert len(daemon.verdicts()) == 3
        assert bump_server.bumps == []  # watch mode never promotes
    finally:
        daemon.stop()
    assert len(entries(runbook.path)) == 3


def test_kill9_during_promotions_keeps_the_tree_and_the_record_consistent(tmp_path, bump_server):
    from auditor.daemon.layout import tree_manifest

    repo, host = checkout_host(tmp_path, bump_server, "crashy")
    rng = random.Random(20261201)
    daemon = host.start()
    daemon.wait_for(lambda e: e.get("event") == "verdict")
    limit = 12
    in_flight = 0
    for trial in range(20):
        limit += 1
        repo.commit({"shaping.toml": SAFE_SHAPING.replace("12", str(limit))}, f"Limit {limit}")
        time.sleep(rng.uniform(0.05, 0.5))
        in_flight += daemon.kill9_during_decision(host.state_dir)
        # the live link is on a complete release, whatever the moment
        target = Path(os.readlink(host.live))
        manifest = json.loads((host.state_dir / "manifests" / f"{target.name}.json").read_text())
        assert tree_manifest(target) == manifest, f"trial {trial}: torn release {target.name}"
        daemon = host.start()
        head = repo.git("rev-parse", "HEAD")
        status = wait_status(
            host,
            lambda s, head=head: s["live_release"] == head and s["unfinished_decision"] is None,
        )
        assert status["last_verdict"]["candidate"] == head, status
    daemon.stop()
    assert in_flight >= 1, "no kill landed inside a decision"
    records = entries(repo.path)
    ids = [r["reload"]["daemon"]["decision"] for r in records]
    assert len(ids) == len(set(ids)), "a decision was recorded twice"
    heads = [r["change"]["head"] for r in records if r["decision"] == "promoted"]
    assert len(heads) == len(set(heads)), "a revision was promoted twice"
    # every release the daemon made live has its promotion entry
    state = json.loads((host.state_dir / "state.json").read_text())
    live_revs = {h["rev"] for h in state["history"] if h.get("rev")}
    assert live_revs <= set(heads)
    assert cli("runbook", "verify", "--repo", str(repo.path)).returncode == 0
    # old releases are pruned: the last `keep_releases` (5) and the live one remain
    kept = [p for p in (host.state_dir / "releases").iterdir() if not p.name.startswith(".")]
    assert len(kept) <= 6 and Path(os.readlink(host.live)) in kept


def test_three_pull_daemons_share_one_runbook(tmp_path, bump_server):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    dev = Repo(tmp_path / "dev")
    dev.write(policy_files())
    dev.commit(message="initial policy")
    dev.git("remote", "add", "origin", str(remote))
    dev.git("push", "-q", "origin", "main")
    hosts = []
    for name in ("mx1", "mx2", "mx3"):
        host = Host(
            tmp_path,
            name,
            # mx3 fetches only when told to (`daemon sync`, i.e. SIGHUP)
            {
                "kind": "pull",
                "url": str(remote),
                "branch": "main",
                "interval": 0.3 if name != "mx3" else 600.0,
            },
            bump_server.url,
            runbook={"remote": "origin"},
        )
        host.seed_live(policy_files())
        host.init()
        hosts.append(host)
    daemons = [h.start() for h in hosts]
    revs = []
    try:
        for d in daemons:
            d.wait_for(lambda e: e.get("event") == "verdict")
        for limit in (20, 30, 40):
            dev.commit({"shaping.toml": SAFE_SHAPING.replace("12", str(limit))}, f"Limit {limit}")
            dev.git("push", "-q", "origin", "main")
            revs.append(dev.git("rev-parse", "HEAD"))
            assert (
                "asked the daemon" in cli("daemon", "sync", "--config", str(hosts[2].config)).stdout
            )
            for d in daemons:
                d.wait_for(
                    lambda e, rev=revs[-1]: (
                        e.get("event") == "verdict" and e.get("candidate") == rev
                    ),
                    timeout=20,
                )
    finally:
        for d in daemons:
            d.stop()
    records = entries(remote)
    for host in ("mx1", "mx2", "mx3"):
        mine = [r for r in records if r["host"] == host and r["decision"] == "promoted"]
        assert {r["change"]["head"] for r in mine} >= set(revs), host
    # every entry any host recorded is on the remote (a clean stop pushes what is left), once
    remote_ids = [r["id"] for r in records]
    assert len(set(remote_ids)) == len(remote_ids)
    for host in hosts:
        local = {r["id"] for r in entries(host.state_dir / "source") if r["host"] == host.name}
        assert local and local <= set(remote_ids), host.name
    # and each host's entries form one chain: every entry but the first follows another of its own
    for name in ("mx1", "mx2", "mx3"):
        mine = [r for r in records if r["host"] == name]
        hashes = {r["hash"] for r in mine}
        assert sum(1 for r in mine if r["prev_hash"] is None) == 1, name
        assert all(r["prev_hash"] in hashes for r in mine if r["prev_hash"] is not None), name
    clone = tmp_path / "audit"
    subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True)
    subprocess.run(
        ["git", "-C", str(clone), "fetch", "-q", "origin", "kumo-runbook:kumo-runbook"], check=True
    )
    assert cli("runbook", "verify", "--repo", str(clone)).returncode == 0
    fleet = json.loads(cli("runbook", "fleet", "--repo", str(clone), "--format", "json").stdout)
    assert {(row["host"], row["revision"]) for row in fleet} == {
        (h, revs[-1]) for h in ("mx1", "mx2", "mx3")
    }
    text = cli("runbook", "fleet", "--repo", str(clone)).stdout
    assert "mx2" in text and revs[-1][:12] in text


def many_modules(count: int) -> dict[str, str]:
    """Modules the entry file requires: an audit that takes a while, file after file."""
    return {
        f"mod{i:03}.lua": "local M = {}\n"
        + "".join(f"M.value_{j} = {{ name = 'v{i}_{j}', limit = {j} }}\n" for j in range(80))
        + "return M\n"
        for i in range(count)
    }


def test_a_newer_commit_preempts_an_audit_still_running(tmp_path, bump_server):
    repo, host = checkout_host(tmp_path, bump_server, "preempting")
    daemon = host.start()
    try:
        daemon.wait_for(lambda e: e.get("event") == "verdict")
        init = (repo.path / "init.lua").read_text()
        modules = many_modules(150)
        requires = "".join(f"local m{i:03} = require 'mod{i:03}'\n" for i in range(150))
        slow = repo.commit({**modules, "init.lua": requires + init}, "Split the policy in modules")
        daemon.wait_for(lambda e: e.get("event") == "checking" and e.get("candidate") == slow[:12])
        for name in modules:
            (repo.path / name).unlink()
        newer = repo.commit({"init.lua": init, "shaping.toml": SAFE_SHAPING}, "Only the limit")
        stopped = daemon.wait_for(
            lambda e: e.get("event") == "preempted" and e.get("candidate") == slow[:12]
        )[0]
        daemon.wait_for(lambda e: e.get("event") == "verdict" and e.get("candidate") == newer)
        assert daemon.verdicts()[-1]["decision"] == "promoted"
        assert os.readlink(host.live).endswith(newer)
        assert not [v for v in daemon.verdicts() if v.get("candidate") == slow]
        assert not (host.state_dir / "releases" / slow).exists()
        # the check stopped inside the audit (between two files), not after it
        assert stopped["during"].startswith("audit: before "), stopped
        assert host.status()["counts"].get("preempted", 0) >= 1  # and the uncommitted deletions
        time.sleep(0.3)
        assert len(bump_server.bumps) == 1
    finally:
        daemon.stop()
    records = entries(repo.path)
    assert not [r for r in records if r["change"]["head"] == slow]
    promoted = next(r for r in records if r["change"]["head"] == newer)
    assert promoted["decision"] == "promoted"
    # what the pre-empted commit did is part of the promoted change's record
    subjects = [c["subject"] for c in promoted["why"]["commits"]]
    assert subjects == ["Split the policy in modules", "Only the limit"]
    assert cli("runbook", "verify", "--repo", str(repo.path)).returncode == 0


def test_rollback_goes_through_the_gate_and_is_recorded(tmp_path, bump_server):
    repo, host = checkout_host(tmp_path, bump_server, "rolly")
    daemon = host.start()
    try:
        first = daemon.wait_for(lambda e: e.get("event") == "verdict")[0]["candidate"]
        second = repo.commit({"shaping.toml": SAFE_SHAPING}, "Raise the limit")
        daemon.wait_for(lambda e: e.get("event") == "verdict" and e.get("candidate") == second)
        answer = cli("daemon", "rollback", "--config", str(host.config))
        assert "rolled-back" in answer.stdout
        assert os.readlink(host.live).endswith(first)
        time.sleep(1.5)  # the rolled-back-from revision is not promoted again
        assert os.readlink(host.live).endswith(first)
        assert len(bump_server.bumps) == 2
    finally:
        daemon.stop()
    rolled = [r for r in entries(repo.path) if r["decision"] == "rolled-back"]
    assert len(rolled) == 1 and rolled[0]["reload"]["daemon"]["release"] == first


def test_epoch_bump_retries_and_metrics(tmp_path):
    server = BumpServer(fail_first=2)
    port = _free_port()
    try:
        repo, host = checkout_host(
            tmp_path, server, "flaky", metrics={"listen": f"127.0.0.1:{port}"}
        )
        daemon = host.start()
        try:
            daemon.wait_for(lambda e: e.get("event") == "verdict")
            rev = repo.commit({"shaping.toml": SAFE_SHAPING}, "Raise the limit")
            daemon.wait_for(lambda e: e.get("event") == "verdict" and e.get("candidate") == rev)
            body = (
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
                .read()
                .decode()
            )
        finally:
            daemon.stop()
    finally:
        server.close()
    assert len(server.bumps) == 3
    assert 'kumo_audit_daemon_verdicts_total{decision="promoted"} 2.0' in body, body[:1500]
    assert "kumo_audit_daemon_audit_seconds_bucket" in body
    record = next(r for r in entries(repo.path) if r["change"]["head"] == rev)
    assert record["reload"]["daemon"]["epoch_bump"]["attempts"] == 3
    assert record["reload"]["daemon"]["epoch_bump"]["errors"] == ["HTTP 500", "HTTP 500"]


def wait_status(host: Host, predicate, timeout: float = 20):  # type: ignore[no-untyped-def]
    from auditor.daemon.cli import status_data
    from auditor.daemon.config import load

    cfg = load(host.config)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = status_data(cfg)
        if predicate(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"status never matched: {status}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FAKE_KUMOD = """#!/bin/sh
# stands in for kumod: records its arguments, takes a while, fails on a marked policy
echo "$@" >> "{log}"
policy=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--policy" ]; then policy="$2"; fi
  shift
done
sleep 1.5
if grep -q VALIDATE_FAIL "$policy"; then echo "Validation failed"; exit 1; fi
exit 0
"""


def test_kumod_validate_preemption_symlinks_and_dirty_edits(tmp_path, bump_server):
    calls = tmp_path / "kumod-calls.log"
    kumod = tmp_path / "kumod"
    kumod.write_text(FAKE_KUMOD.replace("{log}", str(calls)))
    kumod.chmod(0o755)
    repo, host = checkout_host(tmp_path, bump_server, "validating", kumod={"binary": str(kumod)})
    daemon = host.start()
    try:
        daemon.wait_for(lambda e: e.get("event") == "verdict")
        slow = repo.commit({"shaping.toml": SAFE_SHAPING}, "First change")
        time.sleep(0.6)  # its audit is done; kumod --validate is running
        newer = repo.commit({"shaping.toml": SAFE_SHAPING.replace("12", "14")}, "Second change")
        daemon.wait_for(lambda e: e.get("event") == "preempted" and e.get("candidate") == slow[:12])
        daemon.wait_for(lambda e: e.get("event") == "verdict" and e.get("candidate") == newer)
        assert daemon.verdicts()[-1]["decision"] == "promoted"
        assert os.readlink(host.live).endswith(newer)
        assert not [v for v in daemon.verdicts() if v.get("candidate") == slow]
        # kumod --validate ran against the materialised candidate
        assert (
            f"--policy {host.state_dir}/releases/{newer}/init.lua --validate" in calls.read_text()
        )

        init = (repo.path / "init.lua").read_text()
        failing = repo.commit({"init.lua": init + "\n-- VALIDATE_FAIL\n"}, "Comment kumod rejects")
        daemon.wait_for(lambda e: e.get("event") == "verdict" and e.get("candidate") == failing)
        assert daemon.verdicts()[-1]["decision"] == "blocked"
        assert os.readlink(host.live).endswith(newer)

        os.symlink("/etc/passwd", repo.path / "leak.lua")
        leaking = repo.commit(message="Link out of the tree")
        daemon.wait_for(lambda e: e.get("event") == "verdict" and e.get("candidate") == leaking)
        assert daemon.verdicts()[-1]["decision"] == "blocked"
        assert not (host.live / "leak.lua").exists()

        (repo.path / "leak.lua").unlink()
        (repo.path / "init.lua").write_text(init)
        (repo.path / "queues.toml").write_text(
            (repo.path / "queues.toml").read_text() + "\n# note\n"
        )
        dirty = daemon.wait_for(
            lambda e: e.get("event") == "verdict" and str(e.get("candidate")).startswith("dirty-")
        )[0]
        assert dirty["decision"] == "accepted"
        assert os.readlink(host.live).endswith(newer)
    finally:
        daemon.stop()
    records = {r["change"]["head"]: r for r in entries(repo.path)}
    assert records[failing]["evidence"]["validator"]["exit_code"] == 1
    assert "VALIDATE_FAIL" not in json.dumps(records[failing]["evidence"])
    assert records[newer]["evidence"]["validator"]["exit_code"] == 0
    # how the validation saw the live path is in the decision and in the status
    isolation = host.status()["validation"]["isolation"]
    assert isolation in ("namespace", "none")
    assert records[newer]["reload"]["daemon"]["validate"]["isolation"] == isolation
    assert any(
        "symlink" in (r["why"]["text"] or "")
        for r in records.values()
        if r["change"]["head"] == leaking
    )
