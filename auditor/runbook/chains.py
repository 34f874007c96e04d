"""The head of every writer's chain on a Git runbook branch, kept between runs.

Recording an entry needs the hash of its writer's last entry. Reading the front matter of every
entry to find it costs time and memory in proportion to the runbook, so this index keeps, for one
branch commit, the entries that no other entry of their writer follows (normally one per writer).

The index describes the set of entry files of the commit it names. It is brought forward to a newer
branch commit by reading only the entry files added since (one tree diff, then those blobs), whatever
the commits in between: new entries of this store, or other hosts' entries brought in by a pull or a
merge. Anything else (an entry file edited, renamed or deleted, a writer left without a head, an
unreadable or damaged index) rebuilds it from every entry. It is an optimisation, not a trust
anchor: `runbook verify` checks the chains themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from auditor.runbook.store import ENTRIES_DIR, GitStore, _atomic_write, _front_or_error
from auditor.source.git import GitFailed, git_bytes

VERSION = 1
_HEADER = b"kumo-audit-chains "

Head = tuple[str, str, str]
"""(recorded_at, entry name, hash): an entry no other entry of its writer follows."""


class ChainIndex:
    def __init__(self, commit: str | None, heads: dict[str, list[Head]]) -> None:
        self.commit = commit
        self.heads = heads

    # -- what `record` needs ----------------------------------------------------------------------

    def tips(self) -> dict[str, tuple[str, str]]:
        """Per writer, the hash and recorded_at of its last entry (the latest of several heads,
        which only a forked chain has)."""
        tips = {}
        for writer, heads in self.heads.items():
            recorded_at, _name, digest = max(heads)
            tips[writer] = (digest, recorded_at)
        return tips

    def add(self, fronts: Iterable[tuple[str, Mapping[str, Any]]]) -> list[str]:
        """Take in added entries (name, front matter); the writers left without a head (which
        only a cycle, i.e. tampering, can cause): then the chains are not a plain extension."""
        by_writer: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
        for name, front in fronts:
            if "_error" in front or not front.get("writer") or not front.get("hash"):
                continue
            by_writer.setdefault(str(front["writer"]), []).append((name, front))
        headless = []
        for writer, items in by_writer.items():
            followed = {front.get("prev_hash") for _, front in items}
            heads = [h for h in self.heads.get(writer, []) if h[2] not in followed]
            heads += [
                (str(f.get("recorded_at", "")), name, str(f["hash"]))
                for name, f in items
                if f["hash"] not in followed
            ]
            if not heads:
                headless.append(writer)
                # as for every chain tip: the latest entry, when every entry is followed
                heads = [max((str(f.get("recorded_at", "")), n, str(f["hash"])) for n, f in items)]
            self.heads[writer] = sorted(set(heads))
        return headless

    # -- keeping it ---------------------------------------------------------------------------------

    def save(self, store: GitStore) -> None:
        data = {
            "version": VERSION,
            "branch": store.ref,
            "commit": self.commit,
            "heads": {w: [list(h) for h in heads] for w, heads in sorted(self.heads.items())},
        }
        payload = json.dumps(data, separators=(",", ":")).encode()
        header = _HEADER + hashlib.sha256(payload).hexdigest().encode()
        with contextlib.suppress(OSError):
            _atomic_write(_path(store), header + b"\n" + payload)


def _path(store: GitStore):  # type: ignore[no-untyped-def]
    name = hashlib.sha256(store.ref.encode()).hexdigest()[:12]
    return store.private / f"chains-{name}.json"


def load(store: GitStore) -> ChainIndex | None:
    try:
        header, _, payload = _path(store).read_bytes().partition(b"\n")
    except OSError:
        return None
    if header != _HEADER + hashlib.sha256(payload).hexdigest().encode():
        return None
    try:
        data = json.loads(payload)
        if data["version"] != VERSION or data["branch"] != store.ref:
            return None
        heads = {
            str(w): [(str(a), str(b), str(c)) for a, b, c in items]
            for w, items in data["heads"].items()
        }
        commit = data["commit"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if (commit is not None and not isinstance(commit, str)) or not all(heads.values()):
        return None
    return ChainIndex(commit, heads)


def current(store: GitStore, commit: str | None) -> ChainIndex:
    """The index for branch commit `commit` (None: no branch yet): the kept one brought forward,
    or one rebuilt from every entry."""
    index = load(store)
    if index is not None and index.commit == commit:
        return index
    if index is not None and index.commit is not None and commit is not None:
        added = _added_entries(store, index.commit, commit)
        if added is not None:
            blobs = store.read_blobs(sorted(set(added.values())))
            fronts = [(name, _front_or_error(blobs[oid])) for name, oid in sorted(added.items())]
            if not index.add(fronts):
                index.commit = commit
                index.save(store)
                return index
    return rebuild(store, commit)


def rebuild(store: GitStore, commit: str | None) -> ChainIndex:
    index = ChainIndex(commit, {})
    if commit is not None:
        index.add(store.summaries(store.state_at(commit)).items())
    index.save(store)
    return index


def _added_entries(store: GitStore, old: str, new: str) -> dict[str, str] | None:
    """Entry files of `new` that `old` lacks (name -> blob id); None when anything else changed."""
    try:
        out = git_bytes(
            store.repo, "diff-tree", "-r", "-z", "--no-renames", old, new, "--", ENTRIES_DIR
        )
    except GitFailed:
        return None  # `old` is gone (a rewritten branch, a pruned object)
    fields = out.decode("utf-8", "surrogateescape").split("\0")
    added: dict[str, str] = {}
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        parts = meta.split()
        if len(parts) != 5 or parts[4] != "A" or not parts[1].startswith("100"):
            return None
        added[path] = parts[3]
    return added
