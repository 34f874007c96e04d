"""The content-addressed cache: layers, versions, corrupt entries, concurrent writers, pruning."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import auditor.pipeline.cache as cache_module
from auditor.pipeline.cache import ContentCache, default_cache_dir

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Fact:
    name: str
    span: tuple[int, int]


def entry_files(directory: Path) -> list[Path]:
    bookkeeping = {".written", ".pruned", ".prune.lock"}
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name not in bookkeeping)


def test_hit_miss_and_stats(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path / "c")
    assert cache.get("lua", "abc", "v1") is None
    value = {"facts": [Fact("kumo.on", (1, 2))], "tuple": (1, 2)}
    cache.put("lua", "abc", "v1", value)
    assert cache.get("lua", "abc", "v1") == value
    assert (cache.stats.hits, cache.stats.misses, cache.stats.writes) == (1, 1, 1)
    # a new process (a new instance) finds the entry on disk, with types intact
    fresh = ContentCache(tmp_path / "c")
    got = fresh.get("lua", "abc", "v1")
    assert got == value and isinstance(got["tuple"], tuple) and isinstance(got["facts"][0], Fact)
    assert (fresh.stats.hits, fresh.stats.disk_hits, fresh.stats.misses) == (1, 1, 0)
    assert fresh.get("lua", "abc", "v1") == value
    assert fresh.stats.disk_hits == 1  # the second get came from memory


def test_get_or_compute_computes_once_even_for_none(tmp_path: Path) -> None:
    calls: list[int] = []

    def compute() -> None:
        calls.append(1)

    cache = ContentCache(tmp_path / "c")
    assert cache.get_or_compute("ns", "id", "v", compute) is None
    assert cache.get_or_compute("ns", "id", "v", compute) is None
    assert ContentCache(tmp_path / "c").get_or_compute("ns", "id", "v", compute) is None
    assert len(calls) == 1


def test_keys_are_separate_by_namespace_content_and_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ContentCache(tmp_path / "c")
    cache.put("lua", "abc", "api-1", "lua facts")
    assert ContentCache(tmp_path / "c").get("lua", "abc", "api-2") is None
    assert ContentCache(tmp_path / "c").get("toml", "abc", "api-1") is None
    assert ContentCache(tmp_path / "c").get("lua", "abd", "api-1") is None
    monkeypatch.setattr(cache_module, "__version__", "999.0")  # a new release of the tool
    assert ContentCache(tmp_path / "c").get("lua", "abc", "api-1") is None
    monkeypatch.undo()
    assert ContentCache(tmp_path / "c").get("lua", "abc", "api-1") == "lua facts"


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: b"",  # empty (a crash before any write reached the disk)
        lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]),  # flipped bits in the payload
        lambda data: b"garbage" * 20,
    ],
)
def test_corrupt_entry_is_a_miss_and_is_rewritten(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    ContentCache(tmp_path / "c").put("lua", "abc", "v", ["value", 1])
    [path] = entry_files(tmp_path / "c")
    path.write_bytes(damage(path.read_bytes()))
    cache = ContentCache(tmp_path / "c")
    assert cache.get_or_compute("lua", "abc", "v", lambda: ["recomputed"]) == ["recomputed"]
    assert cache.stats.misses == 1 and cache.stats.writes == 1
    assert ContentCache(tmp_path / "c").get("lua", "abc", "v") == ["recomputed"]


def test_entry_for_another_key_is_not_trusted(tmp_path: Path) -> None:
    """A file copied or renamed onto another key's path is a miss (the header names the key)."""
    cache = ContentCache(tmp_path / "c")
    cache.put("lua", "one", "v", "one")
    cache.put("lua", "two", "v", "two")
    first, second = entry_files(tmp_path / "c")
    second.write_bytes(first.read_bytes())
    fresh = ContentCache(tmp_path / "c")
    values = {fresh.get("lua", "one", "v"), fresh.get("lua", "two", "v")}
    assert values in ({"one", None}, {"two", None})


def test_concurrent_writers_of_one_key(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from auditor.pipeline.cache import ContentCache
        tag = sys.argv[2]
        for i in range(150):
            cache = ContentCache(Path(sys.argv[1]))
            got = cache.get("lua", "same", "v")
            assert got is None or (len(got) == 20000 and got[0] in ("a", "b")), "torn entry"
            cache.put("lua", "same", "v", [tag] * 20000)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(directory), tag],
            env=env,
            stderr=subprocess.PIPE,
        )
        for tag in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    files = entry_files(directory)
    assert len(files) == 1 and files[0].suffix == ".pkl"  # no temporary file left behind
    final = ContentCache(directory).get("lua", "same", "v")
    assert final in (["a"] * 20000, ["b"] * 20000)


