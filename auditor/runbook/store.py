"""Where entry files live: a Git branch written with plumbing, or a plain directory.

The Git store never touches the working tree or the index: it hashes blobs, builds trees in a private
temporary index (`GIT_INDEX_FILE`), creates a commit with `commit-tree` and moves the branch with a
compare-and-swap `update-ref <ref> <new> <old>`. A lost race raises `StoreConflict`; writers re-read
and try again. Entry names never collide across writers, so merging two states is a union of files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.core.decisions import DEFAULT_BRANCH
from auditor.core.errors import AuditError
from auditor.runbook.markdown import EntryFormatError, parse_front_matter
from auditor.source.git import ZERO_OID, GitFailed, git, git_bytes, git_dir, run_git

if TYPE_CHECKING:
    from auditor.runbook.model import Actor

ENTRIES_DIR = "entries"
README_NAME = "README.md"
README_TEXT = """# kumo-audit runbook

Every operational decision about this KumoMTA policy, one immutable file per entry under
`entries/YYYY/MM/`, named by UTC decision time, decision and short entry id.

Each file ends with its canonical machine record. Entries are never edited: a correction is a new
entry that supersedes an earlier one. Check integrity with `kumo-audit runbook verify`.
"""


class StoreConflict(Exception):
    """The store moved since it was read (a concurrent writer won the compare-and-swap)."""


@dataclass(frozen=True)
class StoreState:
    """One readable state: `token` is the commit id (Git) and `names` maps entry paths to content keys."""

    token: str | None
    names: dict[str, str] = field(default_factory=dict)


class Store(ABC):
    description: str

    @abstractmethod
    def state(self) -> StoreState: ...

    @abstractmethod
    def read(self, state: StoreState, names: list[str]) -> dict[str, bytes]: ...

    @abstractmethod
    def add(self, state: StoreState, files: dict[str, bytes], message: str, actor: Actor) -> None:
        """Add new files atomically on top of `state`; StoreConflict if the store moved."""

    @abstractmethod
    def lock(self) -> contextlib.AbstractContextManager[None]: ...

    def summaries(self, state: StoreState) -> dict[str, dict[str, Any]]:
        """Front matter of every entry file (a dict with `_error` for unreadable ones)."""
        data = self.read(state, sorted(state.names))
        return {name: _front_or_error(blob) for name, blob in data.items()}


def _front_or_error(blob: bytes) -> dict[str, Any]:
    try:
        return parse_front_matter(blob)
    except EntryFormatError as exc:
        return {"_error": str(exc)}


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- Git branch store ----------------------------------------------------------------------------


class GitStore(Store):
    def __init__(self, repo: Path, branch: str = DEFAULT_BRANCH) -> None:
        self.repo = repo
        self.branch = branch
        self.ref = f"refs/heads/{branch}"
        if not branch or branch.startswith("-") or "@{" in branch:
            raise AuditError(f"invalid branch name {branch!r}")
        try:
            git(repo, "check-ref-format", "--branch", branch)
        except GitFailed:
            raise AuditError(f"invalid branch name {branch!r}") from None
        self.git_dir = git_dir(repo)
        self.private = self.git_dir / "kumo-audit"
        self.description = f"branch {branch} of {repo}"

    # reading
    def head(self) -> str | None:
        out = git(
            self.repo, "rev-parse", "--verify", "--quiet", f"{self.ref}^{{commit}}", check=False
        )
        return out or None

    def state(self) -> StoreState:
        return self.state_at(self.head())

    def state_at(self, commit: str | None) -> StoreState:
        if commit is None:
            return StoreState(None, {})
        return StoreState(commit, self.list_tree(commit, ENTRIES_DIR))

    def list_tree(
        self, commit: str, under: str | None = None, paths: list[str] | None = None
    ) -> dict[str, str]:
        args = ["ls-tree", "-r", "-z", "--full-tree", commit]
        if under or paths:
            args += ["--", *([under] if under else []), *(paths or [])]
        out = git_bytes(self.repo, *args).decode("utf-8", "surrogateescape")
        names: dict[str, str] = {}
        for item in out.split("\0"):
            if not item:
                continue
            meta, _, path = item.partition("\t")
            _mode, kind, oid = meta.split()
            if kind == "blob":
                names[path] = oid
        return names

    def read(self, state: StoreState, names: list[str]) -> dict[str, bytes]:
        oids = [state.names[n] for n in names]
        blobs = self.read_blobs(oids)
        return {name: blobs[oid] for name, oid in zip(names, oids, strict=True)}

    def read_blobs(self, oids: list[str]) -> dict[str, bytes]:
        if not oids:
            return {}
        out = _cat_file_batch(self.repo, ("\n".join(oids) + "\n").encode())
        result: dict[str, bytes] = {}
        pos = 0
        for _ in oids:
            eol = out.index(b"\n", pos)
            header = out[pos:eol].decode().split()
            if len(header) != 3:
                raise AuditError(
                    f"runbook object {header[0] if header else '?'} is missing from {self.repo}"
                )
            size = int(header[2])
            result[header[0]] = out[eol + 1 : eol + 1 + size]
            pos = eol + 1 + size + 1
        return result

    def summaries(self, state: StoreState) -> dict[str, dict[str, Any]]:
        """Front matter by entry, cached by blob id (entries are immutable, blob ids are content)."""
        cache_path = self.private / "summaries.json"
        try:
            cache: dict[str, dict[str, Any]] = json.loads(cache_path.read_text())["blobs"]
        except (OSError, ValueError, KeyError, TypeError):
            cache = {}
        missing = sorted({oid for oid in state.names.values() if oid not in cache})
        if missing:
            for oid, blob in self.read_blobs(missing).items():
                cache[oid] = _front_or_error(blob)
            with contextlib.suppress(OSError):
                _atomic_write(cache_path, json.dumps({"version": 1, "blobs": cache}).encode())
        return {name: cache[oid] for name, oid in state.names.items()}

    # writing
    def lock(self) -> contextlib.AbstractContextManager[None]:
        return _flock(self.private / "runbook.lock")

    def tidy(self) -> None:
        """Let Git pack its loose objects once there are many (`git gc --auto`, which detaches):
        every entry writes a new tree for its month, so a busy writer such as a daemon leaves
        thousands of loose objects that only packing (with deltas) keeps small."""
        run_git(self.repo, "gc", "--auto", "--quiet", check=False)

    def add(self, state: StoreState, files: dict[str, bytes], message: str, actor: Actor) -> None:
        self.add_files(state.token, files, message, actor, existing=state.names)

    def add_files(
        self,
        parent: str | None,
        files: dict[str, bytes],
        message: str,
        actor: Actor,
        existing: dict[str, str] | None = None,
    ) -> str:
        """Commit `files` on top of branch commit `parent` and move the branch there (compare and
        swap); the new commit. `existing` lists the parent's entries, when already read."""
        taken = existing if existing is not None else self.present(parent, list(files))
        for name in files:
            if name in taken:
                raise AuditError(
                    f"runbook entry {name} already exists; entries are never rewritten"
                )
        oids = self.write_blobs(list(files.values()))
        additions = dict(zip(files, oids, strict=True))
        if parent is None:
            additions[README_NAME] = self.write_blobs([README_TEXT.encode()])[0]
        tree = self.build_tree(parent, additions)
        commit = self.commit_tree(tree, [parent] if parent else [], message, actor)
        self.move_ref(commit, parent)
        return commit

    def present(self, commit: str | None, names: list[str]) -> dict[str, str]:
        """Which of `names` exist in `commit` (without listing the whole runbook)."""
        if commit is None or not names:
            return {}
        return self.list_tree(commit, None, names)

    def write_blobs(self, contents: list[bytes]) -> list[str]:
        if len(contents) == 1:
            return [
                git(self.repo, "hash-object", "-w", "--no-filters", "--stdin", input=contents[0])
            ]
        self.private.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.private) as tmp:
            paths = []
            for i, data in enumerate(contents):
                path = Path(tmp) / f"{i}.md"
                path.write_bytes(data)
                paths.append(str(path))
            out = git(
                self.repo,
                "hash-object",
                "-w",
                "--no-filters",
                "--stdin-paths",
                input=("\n".join(paths) + "\n").encode(),
            )
        return out.split("\n")

    def build_tree(self, base_commit: str | None, additions: dict[str, str]) -> str:
        """A tree: `base_commit`'s tree plus `additions` (path -> blob id), via a private index."""
        self.private.mkdir(parents=True, exist_ok=True)
        fd, index_path = tempfile.mkstemp(prefix="index-", dir=self.private)
        os.close(fd)
        os.unlink(index_path)
        env = {"GIT_INDEX_FILE": index_path}
        try:
            if base_commit:
                git(self.repo, "read-tree", base_commit, env=env)
            else:
                git(self.repo, "read-tree", "--empty", env=env)
            info = "".join(f"100644 {oid}\t{path}\n" for path, oid in sorted(additions.items()))
            git(self.repo, "update-index", "--add", "--index-info", input=info.encode(), env=env)
            return git(self.repo, "write-tree", env=env)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(index_path)

    def commit_tree(self, tree: str, parents: list[str], message: str, actor: Actor) -> str:
        email = actor.email or "kumo-audit@localhost"
        env = {
            "GIT_AUTHOR_NAME": actor.name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": actor.name,
            "GIT_COMMITTER_EMAIL": email,
        }
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return git(self.repo, *args, input=message.encode(), env=env)

    def move_ref(self, new: str, old: str | None, ref: str | None = None) -> None:
        ref = ref or self.ref
        try:
            git(self.repo, "update-ref", "-m", "kumo-audit runbook", ref, new, old or ZERO_OID)
        except GitFailed as exc:
            raise StoreConflict(str(exc)) from None

    def merge_union(self, ours: str, theirs: str, actor: Actor) -> str:
        """A merge commit of two runbook states: every entry of both (no entry may differ)."""
        our_files = self.list_tree(ours)
        their_files = self.list_tree(theirs)
        additions: dict[str, str] = {}
        for path, oid in their_files.items():
            mine = our_files.get(path)
            if mine is None:
                additions[path] = oid
            elif mine != oid and path.startswith(ENTRIES_DIR + "/"):
                raise AuditError(
                    f"runbook entry {path} differs between the two states; run `runbook verify`"
                )
        tree = self.build_tree(ours, additions)
        return self.commit_tree(
            tree, [ours, theirs], f"runbook: merge {len(additions)} entries", actor
        )


