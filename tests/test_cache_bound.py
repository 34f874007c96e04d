"""The content cache stays under its documented bound while a large policy is edited."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from auditor.config.settings import DEFAULT
from auditor.kumo.loader import parse_lua
from auditor.kumo.paths import PathMap
from auditor.pipeline.cache import ContentCache, code_fingerprint
from auditor.pipeline.stages import StoredResult, audit_snapshot, snapshot_key
from auditor.source.snapshot import FsSnapshot
from tests.conftest import ROOT

MIB = 1024 * 1024


def generate(out: Path, preset: str) -> Path:
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gen_policy.py"), str(out), "--preset", preset],
        check=True,
        capture_output=True,
    )
    return out


def test_cache_stays_under_its_bound_over_200_edits_of_a_20000_line_policy(tmp_path: Path) -> None:
    """Each edit of one module stores what a real edit stores: the module's parse (keyed by its new
    content id) and the whole tree's result (keyed by the new tree). With a bound a sixth of what
    200 edits write, the directory would grow without end if it were not pruned."""
    import pickle

    policy = generate(tmp_path / "policy", "20k") / "policy"
    assert sum(len(p.read_text().splitlines()) for p in policy.rglob("*.lua")) >= 19_000
    module = sorted((policy / "gen").glob("*.lua"))[0]
    rel = module.relative_to(policy).as_posix()
    original = module.read_text()
    parse_size = len(pickle.dumps(parse_lua(original, rel), protocol=5))
    bound = 200 * parse_size // 6
    cache = ContentCache(tmp_path / "cache", memory_entries=8, max_bytes=bound)
    version = code_fingerprint()

    def cached(namespace: str, key: str, compute):  # type: ignore[no-untyped-def]
        return cache.get_or_compute(namespace, key, version, compute)

    result = audit_snapshot(FsSnapshot(policy), cached=cached)
    written_before = cache.stats.writes
    path_map = PathMap.default_for("init.lua")
    for edit in range(200):
        module.write_text(original + f"-- edit {edit}\n")
        snapshot = FsSnapshot(policy)
        text = module.read_text()
        cached("lua", snapshot.content_id(rel) or "", lambda t=text: parse_lua(t, rel))
        key = snapshot_key(snapshot, DEFAULT, result.entry, path_map, True, "2026-12-01")
        assert key is not None
        stored = StoredResult(result.entry, result.findings, result.suppressions)
        cached("result", key, lambda stored=stored: stored)
        used = cache.disk_bytes()
        assert used <= bound + bound // 8 + parse_size, f"edit {edit}: {used / MIB:.1f} MiB on disk"
    assert cache.stats.writes - written_before == 400
    assert cache.stats.writes * parse_size > 4 * bound  # far more was written than is kept
    # the most recent entries survive: the last edit is still a hit
    assert cache.get("result", key, version) is not None  # type: ignore[possibly-undefined]


def test_a_cached_result_stores_findings_not_its_inputs(tmp_path: Path) -> None:
    """The result entry of a 20,000-line tree holds its findings, not the facts and texts that the
    per-file entries already hold; a hit rebuilds the same model, texts and data from those."""
    policy = generate(tmp_path / "policy", "20k") / "policy"
    lua_bytes = sum(p.stat().st_size for p in policy.rglob("*.lua"))
    cache = ContentCache(tmp_path / "cache")
    version = code_fingerprint()

    def cached(namespace: str, key: str, compute):  # type: ignore[no-untyped-def]
        return cache.get_or_compute(namespace, key, version, compute)

    fresh = audit_snapshot(FsSnapshot(policy), cached=cached, today="2026-12-01")
    cache.flush()
    [entry] = (tmp_path / "cache" / "result").glob("*.pkl")
    assert entry.stat().st_size < lua_bytes // 100

    rereading = ContentCache(tmp_path / "cache", memory_entries=0)

    def from_disk(namespace: str, key: str, compute):  # type: ignore[no-untyped-def]
        return rereading.get_or_compute(namespace, key, version, compute)

    hit = audit_snapshot(FsSnapshot(policy), cached=from_disk, today="2026-12-01")
    assert rereading.stats.misses == 0  # nothing was recomputed, the rules did not run again
    assert hit.findings == fresh.findings and hit.mode == fresh.mode
    assert hit.context.texts == fresh.context.texts
    assert hit.context.data.keys() == fresh.context.data.keys()
    assert hit.context.model.modules.keys() == fresh.context.model.modules.keys()
    assert [s.call for s in hit.context.model.calls] == [s.call for s in fresh.context.model.calls]
    assert hit.context.model.handlers == fresh.context.model.handlers


def test_prune_expires_entries_unused_for_max_age(tmp_path: Path) -> None:
    import os
    import time

    cache = ContentCache(tmp_path / "c", max_age=3600)
    cache.put("ns", "old", "v", "x")
    [old] = (tmp_path / "c" / "ns").rglob("*.pkl")
    cache.put("ns", "new", "v", "y")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert cache.prune() == 1
    fresh = ContentCache(tmp_path / "c", memory_entries=0)
    assert fresh.get("ns", "old", "v") is None
    assert fresh.get("ns", "new", "v") == "y"


def test_limits_come_from_documented_variables(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from auditor.pipeline.cache import DEFAULT_MAX_AGE, DEFAULT_MAX_BYTES, limits_from_env

    monkeypatch.setenv("KUMO_AUDIT_CACHE_MAX_MB", "10")
    monkeypatch.setenv("KUMO_AUDIT_CACHE_MAX_DAYS", "2")
    assert limits_from_env() == (10 * MIB, 2 * 86400.0)
    monkeypatch.setenv("KUMO_AUDIT_CACHE_MAX_MB", "lots")
    monkeypatch.setenv("KUMO_AUDIT_CACHE_MAX_DAYS", "-1")
    assert limits_from_env() == (DEFAULT_MAX_BYTES, DEFAULT_MAX_AGE)
