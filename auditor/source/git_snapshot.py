"""Snapshots of Git states: the index (exactly what would be committed) and any revision.

Nothing is checked out and nothing is written: the listing comes from `git ls-files -s` (index) or
`git ls-tree -r -l` (revision), each file's content id is the blob id from that listing, sizes come
from the listing or from one `git cat-file --batch-check` run (so an oversized blob is never read), and
contents come from one long-lived `git cat-file --batch` process per snapshot. GitPython is not used:
importing it costs 150-300 ms, a `git` subprocess 2-5 ms (see `auditor.source.git`).

Symlinks (mode 120000) are resolved inside the snapshot from their blob text, never on disk: a link
to a file inside the tree reads as that file, a link leaving the tree is a FileProblem. Submodules
(160000) are skipped. A path with conflict stages in the index is a FileProblem.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from auditor.core.errors import AuditError
from auditor.source.git import (
    commits_between,
    common_dir,
    current_branch,
    find_repo,
    first_line,
    git_dir,
    head_commit,
    is_shallow,
    is_unborn,
    merge_base,
    repo_state,
    resolve_rev,
    run_git,
    start_git,
    valid_rev,
)
from auditor.source.snapshot import DEFAULT_SIZE_LIMIT, FileProblem, FsSnapshot, Snapshot, normalize

__all__ = [
    "BlobReader",
    "GitSnapshot",
    "IndexSnapshot",
    "RevisionSnapshot",
    "changed_paths",
    "commits_between",
    "common_dir",
    "current_branch",
    "find_repo",
    "git_dir",
    "head_commit",
    "is_shallow",
    "merge_base",
    "open_snapshot",
    "repo_state",
    "resolve_rev",
]

MODE_LINK = "120000"
MODE_SUBMODULE = "160000"
MODE_TREE = "40000"  # as tree objects write it (`ls-tree` prints 040000)
REGULAR_MODES = frozenset({"100644", "100755", "100664"})
EMPTY_BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
MAX_LINK_HOPS = 40
CONFLICT_REASON = "has unresolved merge conflicts"
PREFETCH_SUFFIXES = (".lua", ".toml", ".json")
PREFETCH_BYTES = 8 * 1024 * 1024


@dataclass(slots=True)
class _Entry:
    mode: str
    oid: str
    size: int | None = None


class BlobReader:
    """One long-lived `git cat-file` process per snapshot, started on first use.

    Git 2.36+ answers both size queries (`info`) and reads (`contents`) in one `--batch-command`
    process; older Git gets `--batch` for reads and a `--batch-check` run for sizes.
    """

    _CHUNK = 100  # commands written before reading answers: stays far below a pipe buffer

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._proc: subprocess.Popen[bytes] | None = None
        self._command_mode: bool | None = None  # unknown until the first process answers
        self._lock = threading.Lock()

    def _spawn(self, mode: str) -> subprocess.Popen[bytes]:
        return start_git(self.repo, "cat-file", mode)

    def _exchange(self, commands: list[bytes], contents: bool) -> list[tuple[bytes, bytes | None]]:
        """Send commands, return (header, body) per command; body only when `contents`."""
        if self._proc is None:
            self._proc = self._spawn(
                "--batch" if self._command_mode is False else "--batch-command"
            )
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        answers: list[tuple[bytes, bytes | None]] = []
        for start in range(0, len(commands), self._CHUNK):
            proc.stdin.write(b"".join(commands[start : start + self._CHUNK]))
            proc.stdin.flush()
            for _ in commands[start : start + self._CHUNK]:
                header = proc.stdout.readline()
                if not header:
                    raise BrokenPipeError("git cat-file stopped answering")
                fields = header.split()
                body = None
                if contents and len(fields) == 3:
                    size = int(fields[2])
                    body = proc.stdout.read(size + 1)
                    if len(body) != size + 1:
                        raise BrokenPipeError("git cat-file stopped answering")
                    body = body[:size]
                answers.append((header, body))
        return answers

    def _run(self, oids: list[str], contents: bool) -> list[tuple[bytes, bytes | None]] | None:
        with self._lock:
            for _attempt in range(2):
                if self._command_mode is False:
                    verb = b""
                else:
                    verb = b"contents " if contents else b"info "
                commands = [verb + os.fsencode(oid) + b"\n" for oid in oids]
                try:
                    answers = self._exchange(commands, contents)
                except (OSError, ValueError) as exc:
                    self._close_locked()
                    if self._command_mode is None:  # Git before 2.36: no --batch-command
                        self._command_mode = False
                        if not contents:  # --batch cannot answer size queries: see sizes()
                            return None
                        continue
                    raise AuditError(f"cannot read Git objects: {exc}") from None
                self._command_mode = self._command_mode is not False
                return answers
        raise AuditError("cannot read Git objects: git cat-file did not start")

    def sizes(self, oids: list[str]) -> dict[str, int | None]:
        """Object sizes without reading the objects; None for a missing object."""
        if not oids:
            return {}
        if self._command_mode is False:
            return blob_sizes(self.repo, oids)
        answers = self._run(oids, contents=False)
        if answers is None:  # discovered just now that this Git is older than 2.36
            return blob_sizes(self.repo, oids)
        sizes: dict[str, int | None] = {}
        for oid, (header, _) in zip(oids, answers, strict=True):
            fields = header.split()
            sizes[oid] = int(fields[2]) if len(fields) == 3 else None
        return sizes

    def read_many(self, oids: list[str]) -> dict[str, bytes]:
        """The bytes of many blobs in one exchange; missing objects are left out."""
        if not oids:
            return {}
        answers = self._run(oids, contents=True)
        assert answers is not None
        return {
            oid: body for oid, (_h, body) in zip(oids, answers, strict=True) if body is not None
        }

    def read(self, oid: str) -> bytes:
        """The blob's bytes; AuditError if the object is missing or git stops answering."""
        answers = self._run([oid], contents=True)
        assert answers is not None
        _header, body = answers[0]
        if body is None:
            raise AuditError(f"Git object {oid} is missing from the repository")
        return body

    def resolve_commit(self, rev: str) -> str | None:
        """The commit `rev` names, from the running process (no `git rev-parse`); None when it names
        none, or when this Git cannot answer here (the caller then asks `rev-parse`)."""
        if self._command_mode is False or "\n" in rev:
            return None
        answers = self._run([f"{rev}^{{commit}}"], contents=False)
        if answers is None:
            return None
        fields = answers[0][0].split()
        return fields[0].decode("ascii") if len(fields) == 3 and fields[1] == b"commit" else None

    def list_tree(self, treeish: str) -> tuple[str, dict[str, _Entry]] | None:
        """("tree", entries) for every file and symlink under `treeish` (recursively, paths relative
        to it), ("missing", {}) when it names nothing, (its type, {}) when it is not a tree; None
        when this Git cannot answer here (the caller then asks `ls-tree`). Sizes are left unknown:
        `GitSnapshot` asks for them in one batch when a file is read."""
        if self._command_mode is False or "\n" in treeish:
            return None
        answers = self._run([treeish], contents=True)
        if answers is None:
            return None
        header, body = answers[0]
        fields = header.split()
        if len(fields) != 3:
            return "missing", {}
        if fields[1] != b"tree" or body is None:
            return fields[1].decode("ascii", "replace"), {}
        raw = len(fields[0]) // 2  # 20 bytes for SHA-1, 32 for SHA-256
        entries: dict[str, _Entry] = {}
        level = [("", body)]
        while level:
            subtrees: list[tuple[str, str]] = []
            for prefix, data in level:
                for mode, name, oid in _tree_records(data, raw):
                    path = prefix + name
                    if mode == MODE_TREE:
                        subtrees.append((path + "/", oid))
                    elif mode in REGULAR_MODES or mode == MODE_LINK:
                        entries[path] = _Entry(mode, oid)
            if not subtrees:
                break
            found = self._run([oid for _, oid in subtrees], contents=True)
            assert found is not None
            level = []
            for (prefix, _oid), (sub_header, sub_body) in zip(subtrees, found, strict=True):
                if sub_body is None or sub_header.split()[1:2] != [b"tree"]:
                    raise AuditError(f"Git tree {_oid} is missing from the repository")
                level.append((prefix, sub_body))
        return "tree", entries

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tree_records(data: bytes, raw: int) -> list[tuple[str, str, str]]:
    """(mode, name, hex id) of each record of a tree object: `<mode> <name>\\0<raw id>`."""
    records = []
    at, end = 0, len(data)
    while at < end:
        space = data.index(b" ", at)
        nul = data.index(b"\0", space)
        records.append(
            (
                data[at:space].decode("ascii"),
                os.fsdecode(data[space + 1 : nul]),
                data[nul + 1 : nul + 1 + raw].hex(),
            )
        )
        at = nul + 1 + raw
    return records


