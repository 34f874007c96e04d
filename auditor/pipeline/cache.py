"""Content-addressed cache of facts derived from one file version (parse results, data-file values).

Key: (namespace, content id, tool version, caller's version string, Python version). A file version
never changes, so an entry never goes stale; a new tool or API table gives new keys. Two layers: a
bounded in-memory LRU, and a directory of one file per entry, so concurrent processes share work.

Values are pickled (protocol 5): derived facts are nested dataclasses, tuples and enums that JSON
would flatten (tuples become lists, dataclasses need a codec per type), and unpickling is several
times faster than rebuilding them from JSON. Each file starts with a header (magic, format version,
digest of the key, payload length, payload digest), so a truncated, corrupt or misplaced entry is a
miss and gets rewritten. Unpickling can run code, so entries are only read from a directory owned by
this user and not writable by others; anyone able to write into `.git/` can already run hooks.

Writes go to a temporary file in the entry's directory and are renamed into place (atomic on POSIX),
so concurrent writers of one key each leave a complete entry. Any problem with the directory turns
the disk layer off silently: the cache is an optimisation, never a reason to fail.

Bound: the directory holds at most `max_bytes` of entries (256 MiB by default,
`KUMO_AUDIT_CACHE_MAX_MB`) plus what is written between two prunes (an eighth of `max_bytes`), and
no entry unused for `max_age` (30 days, `KUMO_AUDIT_CACHE_MAX_DAYS`). Pruning is opportunistic: every
write appends one byte per 64 KiB to a journal file, and the writer that finds an eighth of the bound
written since the last prune (or the last prune a day old) deletes expired entries, then the least
recently used ones until the directory is under the bound. A hit refreshes an entry's modification
time (at most hourly), which is its "last used" time. One process prunes at a time (a lock file).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import stat
import struct
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from auditor import __version__
from auditor.core.record import dataclass

if TYPE_CHECKING:
    from typing import Any

MAGIC = b"KACE"
FORMAT = 2  # 2: entries directly in their namespace's directory
_HEADER = struct.Struct(">4sH32sQ32s")  # magic, format, key digest, payload length, payload digest
DEFAULT_MEMORY_ENTRIES = 4096
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_AGE = 30 * 86400.0
_JOURNAL = ".written"  # one byte per started 64 KiB written since the last prune
_JOURNAL_UNIT = 65536
_PRUNED = ".pruned"  # its modification time is the last prune
_PRUNE_LOCK = ".prune.lock"
_PRUNE_EVERY = 86400.0
_TOUCH_AFTER = 3600.0  # a hit refreshes the entry's mtime (its "last access") at most hourly
_STALE_TEMP = 3600.0
_MISS = object()


@dataclass(slots=True)
class CacheStats:
    """Counters of one cache's lookups and writes."""

    hits: int = 0  # memory + disk
    disk_hits: int = 0
    misses: int = 0
    writes: int = 0  # entries written to disk


