"""The gate layout: the live path is a symlink to `releases/<name>`, each release a complete, verified tree.

A release is written under a temporary name, every file and directory fsynced, its manifest (path ->
Git blob id) written to `manifests/<name>.json`, and only then renamed to its final name: a release
directory that exists under its final name is complete. The live link moves with one `rename` of a new
symlink over the old one. Pristine copies of every file are kept by content id in `objects/`, so a hand
edit of the live tree can be healed and a release re-materialised without its source.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from auditor.core.errors import AuditError
from auditor.daemon.fsio import fsync_dir, write_durable
from auditor.source.snapshot import SKIP_DIRS, FileProblem, Snapshot, git_blob_id, normalize

Manifest = dict[str, str]  # relative POSIX path -> Git blob id
RENAME_EXCHANGE = 2


class LayoutError(AuditError):
    """The managed tree is not in the state an operation needs."""


@dataclass(frozen=True)
class Layout:
    live: Path
    state_dir: Path

    @property
    def releases(self) -> Path:
        return self.state_dir / "releases"

    @property
    def manifests(self) -> Path:
        return self.state_dir / "manifests"

    @property
    def objects(self) -> Path:
        return self.state_dir / "objects"

    def ensure_dirs(self) -> None:
        for path in (self.releases, self.manifests, self.objects):
            path.mkdir(parents=True, exist_ok=True)

    # -- reading --------------------------------------------------------------------------------

    def live_release(self) -> str | None:
        """The release the live link points at, or None when live is not a link into releases/."""
        if not self.live.is_symlink():
            return None
        target = Path(os.readlink(self.live))
        if not target.is_absolute():
            target = self.live.parent / target
        if target.parent != self.releases:
            return None
        return target.name

    def release_dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise LayoutError(f"invalid release name {name!r}")
        return self.releases / name

    def has_release(self, name: str) -> bool:
        return self.release_dir(name).is_dir() and (self.manifests / f"{name}.json").is_file()

    def manifest(self, name: str) -> Manifest:
        try:
            return json.loads((self.manifests / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LayoutError(f"release {name}: manifest unreadable: {exc}") from None

    def releases_by_age(self) -> list[str]:
        """Complete releases, oldest first."""
        found = (
            [p for p in self.releases.iterdir() if p.is_dir() and not p.name.startswith(".")]
            if self.releases.is_dir()
            else []
        )
        return [p.name for p in sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))]

    def object_bytes(self, blob_id: str) -> bytes:
        try:
            return (self.objects / blob_id[:2] / blob_id[2:]).read_bytes()
        except OSError:
            raise LayoutError(f"pristine copy of blob {blob_id} is missing") from None

    # -- writing --------------------------------------------------------------------------------

    def store_object(self, data: bytes) -> str:
        blob = git_blob_id(data)
        path = self.objects / blob[:2] / blob[2:]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_durable(path, data, 0o444)
        return blob

    def materialise(self, name: str, files: dict[str, bytes]) -> Path:
        """Write release `name` with exactly `files` (reusing a complete one with that content)."""
        final = self.release_dir(name)
        manifest = {path: self.store_object(data) for path, data in sorted(files.items())}
        if final.is_dir():
            if tree_manifest(final) == manifest:
                write_durable(self.manifests / f"{name}.json", _dump(manifest))
                return final
            raise LayoutError(f"release {name} exists with other content")
        tmp = self.releases / f".tmp-{name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(mode=0o755)
        dirs = {tmp}
        for path, data in sorted(files.items()):
            rel = normalize(path)
            if rel.startswith("..") or rel.startswith("/") or not rel:
                raise LayoutError(f"release {name}: path {path!r} leaves the tree")
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            dirs.update(p for p in target.parents if p == tmp or tmp in p.parents)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        for directory in sorted(dirs, key=lambda p: -len(p.parts)):
            fsync_dir(directory)
        if tree_manifest(tmp) != manifest:
            raise LayoutError(f"release {name}: written files do not match their hashes")
        write_durable(self.manifests / f"{name}.json", _dump(manifest))
        os.rename(tmp, final)
        fsync_dir(self.releases)
        return final

    def store_manifest(self, name: str, files: dict[str, bytes]) -> Manifest:
        """Keep a state's content (pristine copies and manifest) without a release directory."""
        manifest = {path: self.store_object(data) for path, data in sorted(files.items())}
        write_durable(self.manifests / f"{name}.json", _dump(manifest))
        return manifest

    def materialise_from_objects(self, name: str, manifest: Manifest) -> Path:
        return self.materialise(name, {p: self.object_bytes(b) for p, b in manifest.items()})

    def swap(self, name: str) -> None:
        """Point the live link at release `name` with one atomic rename."""
        target = self.release_dir(name)
        if not self.has_release(name):
            raise LayoutError(f"release {name} is not complete")
        if self.live.exists() and not self.live.is_symlink():
            raise LayoutError(f"{self.live} is a directory, not a link (run `daemon init`)")
        tmp = self.live.with_name(f".{self.live.name}.kumo-audit-swap-{os.getpid()}")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, self.live)
        fsync_dir(self.live.parent)

    def prune(self, keep: int, protect: set[str]) -> list[str]:
        """Remove all but the newest `keep` releases (never one in `protect`); their names."""
        names = self.releases_by_age()
        doomed = [n for n in names[: max(0, len(names) - keep)] if n not in protect]
        for name in doomed:
            shutil.rmtree(self.releases / name, ignore_errors=True)
            (self.manifests / f"{name}.json").unlink(missing_ok=True)
        for leftover in self.releases.glob(".tmp-*"):
            if not _pid_alive(leftover.name.rsplit("-", 1)[-1]):
                shutil.rmtree(leftover, ignore_errors=True)
        if doomed:
            self.prune_objects()
        return doomed

    def forget_manifests(self, prefix: str, keep: set[str | None]) -> int:
        """Remove the manifests of states named `prefix...` that are not in `keep` (no release
        directory); how many. Their pristine copies go with the next `prune_objects`."""
        forgotten = 0
        for path in self.manifests.glob(f"{prefix}*.json"):
            name = path.name[: -len(".json")]
            if name not in keep and not (self.releases / name).exists():
                path.unlink(missing_ok=True)
                forgotten += 1
        return forgotten

    def prune_objects(self) -> None:
        wanted: set[str] = set()
        for path in self.manifests.glob("*.json"):
            try:
                wanted.update(json.loads(path.read_text(encoding="utf-8")).values())
            except (OSError, ValueError):
                return  # never delete pristine copies on doubt
        for sub in self.objects.iterdir():
            for obj in sub.iterdir():
                if sub.name + obj.name not in wanted:
                    obj.unlink(missing_ok=True)