def blob_sizes(repo: Path, oids: list[str]) -> dict[str, int | None]:
    """Sizes of many objects from one `git cat-file --batch-check` run; None for a missing object."""
    if not oids:
        return {}
    proc = run_git(
        repo, "cat-file", "--batch-check", input="".join(f"{oid}\n" for oid in oids).encode("ascii")
    )
    sizes: dict[str, int | None] = {}
    for line in proc.stdout.decode("ascii", "replace").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2].isdigit():
            sizes[fields[0]] = int(fields[2])
        elif fields:
            sizes[fields[0]] = None
    return sizes


class GitSnapshot(Snapshot):
    """Files of one Git state under `subdir` (POSIX, relative to the repository's top), read-only."""

    def __init__(
        self,
        repo: Path,
        entries: dict[str, _Entry],
        label: str,
        subdir: str = "",
        conflicted: set[str] | None = None,
        size_limit: int = DEFAULT_SIZE_LIMIT,
        reader: BlobReader | None = None,
    ) -> None:
        self.repo = repo
        self.subdir = subdir
        self.label = label
        self.size_limit = size_limit
        self.root = repo / subdir if subdir else repo
        self._entries = entries
        self._conflicted = conflicted or set()
        self._links = any(e.mode == MODE_LINK for e in entries.values())
        # a shared reader (several snapshots of one repository) is closed by whoever made it
        self._owns_reader = reader is None
        self._reader = reader if reader is not None else BlobReader(repo)
        self._link_text: dict[str, str] = {}
        self._listing: tuple[list[str], dict[str, str], list[FileProblem]] | None = None
        self._dirs: set[str] | None = None
        self._prefetched: dict[str, bytes] | None = None  # blob id -> bytes, read in one exchange

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the `git cat-file` process (unless it is shared); reads after this start a new one."""
        self._prefetched = None
        if self._owns_reader:
            self._reader.close()

    def __del__(self) -> None:
        reader = getattr(self, "_reader", None)
        if reader is not None and getattr(self, "_owns_reader", False):
            reader.close()

    # -- path resolution -------------------------------------------------------------------------

    def _link_target(self, link: str) -> str:
        if link not in self._link_text:
            self._link_text[link] = os.fsdecode(self._reader.read(self._entries[link].oid))
        return self._link_text[link]

    def _canonical(self, path: str) -> str:
        """`path` with every symlink component replaced by its target, all inside the tree."""
        rel = normalize(path)
        if os.path.isabs(path) or rel == ".." or rel.startswith("../"):
            raise FileProblem(path, "path is outside the audited tree")
        if not self._links:
            return rel
        # each pending component remembers the link whose target it came from, to name it on escape
        pending: deque[tuple[str, str | None]] = deque((p, None) for p in rel.split("/") if p)
        resolved: list[str] = []
        hops = 0
        while pending:
            part, origin = pending.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    assert origin is not None  # a plain `..` at the top was rejected above
                    raise FileProblem(
                        origin,
                        f"symlink points outside the audited tree (to {self._link_text[origin]})",
                    )
                resolved.pop()
                continue
            candidate = "/".join([*resolved, part])
            entry = self._entries.get(candidate)
            if entry is not None and entry.mode == MODE_LINK:
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise FileProblem(
                        path, "cannot resolve path: too many levels of symbolic links"
                    )
                target = self._link_target(candidate)
                if target.startswith("/") or not target:
                    raise FileProblem(
                        candidate, f"symlink points outside the audited tree (to {target})"
                    )
                pending.extendleft((p, candidate) for p in reversed(target.split("/")))
                continue
            resolved.append(part)
        return "/".join(resolved)

    def _regular(self, canonical: str) -> _Entry | None:
        entry = self._entries.get(canonical)
        return entry if entry is not None and entry.mode in REGULAR_MODES else None

    # -- listing ---------------------------------------------------------------------------------

    def _list(self) -> tuple[list[str], dict[str, str], list[FileProblem]]:
        if self._listing is None:
            files: list[str] = []
            ids: dict[str, str] = {}
            problems = [FileProblem(p, CONFLICT_REASON) for p in sorted(self._conflicted)]
            for path, entry in self._entries.items():
                if entry.mode in REGULAR_MODES:
                    files.append(path)
                    ids[path] = entry.oid
                elif entry.mode == MODE_LINK:
                    try:
                        target = self._regular(self._canonical(path))
                    except FileProblem as problem:
                        problems.append(FileProblem(path, problem.reason))
                        continue
                    if target is not None:  # links to directories and dangling links are not files
                        files.append(path)
                        ids[path] = target.oid
            files.sort()
            self._listing = (files, ids, problems)
        return self._listing

    def files(self) -> list[str]:
        return self._list()[0]

    def problems(self) -> list[FileProblem]:
        return list(self._list()[2])

    def content_ids(self) -> dict[str, str]:
        """Every listed file's content id, without reading anything."""
        return dict(self._list()[1])

    def _directories(self) -> set[str]:
        if self._dirs is None:
            dirs: set[str] = set()
            for path in list(self._entries) + list(self._conflicted):
                parent = PurePosixPath(path).parent
                while str(parent) != ".":
                    dirs.add(str(parent))
                    parent = parent.parent
            self._dirs = dirs
        return self._dirs

    # -- Snapshot API ----------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        try:
            canonical = self._canonical(path)
        except FileProblem:
            return False
        return (
            canonical in self._entries
            or canonical in self._conflicted
            or canonical in self._directories()
        )

    def is_dir(self, path: str) -> bool:
        try:
            canonical = self._canonical(path)
        except FileProblem:
            return False
        return canonical == "" or canonical in self._directories()

    def content_id(self, path: str) -> str | None:
        rel = normalize(path)
        ids = self._list()[1]
        if rel in ids:
            return ids[rel]
        try:
            entry = self._regular(self._canonical(path))
        except FileProblem:
            return None
        return entry.oid if entry is not None else None

    def read(self, path: str) -> bytes:
        canonical = self._canonical(path)
        if canonical in self._conflicted:
            raise FileProblem(path, CONFLICT_REASON)
        entry = self._entries.get(canonical)
        if entry is None:
            if canonical == "" or canonical in self._directories():
                raise FileProblem(path, "is a directory, not a file")
            raise FileNotFoundError(path)
        if entry.mode == MODE_SUBMODULE:
            raise FileProblem(path, "is a Git submodule, not a file")
        if entry.mode not in REGULAR_MODES:
            raise FileProblem(path, "is not a regular file")
        size = self._size(canonical, entry)
        if size is None:
            raise FileProblem(path, f"cannot read: Git object {entry.oid} is missing")
        if size > self.size_limit:
            raise FileProblem(
                path, f"is {size:,} bytes, over the size limit of {self.size_limit:,} bytes"
            )
        if self._prefetched is None:
            self._prefetched = self._prefetch()
        data = self._prefetched.get(entry.oid)
        if data is not None:
            return data
        try:
            return self._reader.read(entry.oid)
        except AuditError as exc:
            raise FileProblem(path, f"cannot read: {exc}") from None

    def _prefetch(self) -> dict[str, bytes]:
        """On the first read: the policy files of the snapshot (Lua and data files, within the size
        limit, PREFETCH_BYTES at most), in one exchange with `git cat-file` instead of one each. An
        audit reads nearly all of them; one round trip costs far more than a small file."""
        wanted: dict[str, int] = {}
        total = 0
        for path, entry in self._entries.items():
            if entry.mode not in REGULAR_MODES or not path.endswith(PREFETCH_SUFFIXES):
                continue
            if entry.oid in wanted or entry.size is None or not 0 <= entry.size <= self.size_limit:
                continue
            if total + entry.size > PREFETCH_BYTES:
                break
            wanted[entry.oid] = entry.size
            total += entry.size
        try:
            return self._reader.read_many(sorted(wanted))
        except AuditError:
            return {}  # each read then asks on its own, and says what failed

    def _size(self, path: str, entry: _Entry) -> int | None:
        if entry.size is None:
            # one batch for every file whose size is not known yet: a hook reads several files
            pending = [
                e for e in self._entries.values() if e.size is None and e.mode in REGULAR_MODES
            ]
            sizes = self._reader.sizes(sorted({e.oid for e in pending}))
            for e in pending:
                found = sizes.get(e.oid)
                e.size = -1 if found is None else found
        return None if entry.size is None or entry.size < 0 else entry.size


