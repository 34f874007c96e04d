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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from auditor import __version__

if TYPE_CHECKING:
    from typing import Any

MAGIC = b"KACE"
FORMAT = 1
_HEADER = struct.Struct(">4sH32sQ32s")  # magic, format, key digest, payload length, payload digest
DEFAULT_MEMORY_ENTRIES = 4096
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_TOUCH_AFTER = 3600.0  # a hit refreshes the entry's mtime (its "last access") at most hourly
_STALE_TEMP = 3600.0
_MISS = object()


@dataclass(slots=True)
class CacheStats:
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
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        # deferred: new entries reach the disk on `flush()` (after the output is written)
        self._pending: list[tuple[str, str, str, object]] | None = [] if deferred else None
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
        for namespace, content_id, version, value in pending:
            self._write(namespace, content_id, version, value)

    def get_or_compute(
        self, namespace: str, content_id: str, version: str, fn: Callable[[], Any]
    ) -> Any:
        value = self._lookup(namespace, content_id, version)
        if value is _MISS:
            value = fn()
            self.put(namespace, content_id, version, value)
        return value

    def prune(self, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
        """Delete the least recently used entries until the directory holds at most `max_bytes`;
        also removes abandoned temporary files. Returns the number of files deleted."""
        if not self._disk_usable():
            return 0
        assert self.directory is not None
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
                    entries.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _mtime, size, path in sorted(entries):
            if total <= max_bytes:
                break
            if _unlink(path):
                deleted += 1
            total -= size
        return deleted

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
        hexd = digest.hex()
        return self.directory / _safe_namespace(namespace) / hexd[:2] / f"{hexd[2:]}.pkl", digest

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

    def _write(self, namespace: str, content_id: str, version: str, value: object) -> None:
        if not self._disk_usable():
            return
        try:
            payload = pickle.dumps(value, protocol=5)
        except Exception:  # not picklable: keep it in memory only
            return
        path, digest = self._path(namespace, content_id, version)
        header = _HEADER.pack(MAGIC, FORMAT, digest, len(payload), hashlib.sha256(payload).digest())
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.parent / _temp_name()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            self._disk_ok = False
            return
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(header)
                handle.write(payload)
            os.replace(tmp, path)
        except OSError:
            _unlink(tmp)
            return
        self.stats.writes += 1


_temp_counter = 0


def _temp_name() -> str:
    """Unique among processes (pid), threads and calls; `tempfile` costs more to import than this."""
    global _temp_counter
    _temp_counter += 1
    return f".tmp-{os.getpid()}-{threading.get_ident()}-{_temp_counter}-{time.monotonic_ns()}"


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
    version = f"{__version__}:{api_table_digest()}:{code_fingerprint()}"

    def cached(namespace: str, content_id: str, compute):  # type: ignore[no-untyped-def]
        return cache.get_or_compute(namespace, content_id, version, compute)

    cached.flush = cache.flush  # type: ignore[attr-defined]
    return cached


@functools.cache
def code_fingerprint() -> str:
    """Identifies this installation's code (file names, sizes, modification times), so results cached
    by one build of kumo-audit are never served to another with the same version number."""
    package = Path(__file__).resolve().parent.parent  # the whole auditor package
    h = hashlib.sha256()
    for directory, dirnames, filenames in os.walk(package):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith((".py", ".toml")):
                st = os.stat(os.path.join(directory, name))
                h.update(
                    f"{directory[len(str(package)) :]}/{name}:{st.st_size}:{st.st_mtime_ns}\n".encode()
                )
    return h.hexdigest()[:16]
