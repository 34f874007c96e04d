"""`runbook verify`: re-derive every entry, signature, writer chain and checkpoint; name what is wrong.

Per file: the name must follow the entry pattern (`forged` otherwise), the record must parse and
validate (`unreadable`/`invalid`), its hash and id must match its content (`edited`), its name must
be the one the record implies (`renamed`), and the bytes must equal a fresh rendering of the record
(`prose-edited`: the Markdown around the record was changed).
Signatures: a signature must verify over the entry's hash (`bad-signature`), with a key of the allowed
signers file (`unknown-signer`) that is allowed for the entry's writer (`wrong-signer`); an unsigned
entry is `unsigned` with `require_signed`, and always after a signed entry of the same writer.
Per writer chain: every `prev_hash` must name an entry of the same writer (`deleted` when it names
nothing, `forged` when another writer), a writer has one first entry and no entry has two successors
(`forged`; older per-host writer ids are allowed to fork), and `recorded_at` never goes backwards
along the chain (`reordered`).
Checkpoints: every chain head a checkpoint names must still exist with the same hash and writer, at
the same chain length (`checkpoint`): a rewritten or cut chain loses the head the checkpoint signed.
For a Git store, the branch history must only ever add entry files (`history`: an entry was changed or
deleted by a later commit, which also catches deleting the newest entry of a chain).

Incremental: after a clean verify of a Git store, the verified state (the branch commit, every entry's
blob id and chain facts) is kept in the Git directory with its own digest. The next verify checks that
state (digest, tool and template version, allowed signers, and that the verified commit is an ancestor
of the branch with every verified entry file unchanged) and then only the entries and commits added
since; anything unexpected falls back to a full verify, as `full=True` does. A full verify re-derives
every hash, chain link, signature and checkpoint; the byte-exact comparison of a file with its fresh
rendering is remembered per blob id (content-addressed: an edited file has a new id).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from auditor import __version__
from auditor.runbook.canonical import ENTRY_NAME_RE, entry_path, hash_body
from auditor.runbook.identity import LEGACY_WRITER_RE
from auditor.runbook.markdown import (
    MARKER,
    TEMPLATES,
    TEMPLATES_DIR,
    EntryFormatError,
    parse_entry_file,
    render_entry,
)
from auditor.runbook.signing import AllowedSigners, Checker, load_allowed_signers, message
from auditor.runbook.store import ENTRIES_DIR, GitStore, Store, StoreState, _atomic_write
from auditor.source.git import git, is_ancestor

if TYPE_CHECKING:
    from auditor.runbook.model import Entry

STATE_VERSION = 1
_RECORD_START = f"\n{MARKER}\n```json\n"
_SIGNATURE_PROBLEMS = {
    "bad": "bad-signature",
    "unknown-signer": "unknown-signer",
    "wrong-signer": "wrong-signer",
}


@dataclass(frozen=True, slots=True)
class Problem:
    kind: (
        str  # edited | prose-edited | renamed | deleted | reordered | forged | unreadable | invalid
    )
    # | history | unsigned | bad-signature | unknown-signer | wrong-signer | checkpoint
    name: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "detail": self.detail}


@dataclass
class Facts:
    """What the chain, signature and checkpoint checks need to know of one entry."""

    name: str
    id: str
    hash: str
    prev_hash: str | None
    writer: str
    recorded_at: str
    supersedes: str | None = None
    signature: str = ""  # "" (unsigned) | good | bad | unknown-signer | wrong-signer | unchecked
    signer: str = ""  # key fingerprint
    principals: str = ""
    checkpoint: dict[str, list[Any]] | None = None  # writer -> [head hash, chain length]
    checkpoint_entries: int = 0


@dataclass
class VerifyReport:
    entries: int = 0
    writers: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signed: int = 0
    checked: int = (
        0  # entries whose files were checked in this run (all of them unless incremental)
    )
    incremental: bool = False
    allowed_signers: str | None = None
    facts: dict[str, Facts] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def latest_checkpoint(self) -> Facts | None:
        points = [f for f in self.facts.values() if f.checkpoint is not None]
        return max(points, key=lambda f: (f.recorded_at, f.name)) if points else None

    def checkpoints(self) -> int:
        return sum(1 for f in self.facts.values() if f.checkpoint is not None)

    def as_dict(self) -> dict[str, Any]:
        latest = self.latest_checkpoint()
        return {
            "ok": self.ok,
            "entries": self.entries,
            "writers": self.writers,
            "signed": self.signed,
            "checkpoints": self.checkpoints(),
            "latest_checkpoint": checkpoint_summary(latest) if latest else None,
            "incremental": self.incremental,
            "checked": self.checked,
            "allowed_signers": self.allowed_signers,
            "problems": [p.as_dict() for p in self.problems],
            "notes": list(self.notes),
        }


def checkpoint_summary(facts: Facts) -> dict[str, Any]:
    return {
        "id": facts.id,
        "hash": facts.hash,
        "name": facts.name,
        "writer": facts.writer,
        "recorded_at": facts.recorded_at,
        "entries": facts.checkpoint_entries,
        "signature": facts.signature or "unsigned",
        "signer": facts.signer,
        "heads": {w: {"hash": h, "entries": n} for w, (h, n) in (facts.checkpoint or {}).items()},
    }


def verify_store(
    store: Store,
    *,
    allowed: AllowedSigners | Literal["auto"] | None = "auto",
    require_signed: bool = False,
    full: bool = False,
    repo: Path | None = None,
    expect_checkpoints: tuple[str, ...] = (),
    accept_rewrite: bool = False,
) -> VerifyReport:
    """Verify `store`. `allowed` is the allowed signers ("auto": the configured or committed file of
    `repo`, or of the store's repository); `full` ignores the last verified state for the entries.
    Whatever `full` says, a Git branch must still hold the last commit this clone verified, unless
    `accept_rewrite` (a deliberate restart of the runbook)."""
    if allowed == "auto":
        allowed = load_allowed_signers(
            repo or (store.repo if isinstance(store, GitStore) else None)
        )
    state = store.state()
    report = VerifyReport(entries=len(state.names))
    if isinstance(store, GitStore) and state.token is None:
        report.notes.append(
            f"branch {store.branch} does not exist in {store.repo}: there are no entries to verify "
            f"(fetch it first if the runbook is kept on a remote: git fetch REMOTE "
            f"{store.branch}:{store.branch})"
        )
    report.allowed_signers = allowed.source if allowed is not None else None
    policy = _policy(allowed, require_signed)
    git_store = store if isinstance(store, GitStore) else None
    cache = _Cache(git_store) if git_store is not None else None
    kept = cache.sealed() if cache is not None else None  # read once: rewind check and reuse
    verified = _last_verified(kept)
    held = verified is None or (git_store is not None and _holds(git_store, state, verified[0]))
    previous = None if full or kept is None or not held else _Cache.applicable(kept, policy)
    old: dict[str, Facts] = {}
    since: str | None = None
    if previous is not None and isinstance(store, GitStore):
        usable = _usable_state(state, previous)
        if usable:
            old = {row[0]: Facts(*row) for row in previous["facts"]}
            since = previous["commit"]
            report.incremental = True
    new_names = sorted(n for n in state.names if n not in old)
    checker = Checker(allowed)
    ok_blobs = cache.load_rendered() if cache is not None else set()
    fresh_ok: set[str] = set()
    facts: dict[str, Facts] = dict(old)
    data = store.read(state, new_names)
    for name in new_names:
        oid = state.names.get(name, "")
        known = bool(oid) and oid in ok_blobs
        found = _check_file(name, data[name], report.problems, known, checker)
        if found is not None:
            facts[name] = found
            if oid and not known and not any(p.name == name for p in report.problems):
                fresh_ok.add(oid)
    del data
    report.checked = len(new_names)
    report.facts = facts
    _check_signatures(facts, report, require_signed, allowed is not None)
    _check_chains(facts, report)
    _check_checkpoints(facts, report, expect_checkpoints)
    if git_store is not None and verified is not None and not held and not accept_rewrite:
        _report_rewound(git_store, state, verified, report)
    if isinstance(store, GitStore) and state.token:
        _check_history(store, state.token, report, since)
    report.problems.sort(key=lambda p: (p.name, p.kind, p.detail))
    if cache is not None:
        if fresh_ok:
            cache.save_rendered(ok_blobs | fresh_ok)
        unchanged = report.incremental and not new_names and since == state.token
        if report.ok and state.token and not unchanged:
            cache.save_state(policy, state, facts)
        elif report.ok and state.token is None and accept_rewrite:
            cache.forget_state()  # the branch is gone on purpose: nothing verified to hold to
    return report


# --- files ---------------------------------------------------------------------------------------


def _check_file(
    name: str, blob: bytes, problems: list[Problem], known: bool, checker: Checker
) -> Facts | None:
    if not ENTRY_NAME_RE.match(name):
        problems.append(
            Problem(
                "forged",
                name,
                "not a runbook entry name (entries/YYYY/MM/<time>-<decision>-<id>.md)",
            )
        )
        return None
    record = _record_of(blob) if known else None
    if record is None:
        entry = _full_file_check(name, blob, problems)
        if entry is None:
            return None
        record = entry.record()
        digest = entry.hash
        edited = any(p.name == name and p.kind == "edited" for p in problems)
    else:
        # This exact blob was checked before (valid, canonical rendering): recompute its hash.
        body = {k: v for k, v in record.items() if k not in ("id", "hash", "signature")}
        digest = hash_body(body)
        edited = digest != record["hash"]
        if edited:
            problems.append(Problem("edited", name, "record content does not match its hash"))
        expected = entry_path(record["decided_at"], record["decision"], record["id"])
        if expected != name:
            problems.append(Problem("renamed", name, f"the record belongs in {expected}"))
    facts = _facts(name, record)
    if record.get("signature") and not edited:
        result = checker.check(record["signature"], message(digest), facts.writer)
        facts.signature, facts.signer = result.status, result.fingerprint
        facts.principals = result.principals
        kind = _SIGNATURE_PROBLEMS.get(result.status)
        if kind:
            problems.append(Problem(kind, name, result.detail))
    return facts


def _record_of(blob: bytes) -> dict[str, Any] | None:
    """The machine record of a file already known to be a canonical entry file."""
    try:
        text = blob.decode("utf-8")
        start = text.rindex(_RECORD_START) + len(_RECORD_START)
        record = json.loads(text[start : len(text) - len("\n```\n")])
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in _FAST_KEYS):
        return None  # not what was checked before: check it in full
    return record


_FAST_KEYS = ("id", "hash", "writer", "recorded_at", "decided_at", "decision")


def _full_file_check(name: str, blob: bytes, problems: list[Problem]) -> Entry | None:
    from pydantic import ValidationError

    from auditor.runbook.model import Entry

    try:
        parsed = parse_entry_file(blob)
    except EntryFormatError as exc:
        problems.append(Problem("unreadable", name, str(exc)))
        return None
    try:
        entry = Entry.model_validate(parsed.record)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "record"
        problems.append(Problem("invalid", name, f"record field {where}: {error['msg']}"))
        return None
    computed = entry.computed_hash()
    if computed != entry.hash or entry.id != entry.hash[: len(entry.id)]:
        problems.append(
            Problem("edited", name, f"record content does not match its hash {entry.hash[:16]}")
        )
        return entry
    expected = entry.file_name()
    if expected != name:
        problems.append(Problem("renamed", name, f"the record belongs in {expected}"))
    rendered = render_entry(entry)
    if rendered != blob:
        problems.append(
            Problem(
                "prose-edited",
                name,
                f"Markdown differs from its record at line {_first_diff(rendered, blob)}",
            )
        )
    return entry


def _facts(name: str, record: dict[str, Any]) -> Facts:
    point = record.get("checkpoint")
    return Facts(
        name=name,
        id=record["id"],
        hash=record["hash"],
        prev_hash=record.get("prev_hash"),
        writer=record["writer"],
        recorded_at=record["recorded_at"],
        supersedes=record.get("supersedes"),
        checkpoint=(
            {w: [h["hash"], h["entries"]] for w, h in point["heads"].items()} if point else None
        ),
        checkpoint_entries=point["entries"] if point else 0,
    )


def _first_diff(a: bytes, b: bytes) -> int:
    for number, (x, y) in enumerate(zip(a.split(b"\n"), b.split(b"\n"), strict=False), start=1):
        if x != y:
            return number
    return min(a.count(b"\n"), b.count(b"\n")) + 1


# --- signatures, chains, checkpoints -------------------------------------------------------------


def _check_signatures(
    facts: dict[str, Facts], report: VerifyReport, require_signed: bool, have_allowed: bool
) -> None:
    by_hash = {f.hash: f for f in facts.values()}
    unchecked = 0
    for f in facts.values():
        if f.signature:
            report.signed += 1
            unchecked += f.signature == "unchecked"
            continue
        if require_signed:
            report.problems.append(Problem("unsigned", f.name, "the entry is not signed"))
            continue
        prev = by_hash.get(f.prev_hash) if f.prev_hash else None
        if prev is not None and prev.signature and prev.writer == f.writer:
            report.problems.append(
                Problem(
                    "unsigned",
                    f.name,
                    f"not signed, after a signed entry ({prev.name}) of writer {f.writer}",
                )
            )
    if unchecked and not have_allowed:
        report.notes.append(
            f"{unchecked} signed entries: signatures are intact, but no allowed signers file says "
            f"who may sign (commit one at .kumo-audit/allowed_signers or pass --allowed-signers)"
        )


def _check_chains(entries: dict[str, Facts], report: VerifyReport) -> None:
    problems = report.problems
    by_hash: dict[str, str] = {}
    for name, entry in entries.items():
        if entry.hash in by_hash:
            problems.append(Problem("forged", name, f"same hash as {by_hash[entry.hash]}"))
            continue
        by_hash[entry.hash] = name
    writers: set[str] = set()
    successors: dict[tuple[str, str | None], list[str]] = {}
    known_ids = {e.id for e in entries.values()}
    for name, entry in entries.items():
        writers.add(entry.writer)
        successors.setdefault((entry.writer, entry.prev_hash), []).append(name)
        if entry.supersedes and entry.supersedes not in known_ids:
            problems.append(
                Problem("deleted", name, f"supersedes entry {entry.supersedes}, which is missing")
            )
        if entry.prev_hash is None:
            continue
        prev_name = by_hash.get(entry.prev_hash)
        if prev_name is None:
            problems.append(
                Problem(
                    "deleted",
                    name,
                    f"previous entry {entry.prev_hash[:16]} of writer {entry.writer} is missing",
                )
            )
            continue
        prev = entries[prev_name]
        if prev.writer != entry.writer:
            problems.append(
                Problem("forged", name, f"links to {prev_name}, an entry of writer {prev.writer}")
            )
        elif prev.recorded_at > entry.recorded_at:
            problems.append(
                Problem(
                    "reordered",
                    name,
                    f"recorded {entry.recorded_at}, before its predecessor {prev_name} ({prev.recorded_at})",
                )
            )
    shared: set[str] = set()
    for (writer, prev_hash), names in successors.items():
        if len(names) < 2:
            continue
        if LEGACY_WRITER_RE.match(writer):
            # Older tools gave every clone of one host the same writer id: its chains may fork.
            shared.add(writer)
            continue
        ordered = sorted(names, key=lambda n: (entries[n].recorded_at, n))
        what = (
            "first entries"
            if prev_hash is None
            else f"successors of {by_hash.get(prev_hash, prev_hash[:16])}"
        )
        for extra in ordered[1:]:
            problems.append(
                Problem("forged", extra, f"writer {writer} has several {what}: also {ordered[0]}")
            )
    report.writers = len(writers)
    for writer in sorted(shared):
        report.notes.append(
            f"writer id {writer} (older per-host form) was shared by several stores; "
            "each of its chains verified on its own"
        )


def chain_length(facts_by_hash: dict[str, Facts], head: str, limit: int) -> int:
    """Entries from `head` back to the first entry of its chain (stops after `limit` steps)."""
    count, current = 0, facts_by_hash.get(head)
    while current is not None and count <= limit:
        count += 1
        current = facts_by_hash.get(current.prev_hash) if current.prev_hash else None
    return count


def _check_checkpoints(
    facts: dict[str, Facts], report: VerifyReport, expect: tuple[str, ...]
) -> None:
    by_hash = {f.hash: f for f in facts.values()}
    for point in sorted(
        (f for f in facts.values() if f.checkpoint is not None), key=lambda f: f.name
    ):
        for writer, (head, length) in sorted((point.checkpoint or {}).items()):
            found = by_hash.get(head)
            if found is None:
                report.problems.append(
                    Problem(
                        "checkpoint",
                        point.name,
                        f"covered {length} entries of writer {writer} up to {head[:16]}, which is "
                        "missing or changed (the chain was rewritten or cut)",
                    )
                )
            elif found.writer != writer:
                report.problems.append(
                    Problem(
                        "checkpoint",
                        point.name,
                        f"names {found.name} as the head of writer {writer}, "
                        f"but it belongs to {found.writer}",
                    )
                )
            elif (now := chain_length(by_hash, head, length)) != length:
                report.problems.append(
                    Problem(
                        "checkpoint",
                        point.name,
                        f"covered {length} entries of writer {writer} up to {found.name}; "
                        f"{now} are there now",
                    )
                )
    for wanted in expect:
        wanted = wanted.strip().lower()
        hits = [f for f in facts.values() if f.checkpoint is not None and f.hash.startswith(wanted)]
        if len(wanted) < 8 or not hits:
            report.problems.append(
                Problem("checkpoint", wanted, "the expected checkpoint is not in the runbook")
            )


def _check_history(
    store: GitStore, head: str, report: VerifyReport, since: str | None = None
) -> None:
    """Entry files must only ever be added on the branch: list later changes and deletions."""
    revs = [head, f"^{since}"] if since else [head]
    out = git(
        store.repo,
        "log",
        "--format=%x01%H",
        "--name-status",
        "--no-renames",
        "--diff-merges=first-parent",
        "--diff-filter=MDT",
        *revs,
        "--",
        f"{ENTRIES_DIR}/",
    )
    commit = ""
    for line in out.splitlines():
        if line.startswith("\x01"):
            commit = line[1:]
        elif "\t" in line:
            status, path = line.split("\t", 1)
            verb = "deleted" if status == "D" else "changed"  # M or T: the filter lists no other
            report.problems.append(
                Problem("history", path, f"{verb} after it was written, in commit {commit[:12]}")
            )


def _holds(store: GitStore, state: StoreState, commit: str) -> bool:
    """Whether the branch still holds `commit` (its head or an ancestor of it)."""
    if state.token is None:
        return False
    return commit == state.token or is_ancestor(store.repo, commit, state.token)


def _report_rewound(
    store: GitStore, state: StoreState, verified: tuple[str, int], report: VerifyReport
) -> None:
    """Entries are only ever added: a branch that no longer holds the commit this clone verified
    last was reset, rewritten or deleted, which removes entries without touching the ones left (so
    the hash chains alone still verify). Checkpoints kept elsewhere prove the same to anyone."""
    commit, entries = verified
    where = "is gone" if state.token is None else f"no longer holds commit {commit[:12]}"
    report.problems.append(
        Problem(
            "history",
            store.branch,
            f"the branch {where}; this clone verified it last at commit {commit[:12]} with "
            f"{entries} entries: entries were removed or the branch was rewritten (if the runbook "
            "was restarted on purpose, verify once with --accept-rewrite)",
        )
    )


# --- the verified state --------------------------------------------------------------------------


def _policy(allowed: AllowedSigners | None, require_signed: bool) -> dict[str, Any]:
    """Everything besides the entries that a verified state depends on."""
    return {
        "version": STATE_VERSION,
        "tool": __version__,
        "template": _template_digest(),
        "allowed": allowed.digest if allowed is not None else None,
        "require_signed": require_signed,
    }


def _template_digest() -> str:
    """Digest of the entry templates: a file rendered by other templates is checked again."""
    texts = [(TEMPLATES_DIR / name).read_bytes() for name in sorted(TEMPLATES.values())]
    return hashlib.sha256(b"".join(texts)).hexdigest()


def _last_verified(kept: dict[str, Any] | None) -> tuple[str, int] | None:
    """(commit, entries) of a kept state, whatever policy it was verified under."""
    kept = kept or {}
    commit, blobs = kept.get("commit"), kept.get("blobs")
    if not isinstance(commit, str) or not isinstance(blobs, dict):
        return None
    return commit, len(blobs)


def _usable_state(state: StoreState, previous: dict[str, Any]) -> bool:
    """Every verified entry file is unchanged (the caller made sure the branch holds the verified
    commit)."""
    if not state.token or not isinstance(previous.get("commit"), str):
        return False
    blobs = previous.get("blobs")
    if not isinstance(blobs, dict) or set(blobs) != {row[0] for row in previous["facts"]}:
        return False
    return all(state.names.get(name) == oid for name, oid in blobs.items())


def remember_canonical(store: GitStore, files: list[bytes]) -> None:
    """Note that these entry files were rendered from validated records (by `record`), so a later
    verify checks their hashes, chains and signatures without rendering them again. Appended: the
    cost of recording an entry does not grow with the runbook."""
    from auditor.source.snapshot import git_blob_id

    _Cache(store).append_rendered({git_blob_id(data) for data in files})


def _row(facts: Facts) -> list[Any]:
    return [getattr(facts, name) for name in _FIELD_NAMES]


_FIELD_NAMES = tuple(f.name for f in fields(Facts))


class _Cache:
    """The verified state and the set of blob ids known to be canonical entry files."""

    def __init__(self, store: GitStore) -> None:
        self.state_path = store.private / "verified.json"
        self.rendered_path = store.private / "rendered.txt"

    def sealed(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none or it is damaged or edited."""
        try:
            header, _, payload = self.state_path.read_bytes().partition(b"\n")
        except OSError:
            return None
        if header != b"kumo-audit-verified " + hashlib.sha256(payload).hexdigest().encode():
            return None
        try:
            data = json.loads(payload)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def applicable(data: dict[str, Any], policy: dict[str, Any]) -> dict[str, Any] | None:
        """The sealed state `data` when it was verified under `policy`, else None."""
        kept = data.get("policy")
        if not isinstance(kept, dict):
            return None
        # A state verified with --require-signed also stands for a verify without it.
        if {**kept, "require_signed": policy["require_signed"]} != policy or (
            policy["require_signed"] and not kept.get("require_signed")
        ):
            return None
        rows = data.get("facts")
        width = len(fields(Facts))
        if not isinstance(rows, list) or not all(
            isinstance(r, list) and len(r) == width for r in rows
        ):
            return None
        return data

    def last_verified(self) -> tuple[str, int] | None:
        """(commit, entries) of the last verified state, whatever policy it was verified under."""
        return _last_verified(self.sealed())

    def forget_state(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()

    def save_state(
        self, policy: dict[str, Any], state: StoreState, facts: dict[str, Facts]
    ) -> None:
        data = {
            "policy": policy,
            "commit": state.token,
            "blobs": {name: state.names[name] for name in facts},
            "facts": [_row(f) for f in facts.values()],
        }
        payload = json.dumps(data, separators=(",", ":")).encode()
        header = b"kumo-audit-verified " + hashlib.sha256(payload).hexdigest().encode()
        with contextlib.suppress(OSError):
            _atomic_write(self.state_path, header + b"\n" + payload)

    def load_rendered(self) -> set[str]:
        """Blob ids known to be canonical: a key line (tool and template version), then one id a
        line; a file written for another key counts for nothing."""
        try:
            lines = self.rendered_path.read_text(encoding="ascii").split("\n")
        except (OSError, ValueError):
            return set()
        if not lines or lines[0] != self._key():
            return set()
        return {line for line in lines[1:] if len(line) in (40, 64)}

    def save_rendered(self, blobs: set[str]) -> None:
        text = "\n".join([self._key(), *sorted(blobs)]) + "\n"
        with contextlib.suppress(OSError):
            _atomic_write(self.rendered_path, text.encode("ascii"))

    def append_rendered(self, blobs: set[str]) -> None:
        try:
            with open(self.rendered_path, "rb") as handle:
                current = handle.readline().rstrip(b"\n").decode("ascii", "replace") == self._key()
        except OSError:
            current = False
        if not current:
            self.save_rendered(blobs)
            return
        with contextlib.suppress(OSError), open(self.rendered_path, "a", encoding="ascii") as out:
            out.write("".join(f"{blob}\n" for blob in sorted(blobs)))

    @staticmethod
    def _key() -> str:
        return f"{__version__}:{_template_digest()}"