class IndexSnapshot(GitSnapshot):
    """The Git index: exactly what `git commit` would record (honours a hook's GIT_INDEX_FILE)."""

    @classmethod
    def open(
        cls,
        repo: Path,
        subdir: str = "",
        size_limit: int = DEFAULT_SIZE_LIMIT,
        reader: BlobReader | None = None,
    ) -> IndexSnapshot:
        args = ["ls-files", "--stage", "-z"]
        if subdir:
            args += ["--", subdir + "/"]
        out = run_git(repo, *args).stdout
        entries: dict[str, _Entry] = {}
        conflicted: set[str] = set()
        prefix = subdir + "/" if subdir else ""
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, oid, stage = meta.decode("ascii").split()
            path = os.fsdecode(raw_path)
            if prefix:
                if not path.startswith(prefix):
                    continue
                path = path[len(prefix) :]
            if stage != "0":
                conflicted.add(path)
            elif mode in REGULAR_MODES or mode == MODE_LINK:
                entries[path] = _Entry(mode, oid)
        for path in conflicted:
            entries.pop(path, None)
        snapshot = cls(repo, entries, "index", subdir, conflicted, size_limit, reader)
        _drop_intent_to_add(snapshot)
        return snapshot


_DEBUG_FLAGS = re.compile(rb"([^\0]*)\0  ctime:.*?flags: ([0-9a-f]+)\n", re.DOTALL)
_INTENT_TO_ADD = 1 << 29  # CE_INTENT_TO_ADD in Git's in-memory index entry flags