def default_cache_dir(repo_root: Path | None) -> Path | None:
    """Where entries live: `KUMO_AUDIT_CACHE_DIR`; else `<git common dir>/kumo-audit/cache` when
    `repo_root` is inside a Git repository; else the user cache directory. None when
    `KUMO_AUDIT_NO_CACHE=1` (memory only)."""
    if os.environ.get("KUMO_AUDIT_NO_CACHE", "") not in ("", "0"):
        return None
    override = os.environ.get("KUMO_AUDIT_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    if repo_root is not None:
        from auditor.source.git import common_dir, find_repo

        top = find_repo(repo_root)
        if top is not None:
            try:
                return common_dir(top) / "kumo-audit" / "cache"
            except Exception:  # an unreadable gitdir file: fall back to the user cache
                pass
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "kumo-audit"


class ContentCache:
    """get/put by (namespace, content id, version); `directory=None` keeps entries in memory only.

    Values are shared, not copied: callers must treat what they get back as read-only.
    """

    def __init__(
        self,
        directory: Path | None,
        memory_entries: int = DEFAULT_MEMORY_ENTRIES,
        *,
        deferred: bool = False,
        max_bytes: int | None = None,
        max_age: float | None = None,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        # deferred: new entries reach the disk on `flush()` (after the output is written)
        self._pending: list[tuple[str, str, str, object]] | None = [] if deferred else None
        env_bytes, env_age = limits_from_env()
        self.max_bytes = max_bytes if max_bytes is not None else env_bytes
        self.max_age = max_age if max_age is not None else env_age
        self.stats = CacheStats()
        self._memory: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
        self._memory_entries = memory_entries
        self._disk_ok: bool | None = None if directory is not None else False
        self._lock = threading.Lock()  # the daemon reads from several threads

    # -- public API ------------------------------------------------------------------------------

    def get(self, namespace: str, content_id: str, version: str = "") -> object | None:
        value = self._lookup(namespace, content_id, version)
        return None if value is _MISS else value

    def put(self, namespace: str, content_id: str, version: str, value: object) -> None:
        self._remember((namespace, content_id, version), value)
        if self._pending is not None:
            self._pending.append((namespace, content_id, version, value))
        else:
            self._write(namespace, content_id, version, value)

    def flush(self) -> None:
        """Write the entries a deferred cache has kept back."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        written = 0
        for namespace, content_id, version, value in pending:
            written += self._write(namespace, content_id, version, value, journal=False)
        if written:
            self._note_written(written)  # one journal update for the whole batch

    def get_or_compute(
        self, namespace: str, content_id: str, version: str, fn: Callable[[], Any]
    ) -> Any:
        value = self._lookup(namespace, content_id, version)
        if value is _MISS:
            value = fn()
            self.put(namespace, content_id, version, value)
        return value

    def prune(self, max_bytes: int | None = None, max_age: float | None = None) -> int:
        """Delete entries unused for `max_age` seconds, then the least recently used ones until the
        directory holds at most `max_bytes`; also removes abandoned temporary files. Returns the
        number of files deleted."""
        if not self._disk_usable():
            return 0
        assert self.directory is not None
        max_bytes = self.max_bytes if max_bytes is None else max_bytes
        max_age = self.max_age if max_age is None else max_age
        now = time.time()
        entries: list[tuple[float, int, str]] = []
        deleted = 0
        for dirpath, _dirnames, filenames in os.walk(self.directory):
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if name.startswith(".tmp-"):
                    if now - st.st_mtime > _STALE_TEMP and _unlink(path):
                        deleted += 1
                    continue
                if name.endswith(".pkl"):
                    if now - st.st_mtime > max_age:
                        deleted += _unlink(path)
                        continue
                    entries.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _mtime, size, path in sorted(entries):
            if total <= max_bytes:
                break
            if _unlink(path):
                deleted += 1
            total -= size
        return deleted

    def disk_bytes(self) -> int:
        """Bytes of the entries on disk (what the bound limits)."""
        if self.directory is None or not self.directory.is_dir():
            return 0
        return sum(
            os.stat(os.path.join(d, n)).st_size
            for d, _, names in os.walk(self.directory)
            for n in names
            if n.endswith(".pkl")
        )

    def _note_written(self, size: int) -> None:
        """Journal a write; prune when an eighth of the bound was written since the last prune, or
        the last prune is a day old."""
        assert self.directory is not None
        written = 0
        try:
            fd = os.open(self.directory / _JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, b"." * -(-size // _JOURNAL_UNIT))
                written = os.fstat(fd).st_size * _JOURNAL_UNIT
            finally:
                os.close(fd)
            last = os.stat(self.directory / _PRUNED).st_mtime
        except FileNotFoundError:
            last = 0.0
        except OSError:
            return
        if written >= self.max_bytes // 8 or time.time() - last > _PRUNE_EVERY:
            self._prune_now()

    def _prune_now(self) -> None:
        """Prune unless another process is pruning this directory."""
        assert self.directory is not None
        try:
            import fcntl
        except ImportError:  # not POSIX: prune without the lock
            fcntl = None  # type: ignore[assignment]
        try:
            lock = os.open(self.directory / _PRUNE_LOCK, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return  # another process is pruning
            with contextlib.suppress(OSError):
                os.truncate(self.directory / _JOURNAL, 0)
            self.prune()
            with contextlib.suppress(OSError):
                (self.directory / _PRUNED).touch()
        finally:
            os.close(lock)

    # -- layers ----------------------------------------------------------------------------------

    def _lookup(self, namespace: str, content_id: str, version: str) -> Any:
        key = (namespace, content_id, version)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                self.stats.hits += 1
                return self._memory[key]
        value = self._read(namespace, content_id, version)
        with self._lock:
            if value is _MISS:
                self.stats.misses += 1
                return _MISS
            self.stats.hits += 1
            self.stats.disk_hits += 1
        self._remember(key, value)
        return value

    def _remember(self, key: tuple[str, str, str], value: Any) -> None:
        with self._lock:
            self._memory[key] = value
            self._memory.move_to_end(key)
            while len(self._memory) > self._memory_entries:
                self._memory.popitem(last=False)

    def _disk_usable(self) -> bool:
        if self._disk_ok is None:
            self._disk_ok = _usable_dir(self.directory) if self.directory is not None else False
        return self._disk_ok

    def _path(self, namespace: str, content_id: str, version: str) -> tuple[Path, bytes]:
        assert self.directory is not None
        digest = _key_digest(namespace, content_id, version)
        # one flat directory per namespace: a fan-out level cost a directory creation per entry
        # on a cold run, more than writing the entry itself
        return self.directory / _safe_namespace(namespace) / f"{digest.hex()}.pkl", digest

    def _read(self, namespace: str, content_id: str, version: str) -> Any:
        if not self._disk_usable():
            return _MISS
        path, digest = self._path(namespace, content_id, version)
        try:
            with open(path, "rb") as handle:
                blob = handle.read()
                mtime = os.fstat(handle.fileno()).st_mtime
        except OSError:
            return _MISS
        value = _decode(blob, digest)
        if value is not _MISS and time.time() - mtime > _TOUCH_AFTER:
            with contextlib.suppress(OSError):
                os.utime(path)
        return value

    def _write(
        self, namespace: str, content_id: str, version: str, value: object, journal: bool = True
    ) -> int:
        """Write one entry; the bytes written (0 when nothing was). With `journal=False` the
        caller journals the write (`_note_written`)."""
        if not self._disk_usable():
            return 0
        try:
            payload = pickle.dumps(value, protocol=5)
        except Exception:  # not picklable: keep it in memory only
            return 0
        path, digest = self._path(namespace, content_id, version)
        header = _HEADER.pack(MAGIC, FORMAT, digest, len(payload), hashlib.sha256(payload).digest())
        tmp = path.parent / _temp_name()
        try:
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileNotFoundError:  # the namespace's first entry
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            self._disk_ok = False
            return 0
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(header)
                handle.write(payload)
            os.replace(tmp, path)
        except OSError:
            _unlink(tmp)
            return 0
        self.stats.writes += 1
        size = len(header) + len(payload)
        if journal:
            self._note_written(size)
        return size


def limits_from_env() -> tuple[int, float]:
    """(max_bytes, max_age) from `KUMO_AUDIT_CACHE_MAX_MB` and `KUMO_AUDIT_CACHE_MAX_DAYS`; the
    defaults when unset or not a positive number."""

    def positive(name: str) -> float | None:
        try:
            value = float(os.environ.get(name, ""))
        except ValueError:
            return None
        return value if value > 0 else None

    mb = positive("KUMO_AUDIT_CACHE_MAX_MB")
    days = positive("KUMO_AUDIT_CACHE_MAX_DAYS")
    return (
        int(mb * 1024 * 1024) if mb else DEFAULT_MAX_BYTES,
        days * 86400.0 if days else DEFAULT_MAX_AGE,
    )


def _temp_name() -> str:
    """Unique among processes, threads and calls; `tempfile` costs more to import than this."""
    return f".tmp-{os.getpid()}-{threading.get_ident()}-{os.urandom(8).hex()}"


def _key_digest(namespace: str, content_id: str, version: str) -> bytes:
    parts = (
        namespace,
        content_id,
        __version__,
        version,
        f"{sys.version_info[0]}.{sys.version_info[1]}",
    )
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).digest()


def _safe_namespace(namespace: str) -> str:
    if (
        namespace
        and all(c.isascii() and (c.isalnum() or c in "-_.") for c in namespace)
        and (namespace[0] != ".")
    ):
        return namespace
    return "ns-" + hashlib.sha256(namespace.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _decode(blob: bytes, digest: bytes) -> Any:
    """The value in an entry file, or _MISS when it is truncated, corrupt or for another key."""
    if len(blob) < _HEADER.size:
        return _MISS
    magic, fmt, key, length, checksum = _HEADER.unpack_from(blob)
    payload = memoryview(blob)[_HEADER.size :]
    if magic != MAGIC or fmt != FORMAT or key != digest or length != len(payload):
        return _MISS
    if hashlib.sha256(payload).digest() != checksum:
        return _MISS
    try:
        return pickle.loads(payload)
    except Exception:  # a class that moved or changed shape: recompute
        return _MISS


def _usable_dir(directory: Path) -> bool:
    """Create the directory if needed; refuse one that another user could write into."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = directory.stat()
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or not os.access(directory, os.W_OK | os.X_OK):
        return False
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return False
    return not st.st_mode & stat.S_IWOTH


def _unlink(path: str | Path) -> bool:
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def parse_cache_for(root: Path, *, deferred: bool = False):  # type: ignore[no-untyped-def]
    """The lookup the audit pipeline takes (`cached(namespace, content_id, compute)`), backed by the
    cache for `root`; entries are keyed by tool version and API table, so an upgrade never reuses them.
    With `deferred`, new entries are written by `cached.flush()` (call it after the output)."""
    from auditor import __version__
    from auditor.kumo.digest import api_table_digest

    cache = ContentCache(default_cache_dir(root), deferred=deferred)
    version = f"{__version__}:{api_table_digest()}:{code_fingerprint(ANALYSIS_LAYERS)}"

    def cached(namespace: str, content_id: str, compute):  # type: ignore[no-untyped-def]
        return cache.get_or_compute(namespace, content_id, version, compute)

    cached.flush = cache.flush  # type: ignore[attr-defined]
    return cached


# The layers whose code decides what the pipeline computes and caches (parse results, data-file
# values, check results); the layers above them only read those.
ANALYSIS_LAYERS = (
    "core", "source", "config", "lua", "kumo", "data", "rules", "filter", "pipeline",
)  # fmt: skip


@functools.cache
def code_fingerprint(layers: tuple[str, ...] | None = None) -> str:
    """Identifies this installation's code (file names, sizes, modification times), so results cached
    by one build of kumo-audit are never served to another with the same version number. With
    `layers`, only those subpackages count (what a cache of pipeline results depends on)."""
    package = Path(__file__).resolve().parent.parent  # the whole auditor package
    h = hashlib.sha256()
    tops = [package / layer for layer in layers] if layers is not None else [package]
    for top in tops:
        for directory, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith((".py", ".toml")):
                    st = os.stat(os.path.join(directory, name))
                    h.update(
                        f"{directory[len(str(package)) :]}/{name}:{st.st_size}:{st.st_mtime_ns}\n".encode()
                    )
    return h.hexdigest()[:16]
