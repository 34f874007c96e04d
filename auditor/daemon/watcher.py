"""Filesystem events, filtered and debounced into one "something changed" signal.

watchdog (inotify on Linux) observes whole directories, so an editor's write-temp-then-rename save
is seen as the rename's destination. Inside `.git` only what moves a branch or HEAD counts; editor
swap and backup files, and paths the daemon writes itself, never count. Events only wake the loop:
what changed is always decided by content hash, and a periodic rescan catches what inotify drops.
"""

from __future__ import annotations

import fnmatch
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

SWAP_PATTERNS = (
    "*.swp",
    "*.swo",
    "*.swx",
    "*.swpx",
    "*~",
    ".#*",
    "#*#",
    "4913",
    ".*.kate-swp",
    "*.tmp",
    ".goutputstream-*",
    "*.crswap",
)
GIT_COUNTED = ("HEAD", "packed-refs", "index")


def is_swap_file(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SWAP_PATTERNS)


class EventFilter:
    """Decides whether a path's event may mean a changed candidate."""

    def __init__(self, ignored_prefixes: Iterable[Path], ignored_refs: Iterable[str] = ()) -> None:
        self.ignored = [str(p) for p in ignored_prefixes]
        self.ignored_refs = set(ignored_refs)

    def counts(self, path: str) -> bool:
        if not path:
            return False
        if any(path == p or path.startswith(p + os.sep) for p in self.ignored):
            return False
        parts = Path(path).parts
        if ".git" in parts:
            inner = parts[parts.index(".git") + 1 :]
            if not inner:
                return False
            if inner[0] == "refs":
                ref = "/".join(inner)
                return not inner[-1].endswith(".lock") and ref not in self.ignored_refs
            return len(inner) == 1 and inner[0] in GIT_COUNTED
        return not is_swap_file(parts[-1])


class Debouncer:
    """Remembers the time of the last counted event; `due()` once it has been quiet long enough."""

    def __init__(self, quiet: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet = quiet
        self.clock = clock
        self._lock = threading.Lock()
        self._first: float | None = None
        self._last: float | None = None
        self.wake = threading.Event()

    def touch(self) -> None:
        with self._lock:
            now = self.clock()
            if self._first is None:
                self._first = now
            self._last = now
        self.wake.set()

    @property
    def pending(self) -> bool:
        with self._lock:
            return self._last is not None

    def quiet_for(self) -> float:
        with self._lock:
            return float("inf") if self._last is None else self.clock() - self._last

    def due(self) -> float | None:
        """The time of the first event of a burst that has now settled (and forget it), else None."""
        with self._lock:
            if self._last is None or self.clock() - self._last < self.quiet:
                return None
            first, self._first, self._last = self._first, None, None
            return first


class Watcher:
    """watchdog observers on directories, feeding debouncers by the kind of path."""

    def __init__(self) -> None:
        from watchdog.observers import Observer

        self.observer = Observer()
        self._started = False

    def watch(self, directory: Path, event_filter: EventFilter, debouncer: Debouncer) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                paths = [os.fsdecode(event.src_path)]
                dest = getattr(event, "dest_path", "")
                if dest:
                    paths.append(os.fsdecode(dest))
                if any(event_filter.counts(p) for p in paths):
                    debouncer.touch()

        self.observer.schedule(Handler(), str(directory), recursive=True)

    def forget_moves(self) -> None:
        """watchdog's inotify backend keeps every MOVED_FROM event to pair it with its MOVED_TO
        and never drops one, so each editor save by rename would grow the daemon for good. Called
        once the events so far were handled (debounced); a pair split by it reads as a deletion
        and a creation, which count alike here."""
        for inotify in self._inotify_objects():
            clear = getattr(inotify, "clear_move_records", None)
            if clear is not None:
                clear()

    def moves_remembered(self) -> int:
        return sum(len(getattr(i, "_moved_from_events", ())) for i in self._inotify_objects())

    def _inotify_objects(self) -> list[object]:
        found = []
        for emitter in list(getattr(self.observer, "emitters", ())):
            inotify = getattr(getattr(emitter, "_inotify", None), "_inotify", None)
            if inotify is not None:
                found.append(inotify)
        return found

    def start(self) -> None:
        self.observer.daemon = True
        self.observer.start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            self.observer.stop()
            self.observer.join(timeout=5)
