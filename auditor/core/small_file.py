"""Reading a file a user names on the command line (a configuration, a baseline, an allowed signers
file, a commit message): only a regular file, and only up to a size limit, so `/dev/zero`, a named
pipe or a directory is a one-line error instead of a hang or memory exhausted."""

from __future__ import annotations

import os
import stat
from pathlib import Path

DEFAULT_LIMIT = 16 << 20


class SmallFileError(OSError):
    """The file is missing, not a regular file, too large or unreadable; `str()` says which."""


def read_small_file(path: Path | str, limit: int = DEFAULT_LIMIT) -> bytes:
    """The bytes of regular file `path`; SmallFileError when it is anything else or over `limit`.

    The file is opened without blocking (a named pipe would otherwise wait for a writer) and
    checked on the open descriptor, so a file swapped after a check is not read either."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SmallFileError(f"{path} does not exist") from None
    except OSError as exc:
        raise SmallFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SmallFileError(f"{path} is not a regular file (a directory, device or pipe)")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise SmallFileError(f"{path} is over {limit:,} bytes, too large to be read")
        return b"".join(chunks)
    except SmallFileError:
        raise
    except OSError as exc:
        raise SmallFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
