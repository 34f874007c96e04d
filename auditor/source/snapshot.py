"""A snapshot is one state of a policy tree: relative path -> bytes, with a content id per file.

The working tree is read here; Git states (index, revisions) live in `auditor.source.git_snapshot`.
Everything downstream (parse, model, rules) reads files only through a snapshot.
"""

from __future__ import annotations

import hashlib
import os
import stat
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from auditor.core.record import dataclass

if TYPE_CHECKING:
    from typing import Self

DEFAULT_SIZE_LIMIT = 5 * 1024 * 1024

SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "node_modules", ".kumo-audit"}


class FileProblem(Exception):
    """A file exists but cannot be used: outside the tree, too large, not a regular file, unreadable."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a snapshot: its path and the Git blob id of its bytes."""

    path: str  # POSIX, relative to the snapshot root
    content_id: str  # Git blob id of the bytes


def git_blob_id(data: bytes) -> str:
    """The id Git gives these bytes as a blob, so working-tree and revision snapshots share cache keys."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def normalize(relpath: str) -> str:
    """Collapse `a/./b/../c` into `a/c`; a path that climbs out of the root keeps its leading `..`."""
    if "\\" not in relpath and all(p and p != "." and p != ".." for p in relpath.split("/")):
        return relpath  # already normal (the common case: paths the snapshot listed itself)
    parts: list[str] = []
    for part in PurePosixPath(relpath.replace("\\", "/")).parts:
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


class Snapshot(ABC):
    """Read-only view of one state of the policy tree."""

    label: str  # "working tree", "index", a revision
    size_limit: int = DEFAULT_SIZE_LIMIT

    @abstractmethod
    def files(self) -> list[str]:
        """All regular files (relative POSIX paths), sorted."""

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def read(self, path: str) -> bytes:
        """Bytes of `path`; raises FileNotFoundError, or FileProblem for a file that may not be used."""

    @abstractmethod
    def content_id(self, path: str) -> str | None:
        """Git blob id of `path`, or None if it does not exist."""

    def is_dir(self, path: str) -> bool:
        prefix = normalize(path).rstrip("/") + "/"
        return any(f.startswith(prefix) for f in self.files())

    def problems(self) -> list[FileProblem]:
        """Entries seen while listing that cannot be audited (e.g. symlinks leaving the tree)."""
        return []

    def close(self) -> None:  # noqa: B027 - nothing to release for most snapshots
        """Release what reading needs (Git snapshots keep a `git cat-file` process); idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FsSnapshot(Snapshot):
    """The files under a directory on disk. Symlinks that leave the tree are reported, never followed."""

    def __init__(
        self, root: Path, size_limit: int = DEFAULT_SIZE_LIMIT, *, walk: bool = True
    ) -> None:
        """`walk=False` (`check FILE`): the snapshot holds only the files the audit reads (the named
        entry and what it loads); the rest of the directory is neither listed nor read."""
        self.root = root.resolve()
        self.walks = walk
        self.label = "working tree"
        self.size_limit = size_limit
        self._files: list[str] | None = None
        self._problems: list[FileProblem] = []
        self._ids: dict[str, str] = {}

    def _abs(self, path: str) -> Path:
        rel = normalize(path)
        if rel.startswith("..") or os.path.isabs(path):
            raise FileProblem(path, "path is outside the audited tree")
        return self.root / rel

    def _check_inside(self, path: str, full: Path) -> None:
        try:
            real = full.resolve()
        except (OSError, RuntimeError) as exc:  # symlink loops
            raise FileProblem(path, f"cannot resolve path: {exc}") from None
        if real != self.root and self.root not in real.parents:
            raise FileProblem(path, f"symlink points outside the audited tree (to {real})")

    def files(self) -> list[str]:
        if not self.walks:
            return sorted(self._ids)
        if self._files is None:
            found: list[str] = []
            for dirpath, dirnames, filenames in os.walk(
                self.root, followlinks=False, onerror=self._walk_error
            ):
                dirnames[:] = sorted(
                    d
                    for d in dirnames
                    if d not in SKIP_DIRS and not os.path.lexists(os.path.join(dirpath, d, ".git"))
                )
                for name in filenames:
                    full = Path(dirpath) / name
                    rel = full.relative_to(self.root).as_posix()
                    try:
                        if full.is_symlink():
                            self._check_inside(rel, full)
                        if not full.is_file():
                            continue
                    except FileProblem as problem:
                        self._problems.append(problem)
                        continue
                    found.append(rel)
                # symlinked directories are not walked; report those that leave the tree
                for name in list(dirnames):
                    full = Path(dirpath) / name
                    if full.is_symlink():
                        rel = full.relative_to(self.root).as_posix()
                        try:
                            self._check_inside(rel, full)
                        except FileProblem as problem:
                            self._problems.append(problem)
            self._files = sorted(found)
        return self._files

    def _walk_error(self, exc: OSError) -> None:
        if exc.filename is None:
            return
        try:
            rel = Path(exc.filename).relative_to(self.root).as_posix()
        except ValueError:
            return
        if rel != ".":
            reason = f"cannot read this directory: {exc.strerror or exc}"
            self._problems.append(FileProblem(rel, reason))

    def problems(self) -> list[FileProblem]:
        self.files()
        return list(self._problems)

    def exists(self, path: str) -> bool:
        """True when `path` exists, or may exist behind a directory that cannot be searched (reading
        it then reports why)."""
        try:
            full = self._abs(path)
        except FileProblem:
            return False
        try:
            os.lstat(full)
        except PermissionError:
            return True  # behind a directory that cannot be searched: reading it says so
        except OSError:
            return False  # absent, or a name no file can have (too long, a loop)
        return not self._in_nested_repository(path)

    def _in_nested_repository(self, path: str) -> bool:
        """True for a path inside a Git submodule (or another repository nested in the tree): its
        files are not part of the audited state, as in snapshots of the index or a revision, where a
        submodule is a commit id, not files."""
        parts = normalize(path).split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            if os.path.lexists(self.root.joinpath(*parts[:depth], ".git")):
                return True
        return False

    def is_dir(self, path: str) -> bool:
        try:
            return self._abs(path).is_dir()
        except (FileProblem, OSError):
            return False

    def read(self, path: str) -> bytes:
        full = self._abs(path)
        if self._in_nested_repository(path):
            raise FileNotFoundError(path)
        try:
            link = full.is_symlink()
        except OSError as exc:
            raise FileProblem(path, f"cannot read: {exc.strerror or exc}") from None
        if link:
            self._check_inside(path, full)
        try:
            st = full.stat()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise FileProblem(path, f"cannot read: {exc.strerror or exc}") from None
        if stat.S_ISDIR(st.st_mode):
            raise FileProblem(path, "is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise FileProblem(path, "is not a regular file")
        if st.st_size > self.size_limit:
            raise FileProblem(
                path, f"is {st.st_size:,} bytes, over the size limit of {self.size_limit:,} bytes"
            )
        try:
            data = full.read_bytes()
        except OSError as exc:
            raise FileProblem(path, f"cannot read: {exc.strerror or exc}") from None
        self._ids[normalize(path)] = git_blob_id(data)
        return data

    def content_id(self, path: str) -> str | None:
        rel = normalize(path)
        if rel not in self._ids:
            try:
                self.read(rel)
            except (FileNotFoundError, FileProblem):
                return None
        return self._ids.get(rel)
