"""Atomic file writes: a reader never sees half a file."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from auditor.core.errors import UsageError


def write_atomic(target: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report.

    Special files (a terminal, a pipe, /dev/null, /dev/stdout) are written in place: renaming over
    them would replace the device with a regular file."""
    try:
        if target.exists() and not target.is_file():
            with open(target, "w", encoding="utf-8", errors="backslashreplace") as stream:
                stream.write(text)
            return
        if target.parent.exists() and not target.parent.is_dir():
            # mkdir(exist_ok=True) would say "File exists" about the file in the way
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", errors="backslashreplace")
        os.replace(tmp, target)
    except OSError as exc:
        _discard(tmp)
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: Path) -> None:
    """Remove a temporary file a failed write left behind."""
    with contextlib.suppress(OSError):
        tmp.unlink()
