"""Where candidates come from: a remote branch (pull), a local checkout, or the live tree (watch).

A source answers `current()` cheaply and often: the candidate the policy would be if promoted now,
named by what identifies its content (a commit id, or a digest of an uncommitted tree).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from auditor.core.errors import AuditError
from auditor.daemon.config import DaemonConfig
from auditor.source.snapshot import FsSnapshot, Snapshot

MIRROR_REMOTE = "origin"


@dataclass(frozen=True)
class Candidate:
    id: str  # the release name it would get
    kind: str  # "commit", "dirty" (uncommitted checkout edits) or "live" (watch mode)
    rev: str | None  # the commit, when there is one
    promotable: bool
    open: Callable[[], Snapshot]

    @property
    def short(self) -> str:
        return self.id[:12] if self.kind == "commit" else self.id


def tree_digest(snapshot: Snapshot) -> str:
    h = hashlib.sha256()
    for path in snapshot.files():
        h.update(f"{path}\0{snapshot.content_id(path)}\n".encode())
    for problem in snapshot.problems():
        h.update(f"!{problem.path}\0{problem.reason}\n".encode())
    return h.hexdigest()


def _git(repo: Path, *args: str, timeout: float = 120) -> str:
    from auditor.source.git import git_env

    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            env=git_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AuditError(f"git {args[0]} timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        first = next((ln for ln in proc.stderr.splitlines() if ln.strip()), "failed")
        raise AuditError(f"git {args[0]}: {first.strip()}")
    return proc.stdout


class Source:
    repo: Path | None = None  # the Git repository candidates come from (None: watch)
    subdir: str = ""
    watch_dirs: list[Path]

    def fetch(self) -> None:
        """Bring in remote changes (pull sources only)."""

    def current(self) -> Candidate | None:
        raise NotImplementedError

    def commit_candidate(self, rev: str) -> Candidate:
        assert self.repo is not None
        from auditor.source.git_snapshot import open_snapshot

        repo, subdir = self.repo, self.subdir

        def open_rev() -> Snapshot:
            return open_snapshot(repo, rev, subdir or None)

        return Candidate(id=rev, kind="commit", rev=rev, promotable=True, open=open_rev)

    def resolve(self, rev: str) -> str:
        if self.repo is None:
            raise AuditError("a watch source has no revisions")
        return _git(self.repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()


class PullSource(Source):
    """A private clone under the state directory, fetched from `url` on an interval and on demand."""

    def __init__(self, cfg: DaemonConfig) -> None:
        src = cfg.source
        assert src.url is not None
        self.url = src.url
        self.branch = src.branch
        self.subdir = src.path
        self.repo = cfg.state_dir / "source"
        self.tracking = f"refs/remotes/{MIRROR_REMOTE}/{self.branch}"
        self.watch_dirs = []
        if not (self.repo / ".git").is_dir():
            self.repo.mkdir(parents=True, exist_ok=True)
            _git(self.repo, "init", "--quiet")
        remotes = _git(self.repo, "remote").split()
        if MIRROR_REMOTE in remotes:
            _git(self.repo, "remote", "set-url", MIRROR_REMOTE, self.url)
        else:
            _git(self.repo, "remote", "add", MIRROR_REMOTE, self.url)

    def fetch(self) -> None:
        _git(
            self.repo,  # type: ignore[arg-type]
            "fetch",
            "--quiet",
            "--no-tags",
            MIRROR_REMOTE,
            f"+refs/heads/{self.branch}:{self.tracking}",
        )

    def current(self) -> Candidate | None:
        try:
            rev = self.resolve(self.tracking)
        except AuditError:
            return None  # nothing fetched yet
        return self.commit_candidate(rev)


class CheckoutSource(Source):
    """A local clone: its HEAD commit, or its uncommitted policy tree when that differs."""

    def __init__(self, cfg: DaemonConfig) -> None:
        assert cfg.source.repo is not None
        self.repo = cfg.source.repo.resolve()
        self.subdir = cfg.source.path
        self.promote_dirty = cfg.source.promote_dirty
        if not (self.repo / ".git").exists():
            raise AuditError(f"checkout source {self.repo} is not a Git checkout")
        self.watch_dirs = [self.repo]

    def current(self) -> Candidate | None:
        repo = self.repo
        assert repo is not None
        try:
            rev = self.resolve("HEAD")
        except AuditError:
            return None  # no commit yet
        pathspec = self.subdir or "."
        status = _git(repo, "status", "--porcelain", "--untracked-files=all", "--", pathspec)
        if not status.strip():
            return self.commit_candidate(rev)
        root = repo / self.subdir if self.subdir else repo
        snapshot = FsSnapshot(root)
        digest = tree_digest(snapshot)

        def open_tree() -> Snapshot:
            return FsSnapshot(root)

        return Candidate(
            id=f"dirty-{digest[:16]}",
            kind="dirty",
            rev=rev,
            promotable=self.promote_dirty,
            open=open_tree,
        )


class WatchSource(Source):
    """The live tree itself, edited in place: audited and recorded, never promoted."""

    def __init__(self, cfg: DaemonConfig) -> None:
        self.root = cfg.live
        if not self.root.is_dir() or self.root.is_symlink():
            raise AuditError(f"watch source: {self.root} must be a plain directory")
        self.watch_dirs = [self.root]

    def current(self) -> Candidate | None:
        root = self.root
        digest = tree_digest(FsSnapshot(root))

        def open_tree() -> Snapshot:
            return FsSnapshot(root)

        return Candidate(
            id=f"live-{digest[:16]}", kind="live", rev=None, promotable=False, open=open_tree
        )


def make_source(cfg: DaemonConfig) -> Source:
    kind = cfg.source.kind
    if kind == "pull":
        return PullSource(cfg)
    if kind == "checkout":
        return CheckoutSource(cfg)
    return WatchSource(cfg)