def _dump(manifest: Manifest) -> bytes:
    return json.dumps(manifest, sort_keys=True, indent=1).encode() + b"\n"


def _pid_alive(text: str) -> bool:
    if not text.isdigit():
        return False
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tree_manifest(root: Path, *, skip_vcs: bool = False) -> Manifest:
    """Path -> blob id of every regular file under `root`; a symlink anywhere is refused."""
    found: Manifest = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        if skip_vcs:
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                raise LayoutError(f"{full} is a symlink: releases may not contain one")
            if name in filenames:
                if not stat.S_ISREG(mode):
                    raise LayoutError(f"{full} is not a regular file")
                found[full.relative_to(root).as_posix()] = git_blob_id(full.read_bytes())
    return dict(sorted(found.items()))


def manifest_digest(manifest: Manifest) -> str:
    import hashlib

    h = hashlib.sha256()
    for path, blob in sorted(manifest.items()):
        h.update(f"{path}\0{blob}\n".encode())
    return h.hexdigest()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd = -100
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), RENAME_EXCHANGE)
    return rc == 0


def _replace_dir_with(live: Path, new: Path, aside: Path) -> None:
    """Put `new` at `live`, the old entry moving to `aside`: atomic where the kernel allows."""
    if _exchange(new, live):
        os.rename(new, aside)  # `new` now names the old entry
        fsync_dir(live.parent)
        return
    os.rename(live, aside)
    os.rename(new, live)
    fsync_dir(live.parent)


def init_layout(layout: Layout, name: str) -> tuple[str, Manifest]:
    """Convert the live directory into a link to `releases/<name>`; (release name, manifest)."""
    live = layout.live
    if live.is_symlink():
        current = layout.live_release()
        if current and layout.has_release(current):
            return current, layout.manifest(current)
        raise LayoutError(f"{live} is already a symlink, but not into {layout.releases}")
    if not live.is_dir():
        raise LayoutError(f"{live} is not a directory")
    before = tree_manifest(live)
    files = {path: (live / path).read_bytes() for path in before}
    layout.ensure_dirs()
    release = layout.materialise(name, files)
    if tree_manifest(release) != before:
        raise LayoutError("the release copy does not match the live tree; nothing changed")
    link = live.with_name(f".{live.name}.kumo-audit-link")
    aside = live.with_name(f".{live.name}.kumo-audit-orig")
    for leftover in (link, aside):
        if leftover.is_symlink() or leftover.is_file():
            leftover.unlink()
        elif leftover.is_dir():
            raise LayoutError(f"{leftover} exists from an interrupted run: inspect and remove it")
    os.symlink(release, link)
    _replace_dir_with(live, link, aside)
    if tree_manifest(live.resolve()) != before:
        raise LayoutError(f"verification failed: {aside} keeps the original tree")
    shutil.rmtree(aside)
    return name, before


def undo_layout(layout: Layout) -> Manifest:
    """Convert the live link back into a plain directory holding the live release's files."""
    live = layout.live
    name = layout.live_release()
    if name is None:
        raise LayoutError(f"{live} is not a link into {layout.releases}")
    current = tree_manifest(layout.release_dir(name))
    new = live.with_name(f".{live.name}.kumo-audit-dir")
    aside = live.with_name(f".{live.name}.kumo-audit-oldlink")
    if new.exists():
        shutil.rmtree(new)
    shutil.copytree(layout.release_dir(name), new, symlinks=True)
    if tree_manifest(new) != current:
        shutil.rmtree(new)
        raise LayoutError("the copy does not match the live release; nothing changed")
    if aside.is_symlink():
        aside.unlink()
    _replace_dir_with(live, new, aside)
    if aside.is_symlink():
        aside.unlink()
    if tree_manifest(live) != current:
        raise LayoutError(f"verification failed after converting {live} back")
    return current


class ManifestSnapshot(Snapshot):
    """A release as it was promoted: its manifest, read from the pristine copies in `objects/`."""

    def __init__(self, layout: Layout, name: str, manifest: Manifest | None = None) -> None:
        self.layout = layout
        self.name = name
        self.label = f"release {name}"
        self.manifest = manifest if manifest is not None else layout.manifest(name)
        self._files = sorted(self.manifest)

    def files(self) -> list[str]:
        return self._files

    def exists(self, path: str) -> bool:
        rel = normalize(path)
        return rel in self.manifest or self.is_dir(rel)

    def read(self, path: str) -> bytes:
        blob = self.manifest.get(normalize(path))
        if blob is None:
            raise FileNotFoundError(path)
        data = self.layout.object_bytes(blob)
        if len(data) > self.size_limit:
            raise FileProblem(path, f"is {len(data):,} bytes, over the size limit")
        return data

    def content_id(self, path: str) -> str | None:
        return self.manifest.get(normalize(path))