# --- plain directory store -----------------------------------------------------------------------


class DirStore(Store):
    def __init__(self, root: Path) -> None:
        if root.exists() and not root.is_dir():
            raise AuditError(f"{root} is not a directory")
        self.root = root
        self.description = f"directory {root}"

    def state(self) -> StoreState:
        base = self.root / ENTRIES_DIR
        names: dict[str, str] = {}
        if base.is_dir():
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames.sort()
                rel = Path(dirpath).relative_to(self.root).as_posix()
                for filename in filenames:
                    if filename.startswith(".tmp-"):
                        continue
                    names[f"{rel}/{filename}"] = ""
        return StoreState(None, names)

    def read(self, state: StoreState, names: list[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for name in names:
            try:
                out[name] = (self.root / name).read_bytes()
            except OSError as exc:
                raise AuditError(f"cannot read {self.root / name}: {exc.strerror}") from None
        return out

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return _flock(self.root / ".kumo-runbook.lock")

    def add(self, state: StoreState, files: dict[str, bytes], message: str, actor: Actor) -> None:
        for name, data in files.items():
            target = self.root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                try:
                    os.link(tmp, target)  # fails if the name exists: entries are never overwritten
                except FileExistsError:
                    raise AuditError(f"runbook entry {target} already exists") from None
            finally:
                os.unlink(tmp)
        readme = self.root / README_NAME
        if not readme.exists():
            _atomic_write(readme, README_TEXT.encode())


def _cat_file_batch(repo: Path, request: bytes) -> bytes:
    """`git cat-file --batch`: the request is fed from a thread while the answer is read in one go
    (much cheaper than polling both pipes for tens of megabytes)."""
    import subprocess
    import threading

    try:
        proc = subprocess.Popen(
            ["git", "-C", str(repo), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise AuditError("git is not installed or not on PATH") from None
    assert proc.stdin is not None and proc.stdout is not None

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(request)  # type: ignore[union-attr]
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()  # type: ignore[union-attr]

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    out = proc.stdout.read()
    writer.join()
    if proc.wait() != 0:
        raise AuditError(f"git cat-file failed in {repo}")
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def open_store(
    repo: Path | None, branch: str = DEFAULT_BRANCH, runbook_dir: Path | None = None
) -> Store:
    """The store the command line asks for: `--runbook-dir`, else the branch of the repository."""
    if runbook_dir is not None:
        return DirStore(runbook_dir)
    from auditor.source.git import require_repo

    return GitStore(require_repo(repo or Path.cwd(), " (use --repo or --runbook-dir)"), branch)