def _drop_intent_to_add(snapshot: GitSnapshot) -> None:
    """`git add -N` records a file with the empty blob id, but it is not staged: `git commit` skips it.
    Only `ls-files --debug` shows that flag; it runs only when an empty-blob entry exists."""
    entries = snapshot._entries
    empties = [
        path for path, e in entries.items() if e.oid == EMPTY_BLOB and e.mode in REGULAR_MODES
    ]
    if not empties:
        return
    prefix = snapshot.subdir + "/" if snapshot.subdir else ""
    out = run_git(snapshot.repo, "ls-files", "--debug", "-z", "--", *(prefix + p for p in empties))
    for match in _DEBUG_FLAGS.finditer(out.stdout):
        path = os.fsdecode(match.group(1))[len(prefix) :]
        if path in entries and int(match.group(2), 16) & _INTENT_TO_ADD:
            del entries[path]
    for path in empties:
        if path in entries:
            entries[path].size = 0


class RevisionSnapshot(GitSnapshot):
    """The tree of one commit; `commit` is None for HEAD in a repository with no commits yet."""

    commit: str | None

    @classmethod
    def open(
        cls,
        repo: Path,
        rev: str,
        subdir: str = "",
        size_limit: int = DEFAULT_SIZE_LIMIT,
        reader: BlobReader | None = None,
    ) -> RevisionSnapshot:
        """The revision's tree, resolved and listed by the snapshot's `git cat-file` process (the
        one it reads with; `reader` shares one across snapshots), else by `rev-parse`/`ls-tree`."""
        own = reader is None
        reader = reader if reader is not None else BlobReader(repo)
        try:
            commit, entries = _open_revision(repo, rev, subdir, reader)
        except BaseException:
            if own:
                reader.close()
            raise
        # the process that listed the tree reads the files too
        snapshot = cls(repo, entries, rev, subdir, None, size_limit, reader)
        snapshot._owns_reader = own
        snapshot.commit = commit
        return snapshot


