"""The daemon's parts in process: configuration, layout conversion, event filtering, epoch bumps."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from auditor.core.errors import ConfigError
from auditor.daemon import epoch
from auditor.daemon.config import load, parse
from auditor.daemon.layout import Layout, LayoutError, init_layout, tree_manifest, undo_layout
from auditor.daemon.watcher import Debouncer, EventFilter

BASE = {
    "live": "/opt/kumomta/etc/policy",
    "state_dir": "/var/lib/kumo-audit/policy",
    "source": {"kind": "checkout", "repo": "/srv/policy"},
}


def test_unknown_key_is_an_error_with_a_suggestion():
    with pytest.raises(
        ConfigError, match=r"unknown key 'on_restar' \(did you mean 'on_restart'\?\)"
    ):
        parse({**BASE, "on_restar": "hold"}, "daemon.toml")
    with pytest.raises(
        ConfigError, match=r"unknown key 'kumod.bump_ulr' \(did you mean 'bump_url'\?\)"
    ):
        parse({**BASE, "kumod": {"bump_ulr": "x"}}, "daemon.toml")


def test_invalid_values_are_one_line_errors():
    with pytest.raises(ConfigError, match="not loopback"):
        parse(
            {**BASE, "kumod": {"bump_url": "http://10.0.0.5:8000/api/admin/bump-config-epoch"}}, "f"
        )
    with pytest.raises(ConfigError, match="needs 'url'"):
        parse({**BASE, "source": {"kind": "pull"}}, "f")
    with pytest.raises(ConfigError, match="drift"):
        parse({**BASE, "drift": "ignore"}, "f")
    with pytest.raises(ConfigError, match="outside the live tree"):
        parse({**BASE, "state_dir": "/opt/kumomta/etc/policy/.state"}, "f")
    with pytest.raises(ConfigError, match="not loopback"):
        parse({**BASE, "metrics": {"listen": "0.0.0.0:9477"}}, "f")
    cfg = parse({**BASE, "kumod": {"bump_url": "http://[::1]:8000/x"}}, "f")
    assert cfg.on_restart == "hold" and cfg.drift == "warn" and cfg.debounce_ms == 200


def test_bad_configuration_on_the_command_line_is_one_line(tmp_path):
    path = tmp_path / "daemon.toml"
    path.write_text('live = "/x"\nstate_dir = "/y"\nsource = { kind = "watch" }\nbogus = 1\n')
    proc = subprocess.run(
        [sys.executable, "-m", "auditor", "daemon", "status", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "unknown key 'bogus'" in proc.stderr
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is not a regular file"):
        load(Path("/dev/zero"))  # read forever before


def _tree(root: Path) -> None:
    files = {
        "init.lua": b"-- policy\n",
        "data/shaping.toml": b'["default"]\nconnection_limit = 3\n',
        "data/deep/x.json": b"{}",
        "odd name \xc3\xa9.lua".encode().decode(): bytes(range(256)),
        "empty.toml": b"",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_init_and_undo_keep_every_byte(tmp_path):
    live = tmp_path / "etc" / "policy"
    live.mkdir(parents=True)
    _tree(live)
    (live / "init.lua").chmod(0o640)
    before = tree_manifest(live)
    layout = Layout(live, tmp_path / "state")
    _name, manifest = init_layout(layout, "init-1")
    assert manifest == before
    assert live.is_symlink() and layout.live_release() == "init-1"
    assert tree_manifest(live.resolve()) == before
    assert not list(live.parent.glob(".policy.kumo-audit-*"))
    assert init_layout(layout, "init-2") == ("init-1", before)  # idempotent
    assert undo_layout(layout) == before
    assert live.is_dir() and not live.is_symlink()
    assert tree_manifest(live) == before


def test_releases_with_a_symlink_are_refused(tmp_path):
    live = tmp_path / "policy"
    live.mkdir()
    (live / "init.lua").write_text("--\n")
    os.symlink("/etc/passwd", live / "leak.lua")
    with pytest.raises(LayoutError, match="symlink"):
        init_layout(Layout(live, tmp_path / "state"), "init-1")
    assert live.is_dir() and not live.is_symlink()


def test_event_filter():
    f = EventFilter([Path("/var/lib/state")], ["refs/heads/kumo-runbook"])
    assert f.counts("/srv/policy/init.lua")
    assert f.counts("/srv/policy/.git/HEAD")
    assert f.counts("/srv/policy/.git/refs/heads/main")
    assert not f.counts("/srv/policy/.git/refs/heads/kumo-runbook")
    assert not f.counts("/srv/policy/.git/refs/heads/main.lock")
    assert not f.counts("/srv/policy/.git/objects/ab/cdef")
    assert not f.counts("/srv/policy/.git/logs/HEAD")
    for swap in (".init.lua.swp", "init.lua~", "4913", ".#init.lua", "#init.lua#"):
        assert not f.counts(f"/srv/policy/{swap}"), swap
    assert not f.counts("/var/lib/state/releases/x/init.lua")


def test_debounce_gives_one_signal_per_burst():
    now = [0.0]
    d = Debouncer(0.2, clock=lambda: now[0])
    for _ in range(1000):
        d.touch()
        now[0] += 0.0001
    assert d.due() is None
    now[0] += 0.25
    assert d.due() == 0.0
    assert d.due() is None


def _watchdog_keeps_moves() -> bool:
    """watchdog before 7 keeps every MOVED_FROM event of its inotify backend; 7 pairs them in a
    delayed queue and drops them itself, so only the clearing (and what follows it) is tested."""
    from importlib.metadata import version

    return int(version("watchdog").split(".")[0]) < 7


def test_renames_seen_by_the_watcher_are_not_kept_forever(tmp_path):
    from auditor.daemon.watcher import Watcher

    debouncer = Debouncer(0.05)
    watcher = Watcher()
    watcher.watch(tmp_path, EventFilter([]), debouncer)
    watcher.start()
    try:
        target = tmp_path / "shaping.toml"
        for i in range(40):  # an editor saving by rename, forty times
            temp = tmp_path / ".shaping.toml.swp"
            temp.write_text(f"limit = {i}\n")
            os.rename(temp, target)
        deadline = time.monotonic() + 10
        if _watchdog_keeps_moves():
            while watcher.moves_remembered() < 40 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert watcher.moves_remembered() >= 40  # what watchdog would keep for good
        watcher.forget_moves()
        assert watcher.moves_remembered() == 0
        # and a save after that is still seen
        time.sleep(0.3)
        debouncer.due()  # the forty saves, handled
        time.sleep(0.2)
        assert debouncer.due() is None
        temp.write_text("limit = 99\n")
        os.rename(temp, target)
        while debouncer.due() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert time.monotonic() < deadline
    finally:
        watcher.stop()


def test_epoch_bump_to_a_closed_port_is_retried_and_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    slept: list[float] = []
    result = epoch.bump(
        f"http://127.0.0.1:{port}/api/admin/bump-config-epoch",
        attempts=3,
        timeout=1,
        backoff=0.1,
        sleep=slept.append,
    )
    assert not result.ok and result.attempts == 3 and len(result.errors) == 3
    assert slept == [0.1, 0.2]
    started = time.monotonic()
    assert epoch.bump("http://127.0.0.1:1/x", attempts=1, timeout=1, backoff=0).ok is False
    assert time.monotonic() - started < 5


def test_example_configuration_is_valid():
    cfg = load(Path(__file__).resolve().parent.parent / "deploy" / "daemon.example.toml")
    assert cfg.source.kind == "pull" and cfg.runbook.remote == "origin"
