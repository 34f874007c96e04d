"""Git snapshots (index, revisions) and repository utilities, on real repositories in tmp dirs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.core.errors import AuditError
from auditor.source.git_snapshot import (
    BlobReader,
    IndexSnapshot,
    RevisionSnapshot,
    changed_paths,
    commits_between,
    current_branch,
    find_repo,
    is_shallow,
    merge_base,
    open_snapshot,
    repo_state,
    resolve_rev,
)
from auditor.source.snapshot import FileProblem, FsSnapshot, git_blob_id


@pytest.fixture(autouse=True)
def _clean_git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may run inside a Git hook: its GIT_DIR / GIT_INDEX_FILE must not leak into our repos."""
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        [
            "git",
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-C",
            str(repo),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {args}: {proc.stderr}")
    return proc.stdout


def write(repo: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def init_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return path


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def status(repo: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain=v1", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
    ).stdout


def index_state(repo: Path) -> tuple[bytes, int]:
    index = repo / ".git" / "index"
    return index.read_bytes(), index.stat().st_mtime_ns


def read_all(snapshot) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    return {path: snapshot.read(path) for path in snapshot.files()}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit, then a staged change, an unstaged change, a staged deletion, a
    staged rename, a new binary file and an untracked file."""
    repo = init_repo(tmp_path / "repo")
    write(repo, {"init.lua": "v1\n", "lib.lua": "lib\n", "old.lua": "old\n", "gone.lua": "gone\n"})
    commit_all(repo, "first")
    write(repo, {"init.lua": "v2\n"})
    git(repo, "add", "init.lua")
    write(repo, {"init.lua": "v3\n", "lib.lua": "lib unstaged\n"})
    git(repo, "rm", "-q", "gone.lua")
    git(repo, "mv", "old.lua", "new.lua")
    write(repo, {"logo.bin": b"\x89PNG\0\x01\xff" * 10})
    git(repo, "add", "logo.bin")
    write(repo, {"untracked.lua": "u\n"})
    return repo


def test_index_head_and_worktree_differ_as_git_says(repo: Path) -> None:
    before_status, before_index = status(repo), index_state(repo)
    with open_snapshot(repo, "INDEX") as index, open_snapshot(repo, "HEAD") as head:
        assert isinstance(index, IndexSnapshot) and isinstance(head, RevisionSnapshot)
        assert read_all(head) == {
            "gone.lua": b"gone\n",
            "init.lua": b"v1\n",
            "lib.lua": b"lib\n",
            "old.lua": b"old\n",
        }
        staged = read_all(index)
        assert staged == {
            "init.lua": b"v2\n",
            "lib.lua": b"lib\n",
            "logo.bin": b"\x89PNG\0\x01\xff" * 10,
            "new.lua": b"old\n",
        }
        for path, data in staged.items():
            assert index.content_id(path) == git_blob_id(data)
        assert index.content_id("gone.lua") is None and not index.exists("gone.lua")
        with pytest.raises(FileNotFoundError):
            index.read("gone.lua")
        assert changed_paths(head, index) == [
            "gone.lua",
            "init.lua",
            "logo.bin",
            "new.lua",
            "old.lua",
        ]
        worktree = open_snapshot(repo, "WORKTREE")
        assert isinstance(worktree, FsSnapshot)
        assert worktree.read("init.lua") == b"v3\n"
        assert changed_paths(index, worktree) == ["init.lua", "lib.lua", "untracked.lua"]
        assert head.commit == resolve_rev(repo, "HEAD") and head.label == "HEAD"
        assert index.label == "index"
    assert index_state(repo) == before_index
    assert status(repo) == before_status


def test_reads_never_refresh_or_write_the_index(repo: Path) -> None:
    # A tracked file whose mtime changed but content did not makes the index stale: a careless
    # read (e.g. `git diff` without GIT_OPTIONAL_LOCKS=0) would rewrite the index to refresh it.
    stat = (repo / "lib.lua").stat()
    os.utime(repo / "new.lua", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    before = index_state(repo)
    for spec in ("INDEX", "HEAD", "main", "WORKTREE"):
        snapshot = open_snapshot(repo, spec)
        read_all(snapshot)
        snapshot.problems()
        snapshot.close()
    assert index_state(repo) == before
    assert sorted(p.name for p in (repo / ".git").iterdir() if p.name.endswith(".lock")) == []


def test_revisions_by_branch_tag_sha_and_ancestry(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    write(repo, {"init.lua": "one\n"})
    first = commit_all(repo, "1")
    git(repo, "tag", "-a", "v1", "-m", "annotated")
    write(repo, {"init.lua": "two\n"})
    commit_all(repo, "2")
    write(repo, {"init.lua": "three\n"})
    third = commit_all(repo, "3")
    for spec in ("HEAD~2", "v1", first, first[:10]):
        with open_snapshot(repo, spec) as snap:
            assert snap.read("init.lua") == b"one\n", spec
            assert snap.commit == first
    with open_snapshot(repo, "main") as snap:
        assert snap.read("init.lua") == b"three\n" and snap.commit == third
    assert resolve_rev(repo, "HEAD~1^") == first


@pytest.mark.parametrize("rev", ["no-such-branch", "HEAD~99", "-x", "a b\nc"])
def test_unknown_revision_is_a_one_line_audit_error(repo: Path, rev: str) -> None:
    with pytest.raises(AuditError) as info:
        open_snapshot(repo, rev)
    message = str(info.value)
    assert "\n" not in message and "revision" in message


def test_size_limit_binary_and_submodule(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    write(repo, {"big.toml": "x" * 5000, "small.lua": "ok\n"})
    commit_all(repo, "1")
    # a submodule is a gitlink entry (mode 160000) pointing at a commit of another repository
    other = init_repo(tmp_path / "other")
    write(other, {"a": "a"})
    sub_commit = commit_all(other, "x")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{sub_commit},vendor/sub")
    git(repo, "commit", "-q", "-m", "submodule")
    for spec in ("INDEX", "HEAD"):
        with open_snapshot(repo, spec, size_limit=1000) as snap:
            assert snap.files() == ["big.toml", "small.lua"], spec
            assert snap.content_id("big.toml") == git_blob_id(b"x" * 5000)
            with pytest.raises(FileProblem, match="5,000 bytes, over the size limit of 1,000"):
                snap.read("big.toml")
            assert snap.read("small.lua") == b"ok\n"
            assert not snap.exists("vendor/sub")


def test_symlinks_resolved_inside_the_tree_never_followed_out(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    write(repo, {"pol/init.lua": "init\n", "pol/lib/helpers.lua": "helpers\n", "secret": "s\n"})
    pol = repo / "pol"
    os.symlink("lib/helpers.lua", pol / "alias.lua")
    os.symlink("lib", pol / "libdir")
    os.symlink("/etc/passwd", pol / "abs")
    os.symlink("../secret", pol / "up")  # inside the repository, outside the policy directory
    os.symlink("libdir/../../secret", pol / "sneaky")
    os.symlink("missing.lua", pol / "dangling")
    os.symlink("loop2", pol / "loop1")
    os.symlink("loop1", pol / "loop2")
    commit_all(repo, "links")
    for spec in ("INDEX", "HEAD"):
        with open_snapshot(repo, spec, subdir="pol") as snap:
            assert snap.files() == ["alias.lua", "init.lua", "lib/helpers.lua"], spec
            assert snap.read("alias.lua") == b"helpers\n"
            assert snap.read("libdir/helpers.lua") == b"helpers\n"
            assert snap.content_id("alias.lua") == git_blob_id(b"helpers\n")
            assert snap.is_dir("libdir") and snap.is_dir("lib") and not snap.is_dir("init.lua")
            problems = {p.path: p.reason for p in snap.problems()}
            assert problems == {
                "abs": "symlink points outside the audited tree (to /etc/passwd)",
                "up": "symlink points outside the audited tree (to ../secret)",
                "sneaky": "symlink points outside the audited tree (to libdir/../../secret)",
                "loop1": "cannot resolve path: too many levels of symbolic links",
                "loop2": "cannot resolve path: too many levels of symbolic links",
            }
            for path in ("abs", "up", "sneaky", "../secret"):
                with pytest.raises(FileProblem, match="outside the audited tree"):
                    snap.read(path)
            with pytest.raises(FileNotFoundError):
                snap.read("dangling")
            with pytest.raises(FileProblem, match="is a directory"):
                snap.read("lib")


def test_subdirectory_policy(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    write(repo, {"README.md": "top\n"})
    first = commit_all(repo, "before the policy existed")
    write(repo, {"etc/policy/init.lua": "init\n", "etc/policy/data/a.toml": "a = 1\n"})
    commit_all(repo, "policy")
    expected = {"data/a.toml": b"a = 1\n", "init.lua": b"init\n"}
    for spec in ("INDEX", "HEAD"):
        with open_snapshot(repo, spec, subdir="etc/policy") as snap:
            assert read_all(snap) == expected
            assert snap.root == repo.resolve() / "etc/policy"
        # the repository path may itself be the policy directory
        with open_snapshot(repo / "etc" / "policy", spec) as snap:
            assert read_all(snap) == expected
    with open_snapshot(repo, first, subdir="etc/policy") as snap:
        assert snap.files() == []
    with pytest.raises(AuditError, match="not a directory"):
        open_snapshot(repo, "HEAD", subdir="README.md")
    with pytest.raises(AuditError, match="outside the repository"):
        open_snapshot(repo, "HEAD", subdir="../elsewhere")
    with open_snapshot(repo, "WORKTREE", subdir="etc/policy") as worktree:
        assert read_all(worktree) == expected


def test_not_a_repository(tmp_path: Path) -> None:
    assert find_repo(tmp_path) is None
    with pytest.raises(AuditError, match="not a Git repository"):
        open_snapshot(tmp_path, "INDEX")


def test_empty_repository(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "empty")
    assert find_repo(repo / "x" / "..") == repo.resolve()
    with open_snapshot(repo, "HEAD") as head, open_snapshot(repo, "main") as branch:
        assert head.files() == [] and branch.files() == []
        assert head.commit is None
    with open_snapshot(repo, "INDEX") as index:
        assert index.files() == []
    write(repo, {"init.lua": "first\n"})
    git(repo, "add", "init.lua")
    with open_snapshot(repo, "INDEX") as index:
        assert read_all(index) == {"init.lua": b"first\n"}
    with pytest.raises(AuditError, match="no commits yet"):
        resolve_rev(repo, "HEAD")
    with pytest.raises(AuditError):
        open_snapshot(repo, "other-branch")
    assert repo_state(repo) == "clean"


def test_intent_to_add_is_not_staged(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    write(repo, {"init.lua": "x\n", "empty.lua": ""})
    commit_all(repo, "1")
    write(repo, {"later.lua": "not staged yet\n"})
    git(repo, "add", "-N", "later.lua")
    with open_snapshot(repo, "INDEX") as index:
        assert index.files() == ["empty.lua", "init.lua"]
        assert index.read("empty.lua") == b""


def test_detached_head(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    write(repo, {"init.lua": "one\n"})
    first = commit_all(repo, "1")
    write(repo, {"init.lua": "two\n"})
    commit_all(repo, "2")
    assert current_branch(repo) == "main"
    git(repo, "checkout", "-q", "--detach", "HEAD~1")
    assert current_branch(repo) is None
    with open_snapshot(repo, "HEAD") as head:
        assert head.commit == first and head.read("init.lua") == b"one\n"
    with open_snapshot(repo, "main") as main:
        assert main.read("init.lua") == b"two\n"


def test_history_merge_base_and_commits_between(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    write(repo, {"init.lua": "0\n"})
    root = commit_all(repo, "root")
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, {"a.lua": "a\n"})
    f1 = commit_all(repo, "f1")
    write(repo, {"a.lua": "a2\n"})
    f2 = commit_all(repo, "f2")
    git(repo, "checkout", "-q", "main")
    write(repo, {"b.lua": "b\n"})
    m1 = commit_all(repo, "m1")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    merge = git(repo, "rev-parse", "HEAD").strip()
    assert merge_base(repo, "feature", "main") == f2
    assert merge_base(repo, "feature", m1) == root
    assert commits_between(repo, "feature", "main") == [m1, merge]
    every = commits_between(repo, root, "main")
    assert sorted(every) == sorted([f1, f2, m1, merge])
    assert every.index(f1) < every.index(f2) and every[-1] == merge  # parents before children
    assert commits_between(repo, root, "main", first_parent=True) == [m1, merge]
    assert commits_between(repo, "main", "main") == []
    assert not is_shallow(repo)
    git(repo, "checkout", "-q", "--orphan", "unrelated")
    write(repo, {"z.lua": "z\n"})
    commit_all(repo, "orphan")
    with pytest.raises(AuditError, match="no common ancestor"):
        merge_base(repo, "unrelated", "main")
    with open_snapshot(repo, root) as base, open_snapshot(repo, "main") as head:
        assert changed_paths(base, head) == ["a.lua", "b.lua"]


def test_shallow_clone_reports_missing_history_clearly(tmp_path: Path) -> None:
    origin = init_repo(tmp_path / "origin")
    write(origin, {"init.lua": "0\n"})
    commit_all(origin, "root")
    git(origin, "checkout", "-q", "-b", "feature")
    write(origin, {"init.lua": "feature\n"})
    commit_all(origin, "f1")
    git(origin, "checkout", "-q", "main")
    write(origin, {"init.lua": "main\n"})
    commit_all(origin, "m1")
    clone = tmp_path / "clone"
    subprocess.run(
        [
            "git",
            "clone",
            "-q",
            "--depth",
            "1",
            "--no-single-branch",
            f"file://{origin}",
            str(clone),
        ],
        check=True,
        capture_output=True,
    )
    assert is_shallow(clone)
    with open_snapshot(clone, "origin/feature") as feature:
        assert feature.read("init.lua") == b"feature\n"
    for call in (
        lambda: merge_base(clone, "origin/feature", "origin/main"),
        lambda: commits_between(clone, "origin/feature", "origin/main"),
        lambda: resolve_rev(clone, "HEAD~1"),
    ):
        with pytest.raises(AuditError, match="shallow clone") as info:
            call()
        assert "\n" not in str(info.value)


def make_conflict(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "r")
    write(repo, {"init.lua": "base\n", "other.lua": "same\n"})
    commit_all(repo, "base")
    git(repo, "checkout", "-q", "-b", "theirs")
    write(repo, {"init.lua": "theirs\n"})
    commit_all(repo, "theirs")
    git(repo, "checkout", "-q", "main")
    write(repo, {"init.lua": "ours\n"})
    commit_all(repo, "ours")
    return repo


def test_merge_in_progress_reports_conflicted_paths(tmp_path: Path) -> None:
    repo = make_conflict(tmp_path)
    git(repo, "merge", "theirs", check=False)
    assert repo_state(repo) == "merging"
    before = status(repo)
    with open_snapshot(repo, "INDEX") as index:
        assert index.files() == ["other.lua"]
        assert [(p.path, p.reason) for p in index.problems()] == [
            ("init.lua", "has unresolved merge conflicts")
        ]
        assert index.exists("init.lua")
        with pytest.raises(FileProblem, match="unresolved merge conflicts"):
            index.read("init.lua")
        assert index.read("other.lua") == b"same\n"
        assert index.content_id("init.lua") is None
    assert status(repo) == before
    git(repo, "merge", "--abort")
    assert repo_state(repo) == "clean"


def test_cherry_pick_and_rebase_states(tmp_path: Path) -> None:
    repo = make_conflict(tmp_path)
    git(repo, "cherry-pick", "theirs", check=False)
    assert repo_state(repo) == "cherry-picking"
    git(repo, "cherry-pick", "--abort")
    git(repo, "rebase", "theirs", check=False)
    assert repo_state(repo) == "rebasing"
    with open_snapshot(repo, "INDEX") as index:
        assert [p.path for p in index.problems()] == ["init.lua"]
    git(repo, "rebase", "--abort")
    assert repo_state(repo) == "clean"


def test_hook_index_file_is_honoured(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`git commit -a` / `git commit <path>` run hooks with GIT_INDEX_FILE naming a temporary index."""
    alternate = repo / ".git" / "alt-index"
    subprocess.run(
        ["git", "-C", str(repo), "read-tree", "HEAD"],
        check=True,
        env={**os.environ, "GIT_INDEX_FILE": str(alternate)},
    )
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GIT_INDEX_FILE", ".git/alt-index")  # relative, as Git exports it to hooks
    with open_snapshot(repo, "INDEX") as index:
        assert index.read("init.lua") == b"v1\n"
        assert "new.lua" not in index.files()


def test_cat_file_process_is_closed(repo: Path) -> None:
    with open_snapshot(repo, "HEAD") as snap:
        snap.read("init.lua")
        proc = snap._reader._proc
        assert proc is not None and proc.poll() is None
    assert snap._reader._proc is None and proc.poll() is not None
    assert snap.read("lib.lua") == b"lib\n"  # a read after close starts a new process
    snap.close()


def test_reader_without_batch_command(repo: Path) -> None:
    """Git before 2.36 has no `cat-file --batch-command`: the reader uses --batch and --batch-check."""
    reader = BlobReader(repo)
    reader._command_mode = False
    blob = git(repo, "rev-parse", "HEAD:init.lua").strip()
    try:
        assert reader.read(blob) == b"v1\n"
        assert reader.sizes([blob, "0" * 40]) == {blob: 3, "0" * 40: None}
        with pytest.raises(AuditError, match="missing"):
            reader.read("0" * 40)
        assert reader.read(blob) == b"v1\n"
    finally:
        reader.close()


def test_many_reads_share_one_process(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    write(repo, {f"d{i % 7}/f{i}.lua": f"-- {i}\n" * (i + 1) for i in range(150)})
    commit_all(repo, "many")
    with open_snapshot(repo, "HEAD") as snap:
        first = None
        for i, path in enumerate(snap.files()):
            data = snap.read(path)
            assert snap.content_id(path) == git_blob_id(data)
            if i == 0:
                first = snap._reader._proc
        assert snap._reader._proc is first
        assert len(snap.files()) == 150


def _ls_tree(repo: Path, treeish: str) -> dict[str, tuple[str, str]]:
    out = git(repo, "ls-tree", "-r", "-z", treeish)
    listed = {}
    for record in out.split("\0"):
        if record:
            meta, _, path = record.partition("\t")
            mode, kind, oid = meta.split()
            if kind == "blob":
                listed[path] = (mode, oid)
    return listed


def test_revision_listing_from_cat_file_matches_ls_tree(tmp_path: Path) -> None:
    """Trees are read through the snapshot's `git cat-file` process, recursively; the listing is
    `ls-tree -r`'s (paths, modes, ids), and a Git without `--batch-command` gets it from ls-tree."""
    repo = init_repo(tmp_path / "r")
    files = {f"policy/d{i % 3}/sub{i % 2}/f{i}.lua": f"-- {i}\n" for i in range(12)}
    files |= {"policy/init.lua": "init\n", "policy/ünïcode name.toml": "a = 1\n", "top.md": "x\n"}
    write(repo, files)
    (repo / "policy" / "run.sh").write_text("#!/bin/sh\n")
    (repo / "policy" / "run.sh").chmod(0o755)
    os.symlink("init.lua", repo / "policy" / "alias.lua")
    head = commit_all(repo, "tree")
    for subdir, treeish in (
        ("", head),
        ("policy", f"{head}:policy"),
        ("policy/d1", f"{head}:policy/d1"),
    ):
        expected = _ls_tree(repo, treeish)
        for command_mode in (None, False):
            reader = BlobReader(repo)
            reader._command_mode = command_mode
            try:
                with RevisionSnapshot.open(repo, "HEAD", subdir, reader=reader) as snap:
                    got = {p: (e.mode, e.oid) for p, e in snap._entries.items()}
                    assert got == expected, (subdir, command_mode)
                    assert snap.commit == head.strip()
                    for path in snap.files():
                        assert git_blob_id(snap.read(path)) == snap.content_id(path)
            finally:
                reader.close()


def test_sha256_repository(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    if subprocess.run(["git", "-C", str(repo), "init", "-q", "--object-format=sha256"],
                      capture_output=True).returncode != 0:  # fmt: skip
        pytest.skip("this Git cannot make SHA-256 repositories")
    write(repo, {"policy/init.lua": "init\n", "policy/lib/a.lua": "a\n"})
    head = commit_all(repo, "sha256").strip()
    with open_snapshot(repo, "HEAD", subdir="policy") as snap:
        assert snap.commit == head and len(head) == 64
        assert read_all(snap) == {"init.lua": b"init\n", "lib/a.lua": b"a\n"}
        assert (
            snap.content_id("lib/a.lua") == git(repo, "rev-parse", "HEAD:policy/lib/a.lua").strip()
        )


def test_snapshots_of_many_revisions_share_one_reader(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    revisions = [commit_all_with(repo, {"init.lua": f"v{i}\n"}) for i in range(8)]
    reader = BlobReader(repo)
    try:
        procs = set()
        for i, rev in enumerate(revisions):
            snap = open_snapshot(repo, rev, reader=reader)
            assert snap.read("init.lua") == f"v{i}\n".encode()
            snap.close()  # a shared reader outlives the snapshot
            procs.add(id(reader._proc))
            assert reader._proc is not None and reader._proc.poll() is None
        assert len(procs) == 1
    finally:
        reader.close()
    assert reader._proc is None


def commit_all_with(repo: Path, files: dict[str, str]) -> str:
    write(repo, files)
    return commit_all(repo, "change").strip()


def test_ci_each_commit_starts_no_git_process_per_commit(tmp_path: Path) -> None:
    """`ci --each-commit` reads every state through one `git cat-file`: the number of git processes
    it starts does not grow with the number of commits."""
    from tests.conftest import ROOT

    shim = tmp_path / "shim"
    shim.mkdir()
    log = tmp_path / "calls.log"
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True).stdout
    (shim / "git").write_text(f'#!/bin/sh\necho x >> "{log}"\nexec "{real.strip()}" "$@"\n')
    (shim / "git").chmod(0o755)

    def calls(commits: int) -> int:
        repo = init_repo(tmp_path / f"r{commits}")
        base = commit_all_with(repo, {"init.lua": "local kumo = require 'kumo'\n"})
        for i in range(commits):
            commit_all_with(repo, {"init.lua": f"local kumo = require 'kumo'\nlocal v = {i}\n"})
        log.write_text("")
        env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
               "PYTHONPATH": str(ROOT), "KUMO_AUDIT_CACHE_DIR": str(tmp_path / f"c{commits}")}  # fmt: skip
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "auditor",
                "ci",
                "--base",
                base,
                "--policy",
                str(repo),
                "--each-commit",
                "--format",
                "json",
                "--output",
                os.devnull,
            ],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.count("epoch") == commits
        return len(log.read_text().splitlines())

    assert calls(3) == calls(9)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("init.lua", "init.lua"),
        ("gen/mod_001.lua", "gen/mod_001.lua"),
        ("./a/./b.lua", "a/b.lua"),
        ("a//b.lua", "a/b.lua"),
        ("a/b/../c.lua", "a/c.lua"),
        ("../up.lua", "../up.lua"),
        ("a/../../up.lua", "../up.lua"),
        ("a\\b.lua", "a/b.lua"),
        ("a/", "a"),
        ("", ""),
        (".", ""),
    ],
)
def test_normalize(path: str, expected: str) -> None:
    from auditor.source.snapshot import normalize

    assert normalize(path) == expected


def test_first_read_fetches_the_policy_files_in_one_exchange(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    files = {f"lib/m{i}.lua": f"-- module {i}\n" for i in range(20)}
    files |= {"init.lua": "init\n", "shaping.toml": "a = 1\n", "README.md": "docs\n"}
    files |= {"big.lua": "-- " + "x" * 2000 + "\n"}
    write(repo, files)
    commit_all(repo, "policy")
    for spec in ("HEAD", "INDEX"):
        with open_snapshot(repo, spec, size_limit=1000) as snap:
            assert snap.read("init.lua") == b"init\n"
            fetched = snap._prefetched or {}
            expected = {
                snap.content_id(p)
                for p in files
                if p.endswith((".lua", ".toml")) and p != "big.lua"
            }
            assert set(fetched) == expected  # Lua and data files within the limit, nothing else
            for path, text in files.items():
                if path == "big.lua":
                    with pytest.raises(FileProblem, match="size limit"):
                        snap.read(path)
                else:
                    assert snap.read(path) == text.encode()