def _open_revision(
    repo: Path, rev: str, subdir: str, reader: BlobReader
) -> tuple[str | None, dict[str, _Entry]]:
    commit = reader.resolve_commit(rev) if valid_rev(rev) else None
    if commit is None:  # unknown to cat-file (or an old Git): rev-parse gives the exact error
        try:
            commit = resolve_rev(repo, rev)
        except AuditError:
            if not is_unborn(repo, rev):
                raise
            commit = None
    entries: dict[str, _Entry] = {}
    if commit is None:
        return None, entries
    treeish = f"{commit}:{subdir}" if subdir else f"{commit}^{{tree}}"
    listed = reader.list_tree(treeish)
    if listed is not None:
        kind, entries = listed
        if kind not in ("tree", "missing"):
            raise AuditError(f"{subdir!r} is not a directory in {rev}")
        # a subdirectory absent at this revision is an empty snapshot (the policy did not exist yet)
        return commit, entries
    treeish = f"{commit}:{subdir}" if subdir else commit
    proc = run_git(repo, "ls-tree", "-r", "-l", "-z", treeish, check=False)
    if proc.returncode == 0:
        _parse_ls_tree(proc.stdout, entries)
    elif b"not a tree object" in proc.stderr:
        raise AuditError(f"{subdir!r} is not a directory in {rev}")
    elif b"not a valid object name" not in proc.stderr.lower():
        raise AuditError(f"git ls-tree failed: {first_line(proc.stderr)}")
    return commit, entries


