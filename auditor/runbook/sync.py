"""`runbook pull` / `runbook push`: exchange the runbook branch with a remote without losing entries.

Pull fetches the remote branch into `refs/remotes/<remote>/<branch>` and integrates it: fast-forward
when possible, otherwise a union merge commit (entry names never collide). Push integrates first,
then pushes without force; if another writer pushed in between, the push is rejected and the whole
fetch-merge-push cycle runs again.
"""

from __future__ import annotations

from auditor.core.errors import AuditError
from auditor.runbook.identity import resolve_actor
from auditor.runbook.store import GitStore, StoreConflict
from auditor.source.git import GitFailed, first_line, git, is_ancestor, run_git

MAX_ATTEMPTS = 10
_RETRYABLE = (
    "rejected",
    "non-fast-forward",
    "fetch first",
    "cannot lock ref",
    "failed to update ref",
)


def fetch(store: GitStore, remote: str) -> str | None:
    """Fetch the remote's runbook branch; its commit id, or None when the remote has no such branch."""
    probe = run_git(
        store.repo, "ls-remote", "--exit-code", "--heads", remote, store.ref, check=False
    )
    if probe.returncode == 2:
        return None
    if probe.returncode != 0:
        raise AuditError(f"cannot reach remote {remote!r}: {first_line(probe.stderr)}")
    tracking = f"refs/remotes/{remote}/{store.branch}"
    git(store.repo, "fetch", "--quiet", "--no-tags", remote, f"+{store.ref}:{tracking}")
    return git(store.repo, "rev-parse", "--verify", f"{tracking}^{{commit}}")


def integrate(store: GitStore, theirs: str) -> str:
    """Bring commit `theirs` into the local branch; a one-word description of what happened."""
    actor = resolve_actor(store.repo)
    for _ in range(MAX_ATTEMPTS):
        ours = store.head()
        try:
            if ours is None:
                store.move_ref(theirs, None)
                return "created"
            if ours == theirs or is_ancestor(store.repo, theirs, ours):
                return "up-to-date"
            if is_ancestor(store.repo, ours, theirs):
                store.move_ref(theirs, ours)
                return "fast-forward"
            store.move_ref(store.merge_union(ours, theirs, actor), ours)
            return "merged"
        except StoreConflict:
            continue
    raise AuditError("the local runbook branch kept moving; try again")


def pull(store: GitStore, remote: str) -> str:
    theirs = fetch(store, remote)
    if theirs is None:
        return f"remote {remote} has no branch {store.branch}"
    outcome = integrate(store, theirs)
    return f"pulled {store.branch} from {remote}: {outcome}"


def push(store: GitStore, remote: str) -> str:
    if store.head() is None:
        pulled = pull(store, remote)
        if store.head() is None:
            raise AuditError(f"nothing to push: no local branch {store.branch} ({pulled})")
    for _ in range(MAX_ATTEMPTS):
        theirs = fetch(store, remote)
        if theirs is not None:
            integrate(store, theirs)
        try:
            git(store.repo, "push", "--quiet", "--no-verify", remote, f"{store.ref}:{store.ref}")
        except GitFailed as exc:
            if any(marker in exc.stderr for marker in _RETRYABLE):
                continue
            raise
        return f"pushed {store.branch} to {remote}"
    raise AuditError(f"could not push {store.branch} to {remote}: it kept changing; try again")
