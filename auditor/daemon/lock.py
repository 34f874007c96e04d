"""One daemon per managed tree: an exclusive `flock` on a lock file named after the live path."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from auditor.core.errors import AuditError


class AlreadyRunning(AuditError):
    pass


def lock_path(state_dir: Path, live: Path) -> Path:
    key = hashlib.sha256(os.fsencode(os.path.abspath(live))).hexdigest()[:16]
    return state_dir / f"daemon-{key}.lock"


class TreeLock:
    """Held for the life of the daemon; the kernel drops it when the process dies (even by kill -9)."""

    def __init__(self, path: Path, live: Path) -> None:
        self.path = path
        self.live = live
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = holder(self.path)
            who = f" (pid {pid})" if pid else ""
            raise AlreadyRunning(f"another daemon{who} already manages {self.live}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def holder(path: Path) -> int | None:
    """The pid of the running daemon holding `path`, or None when nobody holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = Path(path).read_text(encoding="utf-8", errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