def _parse_ls_tree(out: bytes, entries: dict[str, _Entry]) -> None:
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, _kind, oid, size = meta.decode("ascii").split()
        if mode in REGULAR_MODES or mode == MODE_LINK:
            entries[os.fsdecode(raw_path)] = _Entry(
                mode, oid, int(size) if size.isdigit() else None
            )


def _subdir_of(repo_path: Path, subdir: str | None) -> tuple[Path, str]:
    """(repository top, snapshot root relative to it as POSIX) for a path inside a repository."""
    start = Path(repo_path).resolve()
    if subdir:
        if os.path.isabs(subdir):
            raise AuditError(f"subdirectory must be relative to the repository: {subdir}")
        rel = normalize(subdir)
        if rel == ".." or rel.startswith("../"):
            raise AuditError(f"subdirectory is outside the repository: {subdir}")
        start = start / rel
    top = find_repo(repo_path)
    if top is None:
        raise AuditError(f"not a Git repository: {repo_path}")
    try:
        inner = start.relative_to(top).as_posix()
    except ValueError:
        raise AuditError(f"{start} is not inside the repository {top}") from None
    return top, "" if inner == "." else inner


def open_snapshot(
    repo_path: Path | str,
    spec: str,
    subdir: str | None = None,
    size_limit: int = DEFAULT_SIZE_LIMIT,
    reader: BlobReader | None = None,
) -> Snapshot:
    """`spec` is "WORKTREE", "INDEX" or a revision. The snapshot root is `repo_path/subdir`; `repo_path`
    may itself be a directory inside the repository. `reader` (a `BlobReader` of that repository)
    is shared instead of starting a `git cat-file` process for this snapshot."""
    if spec == "WORKTREE":
        root = Path(repo_path) / normalize(subdir) if subdir else Path(repo_path)
        if not root.is_dir():
            raise AuditError(f"not a directory: {root}")
        return FsSnapshot(root, size_limit)
    top, inner = _subdir_of(Path(repo_path), subdir)
    if reader is not None and Path(reader.repo).resolve() != top:
        reader = None  # a reader of another repository (or of another path to it) is not shared
    if spec == "INDEX":
        return IndexSnapshot.open(top, inner, size_limit, reader)
    return RevisionSnapshot.open(top, spec, inner, size_limit, reader)


def changed_paths(base: Snapshot, head: Snapshot) -> list[str]:
    """Paths added, removed or with different content between two snapshots (by content id), sorted."""

    def ids(snapshot: Snapshot) -> dict[str, str | None]:
        if isinstance(snapshot, GitSnapshot):
            return dict(snapshot.content_ids())
        return {path: snapshot.content_id(path) for path in snapshot.files()}

    before, after = ids(base), ids(head)
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