def test_unusable_directory_means_memory_only(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = ContentCache(blocker / "cache")
    cache.put("ns", "id", "v", 1)
    assert cache.get("ns", "id", "v") == 1
    assert cache.stats.writes == 0


def test_directory_writable_by_others_is_not_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    cache = ContentCache(shared)
    cache.put("ns", "id", "v", 1)
    assert cache.stats.writes == 0 and list(shared.iterdir()) == []


def test_unpicklable_value_stays_in_memory(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path / "c")
    value = lambda: 1  # noqa: E731
    cache.put("ns", "id", "v", value)
    assert cache.get("ns", "id", "v") is value
    assert cache.stats.writes == 0


def test_memory_only_cache_and_bounded_memory(tmp_path: Path) -> None:
    cache = ContentCache(None, memory_entries=2)
    for i in range(3):
        cache.put("ns", str(i), "v", i)
    assert cache.get("ns", "0", "v") is None  # evicted, and there is no disk layer
    assert cache.get("ns", "1", "v") == 1 and cache.get("ns", "2", "v") == 2
    assert cache.stats.writes == 0


def test_odd_namespace_and_content_id(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path / "c")
    cache.put("../../escape", "../x\0y", "v", "ok")
    assert ContentCache(tmp_path / "c").get("../../escape", "../x\0y", "v") == "ok"
    assert all(tmp_path / "c" in p.parents for p in entry_files(tmp_path / "c"))


def test_prune_removes_least_recently_used(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    cache = ContentCache(directory)
    paths: dict[int, Path] = {}
    for i in range(6):
        before = set(entry_files(directory)) if directory.exists() else set()
        cache.put("ns", str(i), "v", "x" * 1000)
        [paths[i]] = set(entry_files(directory)) - before
    now = paths[0].stat().st_mtime
    for i, path in paths.items():  # entry i was last used i hours ago
        os.utime(path, (now - i * 3600, now - i * 3600))
    stale = directory / "ns" / ".tmp-abandoned"
    stale.write_bytes(b"partial")
    os.utime(stale, (now - 7200, now - 7200))
    size = paths[0].stat().st_size
    assert cache.prune(max_bytes=size * 3) == 4  # three entries and the abandoned temporary file
    assert set(entry_files(directory)) == {paths[0], paths[1], paths[2]}
    assert cache.prune(max_bytes=size * 3) == 0
    fresh = ContentCache(directory)
    assert [fresh.get("ns", str(i), "v") is not None for i in range(6)] == [True] * 3 + [False] * 3


def test_hit_refreshes_last_access(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    ContentCache(directory).put("ns", "id", "v", 1)
    [path] = entry_files(directory)
    old = path.stat().st_mtime - 10 * 3600
    os.utime(path, (old, old))
    assert ContentCache(directory).get("ns", "id", "v") == 1
    assert path.stat().st_mtime > old + 9 * 3600


def test_default_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUMO_AUDIT_CACHE_DIR", str(tmp_path / "override"))
    assert default_cache_dir(None) == tmp_path / "override"
    monkeypatch.setenv("KUMO_AUDIT_NO_CACHE", "1")
    assert default_cache_dir(tmp_path) is None
    monkeypatch.delenv("KUMO_AUDIT_NO_CACHE")
    monkeypatch.delenv("KUMO_AUDIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir(None) == tmp_path / "xdg" / "kumo-audit"
    assert default_cache_dir(tmp_path) == tmp_path / "xdg" / "kumo-audit"  # not in a repository
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir(None) == tmp_path / "home" / ".cache" / "kumo-audit"

    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    (repo / "policy").mkdir()
    expected = repo.resolve() / ".git" / "kumo-audit" / "cache"
    assert default_cache_dir(repo / "policy") == expected
    # a linked worktree shares the main repository's cache
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", "-C", str(repo)]
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True, env=env)
    subprocess.run([*git, "worktree", "add", "-q", str(tmp_path / "wt")], check=True, env=env)
    assert default_cache_dir(tmp_path / "wt") == expected


def test_default_dir_in_a_repository_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUMO_AUDIT_CACHE_DIR", raising=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    cache = ContentCache(default_cache_dir(repo))
    cache.put("lua", "abc", "v", "facts")
    assert entry_files(repo / ".git" / "kumo-audit" / "cache")
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--ignored"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert status.stdout == ""  # the cache never shows up as a change
