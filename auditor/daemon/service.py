"""The daemon's main loop: watch, gate, promote, detect drift, answer control requests, record.

Everything runs on one thread (the watchdog and HTTP threads only wake it), so decisions are
serialised and the state file has one writer. Each decision goes through an intent: written to the
state before anything visible happens, finished step by step (swap, epoch bump, runbook entry), then
cleared; a restart finishes an intent it finds instead of deciding again.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor.core.errors import AuditError
from auditor.daemon import epoch
from auditor.daemon.config import DaemonConfig
from auditor.daemon.fsio import write_durable
from auditor.daemon.gate import Gate, Preempted, Verdict, probe_isolation, reload_of
from auditor.daemon.layout import (
    Layout,
    LayoutError,
    ManifestSnapshot,
    manifest_digest,
    tree_manifest,
)
from auditor.daemon.lock import TreeLock, lock_path
from auditor.daemon.logs import JsonLog
from auditor.daemon.recorder import Recorder
from auditor.daemon.sources import Candidate, Source, make_source
from auditor.daemon.state import State, StateFile
from auditor.daemon.watcher import Debouncer, EventFilter, Watcher
from auditor.source.snapshot import FsSnapshot

HISTORY_LIMIT = 50
MEMORY_ENTRIES = 64
PRUNE_EVERY = 2000
PRUNE_OBJECTS_AFTER = 200
CACHE_BYTES = 64 * 1024 * 1024


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def host_name(cfg: DaemonConfig) -> str:
    from auditor.runbook.identity import resolve_host

    return " ".join((cfg.host or resolve_host()).split())[:200]


@dataclass
class Request:
    id: str
    action: str
    rev: str | None = None
    force: bool = False


class Daemon:
    def __init__(self, cfg: DaemonConfig, log: JsonLog | None = None) -> None:
        self.cfg = cfg
        self.log = log or JsonLog()
        self.layout = Layout(cfg.live, cfg.state_dir)
        self.gated = cfg.source.kind != "watch"
        self.statefile = StateFile(cfg.state_dir / "state.json")
        self.lock = TreeLock(lock_path(cfg.state_dir, cfg.live), cfg.live)
        self.stop = threading.Event()
        self.sync_now = threading.Event()
        self.host = host_name(cfg)
        self.state: State = State()
        self.metrics: Any = None
        self._server: Any = None
        self._watcher: Watcher | None = None
        self.source_events = Debouncer(cfg.debounce_ms / 1000)
        self.live_events = Debouncer(cfg.debounce_ms / 1000)
        self._forgotten = 0
        self.source: Source
        self.recorder: Recorder
        self.gate: Gate

    # -- set-up ---------------------------------------------------------------------------------

    def open(self) -> None:
        """Take the tree lock and load everything; AuditError with one line when that fails."""
        self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        self.layout.ensure_dirs()
        self.state = self.statefile.load()
        if self.gated:
            current = self.layout.live_release()
            if current is None or not self.layout.has_release(current):
                raise AuditError(
                    f"{self.cfg.live} is not a link to a release (run `kumo-audit daemon init` first)"
                )
            if self.state.live_release is None:
                self.state.live_release = current
        self._clean_leftovers()
        self.source = make_source(self.cfg)
        self.recorder = Recorder(self.cfg, self.source.repo, self.host)
        isolation = probe_isolation(self.cfg)
        self.gate = Gate(self.cfg, self.layout, _cache(self.cfg.state_dir), isolation)
        if self.state.validation != isolation:
            self.state.validation = isolation
            self.save()
        from auditor.daemon import metrics as metrics_mod

        self.metrics, self._server = metrics_mod.create(self.cfg.metrics.listen)
        self.metrics.set_drift(bool(self.state.drift))

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        if self._server is not None:
            server = self._server[0] if isinstance(self._server, tuple) else self._server
            with contextlib.suppress(Exception):
                server.shutdown()
                server.server_close()
        self.lock.release()

    def _clean_leftovers(self) -> None:
        live = self.cfg.live
        for leftover in live.parent.glob(f".{live.name}.kumo-audit-swap-*"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        self.recorder_repo_lock()

    def recorder_repo_lock(self) -> bool:
        """A runbook ref lock left by a killed writer would block every later entry: remove it."""
        repo = self.cfg.runbook.repo or (
            self.cfg.state_dir / "source"
            if self.cfg.source.kind == "pull"
            else self.cfg.source.repo
        )
        if repo is None or self.cfg.runbook.dir is not None:
            return False
        stale = Path(repo) / ".git" / "refs" / "heads" / f"{self.cfg.runbook.branch}.lock"
        if stale.exists() and time.time() - stale.stat().st_mtime > 2:
            stale.unlink(missing_ok=True)
            return True
        return False

    def save(self) -> None:
        self.statefile.save(self.state)

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()  # before the lock: `daemon sync` may signal as soon as it is held
        self.open()
        try:
            self._start_watching()
            self.log(
                "started",
                live=str(self.cfg.live),
                source=self.cfg.source.kind,
                release=self.state.live_release,
                host=self.host,
                pid=os.getpid(),
            )
            self.resume()
            self.warm_up()
            self.loop()
            if self.state.unpushed:  # a clean stop leaves no recorded decision only local
                self.push()
            self.log("stopped", reason="signal")
            return 0
        finally:
            self.close()

    def warm_up(self) -> None:
        """Audit what is live once, so the first change after a start is answered at full speed."""
        from auditor.change import audit_change

        started = time.monotonic()
        name = self.state.live_release
        if self.gated and name and (self.layout.manifests / f"{name}.json").is_file():
            snapshot = ManifestSnapshot(self.layout, name)
            with contextlib.suppress(Exception):  # a broken live tree is the gate's business
                audit_change(None, snapshot, self.gate.options())
        self.log("ready", warm_up_ms=round(1000 * (time.monotonic() - started), 1))

    def _install_signals(self) -> None:
        def stop(signum: int, frame: object) -> None:
            self.stop.set()
            self.source_events.wake.set()

        def sync(signum: int, frame: object) -> None:
            self.sync_now.set()
            self.source_events.wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, sync)

    def _start_watching(self) -> None:
        ignored = [self.cfg.state_dir]
        refs = [f"refs/heads/{self.cfg.runbook.branch}"]
        watcher = Watcher()
        for directory in self.source.watch_dirs:
            watcher.watch(directory, EventFilter(ignored, refs), self.source_events)
        if self.gated:
            releases = self.layout.releases
            live_filter = LiveFilter(self)
            watcher.watch(releases, live_filter, self.live_events)
        watcher.start()
        self._watcher = watcher

    def loop(self) -> None:
        cfg = self.cfg
        rescan_at = 0.0
        fetch_at = 0.0
        wake = self.source_events.wake
        while not self.stop.is_set():
            now = time.monotonic()
            self.answer_requests()
            if cfg.source.kind == "pull" and (now >= fetch_at or self.sync_now.is_set()):
                self.sync_now.clear()
                self.fetch()
                fetch_at = time.monotonic() + cfg.source.interval
                self.consider(time.monotonic())
            elif self.sync_now.is_set():
                self.sync_now.clear()
                self.consider(time.monotonic())
            first = self.source_events.due()
            if first is not None:
                if self._watcher is not None:
                    self._watcher.forget_moves()
                self.consider(first)
            live_first = self.live_events.due()
            if live_first is not None and self.gated:
                self.check_drift()
            if now >= rescan_at and self.source_events.quiet_for() >= self.source_events.quiet:
                if self.gated:
                    self.check_drift()
                self.consider(time.monotonic())
                rescan_at = time.monotonic() + cfg.rescan_interval
            if self.state.unpushed:
                self.push()
            wake.wait(self._sleep_for(rescan_at, fetch_at))
            wake.clear()

    def _sleep_for(self, rescan_at: float, fetch_at: float) -> float:
        now = time.monotonic()
        waits = [rescan_at - now, 1.0]
        if self.cfg.source.kind == "pull":
            waits.append(fetch_at - now)
        for debouncer in (self.source_events, self.live_events):
            if debouncer.pending:
                waits.append(debouncer.quiet - debouncer.quiet_for() + 0.005)
        if (self.cfg.state_dir / "requests").is_dir():
            waits.append(0.25)
        return max(0.005, min(waits))

    def fetch(self) -> None:
        try:
            self.source.fetch()
        except AuditError as exc:
            self.log("fetch-failed", level="warning", error=str(exc))

    # -- candidates -----------------------------------------------------------------------------

    def live_candidate(self) -> str | None:
        return (
            self.state.history[-1]["candidate"] if self.state.history else self.state.live_release
        )

    def consider(self, seen_at: float) -> None:
        try:
            candidate = self.source.current()
        except AuditError as exc:
            self.log("source-failed", level="warning", error=str(exc))
            return
        if candidate is None:
            return
        if candidate.id == self.live_candidate():
            if self.state.pending:
                self.state.pending = None
                self.save()
            return
        if candidate.id in self.state.seen or candidate.id in self.state.skip:
            return
        try:
            self.decide(candidate, seen_at)
        except Exception as exc:  # the gate fails closed: log, never promote, keep running
            self._failed(candidate, exc)

    def _failed(self, candidate: Candidate, exc: Exception) -> None:
        """A decision that could not be made: nothing was promoted; tried again on the next change."""
        self.log(
            "decision-failed",
            level="error",
            candidate=candidate.id,
            error=f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
        )
        self.state.pending = None
        self.state.remember(candidate.id, "failed")
        if self.state.intent is not None and self.state.intent.get("candidate") == candidate.id:
            return  # finished on restart
        self.save()

    def superseded_check(self, candidate: Candidate):  # type: ignore[no-untyped-def]
        """Whether a newer candidate (or a stop) pre-empts `candidate`: asked between the files and
        stages of its audit and while kumod --validate runs; the source is read at most every
        100 ms, and only once something changed."""
        answer = {"at": 0.0, "newer": False}

        def superseded() -> bool:
            if self.stop.is_set():
                return True
            if answer["newer"]:
                return True
            if not self.source_events.pending and not self.sync_now.is_set():
                return False
            now = time.monotonic()
            if now - answer["at"] < 0.1:
                return False
            answer["at"] = now
            try:
                newer = self.source.current()
            except AuditError:
                return False
            answer["newer"] = newer is not None and newer.id != candidate.id
            return bool(answer["newer"])

        return superseded

    def decide(
        self,
        candidate: Candidate,
        seen_at: float,
        *,
        action: str = "promoted",
        force: bool = False,
        restart_ok: bool = False,
    ) -> dict[str, Any] | None:
        self.state.pending = candidate.id
        self.save()  # status shows what is being checked
        self.log("checking", candidate=candidate.short, kind=candidate.kind)
        base = self.state.live_release
        try:
            verdict = self.gate.check(
                candidate,
                base,
                self.superseded_check(candidate) if action == "promoted" else (lambda: False),
                force=force,
                promote_as=action,
                restart_ok=restart_ok,
            )
        except Preempted as stopped:
            # no decision was made about it: what it changed reaches the runbook with the newer
            # candidate's decision (its commits are listed there)
            self.log(
                "preempted",
                candidate=candidate.short,
                during=str(stopped),
                after_ms=round(1000 * (time.monotonic() - seen_at), 1),
            )
            self.state.pending = None
            self.state.count("preempted")
            self.save()
            self.metrics.preempted()
            return None
        except (LayoutError, OSError) as exc:
            verdict = Verdict("blocked", False, reasons=[f"cannot stage the candidate: {exc}"])
        if verdict.promote and self.state.drift and self.cfg.drift == "block":
            verdict = Verdict(
                "blocked",
                False,
                report=verdict.report,
                reasons=[
                    f"the live tree has drifted from release {base}; promotions wait until it is resolved"
                ],
            )
            remember = "blocked-drift"
        else:
            remember = verdict.decision
        latency = time.monotonic() - seen_at
        self.log(
            "decided",
            decision=verdict.decision,
            candidate=candidate.id,
            latency_ms=round(1000 * latency, 1),
        )
        intent = self._intent(candidate, verdict, base, action, remember, latency)
        self.finish(intent, verdict=verdict)
        return intent

    def _intent(
        self,
        candidate: Candidate,
        verdict: Verdict,
        base: str | None,
        action: str,
        remember: str,
        latency: float,
    ) -> dict[str, Any]:
        decision_id = uuid.uuid4().hex[:16]
        release = None
        if verdict.promote:
            assert verdict.files is not None
            self.layout.materialise(candidate.id, verdict.files)
            release = candidate.id
        baseline = None
        if candidate.kind == "live":  # watch mode: the next change is audited from this state
            snapshot = candidate.open()
            try:
                files = {p: snapshot.read(p) for p in snapshot.files()}
            finally:
                snapshot.close()
            self.layout.store_manifest(candidate.id, files)
            baseline = candidate.id
        draft = self._draft(candidate, verdict, base)
        intents = self.cfg.state_dir / "intents"
        intents.mkdir(exist_ok=True)
        write_durable(intents / f"{decision_id}.pickle", pickle.dumps(draft), 0o600)
        intent = {
            "id": decision_id,
            "created": now_iso(),
            "decision": verdict.decision,
            "remember": remember,
            "candidate": candidate.id,
            "rev": candidate.rev,
            "kind": candidate.kind,
            "release": release,
            "previous": base,
            "bump": None,
            "needs_bump": bool(release) and self._changes_files(base, release),
            "recorded": None,
            "latency": round(latency, 4),
            "action": action,
            "reasons": verdict.reasons[:5],
            "baseline": baseline,
            "validation": verdict.validation,
        }
        self.state.intent = intent
        self.save()
        return intent

    def _changes_files(self, base: str | None, release: str) -> bool:
        if base is None:
            return True
        try:
            return self.layout.manifest(base) != self.layout.manifest(release)
        except LayoutError:
            return True

    def _draft(self, candidate: Candidate, verdict: Verdict, base: str | None) -> dict[str, Any]:
        """What the runbook entry says, apart from what promotion adds (bump result, release)."""
        from auditor.runbook.model import Change, ChangedFile, Rollback

        summary_lines = []
        report = verdict.report
        if report is not None:
            summary_lines = [
                f"{e.impact}: {e.element} ({e.path}:{e.line})" for e in report.change.elements
            ][:200]
        change = None
        commits: list[Any] = []
        base_rev = self._rev_of(base)
        repo = self.source.repo
        if candidate.kind == "commit" and repo is not None and candidate.rev:
            from auditor.runbook.gitinfo import change_from_git

            try:
                change, commits = change_from_git(repo, base_rev, candidate.rev, summary_lines)
            except Exception:
                change = None
            if self.source.subdir and change is not None:
                prefix = self.source.subdir.rstrip("/") + "/"
                change = change.model_copy(
                    update={"files": [f for f in change.files if f.path.startswith(prefix)]}
                )
        if change is None:
            before = ManifestSnapshot(self.layout, base).manifest if base else {}
            after = _manifest_of(candidate)
            files = [
                ChangedFile(
                    path=p,
                    status="added"
                    if p not in before
                    else "deleted"
                    if p not in after
                    else "modified",
                    before=before.get(p),
                    after=after.get(p),
                )
                for p in sorted(before.keys() | after.keys())
                if before.get(p) != after.get(p)
            ]
            change = Change(
                base=base_rev or base,
                head=candidate.rev if candidate.kind == "commit" else candidate.id,
                files=files,
                summary=summary_lines,
            )
        why_lines = list(verdict.reasons)
        if verdict.decision == "restart-required":
            held = not verdict.promote
            why_lines.append(
                ("held: not promoted until a restart window; " if held else "promoted; ")
                + f"apply with `{self.cfg.kumod.restart_command}`"
            )
        if candidate.kind == "dirty" and not candidate.promotable:
            why_lines.append(
                "uncommitted edits in the checkout: audited, not promoted (promote_dirty is off)"
            )
        rollback = None
        if base is not None:
            rollback = Rollback(
                last_good=base_rev or base, command=f"kumo-audit daemon rollback {base}"
            )
        return {
            "why": "\n".join(why_lines) or None,
            "commits": commits,
            "change": change,
            "findings": verdict.findings(),
            "validator": verdict.validator,
            "rollback": rollback,
            "reload": reload_of(verdict, {}),
        }

    def _rev_of(self, release: str | None) -> str | None:
        for item in reversed(self.state.history):
            if item.get("release") == release:
                return item.get("rev")
        return None

    # -- finishing a decision -------------------------------------------------------------------

    def finish(
        self, intent: dict[str, Any], *, verdict: Verdict | None = None, resumed: bool = False
    ) -> None:
        draft_path = self.cfg.state_dir / "intents" / f"{intent['id']}.pickle"
        with open(draft_path, "rb") as handle:
            draft = pickle.load(handle)
        release = intent.get("release")
        if release:
            if self.layout.live_release() != release:
                self.layout.swap(release)
            if intent["needs_bump"] and intent["bump"] is None:
                result = epoch.bump(
                    self.cfg.kumod.bump_url,
                    attempts=self.cfg.kumod.bump_attempts,
                    timeout=self.cfg.kumod.bump_timeout,
                    backoff=self.cfg.kumod.bump_backoff,
                    stopping=self.stop.is_set,
                )
                result.at = now_iso()
                intent["bump"] = result.as_dict()
                self.state.last_bump = intent["bump"]
                if not result.ok:
                    self.metrics.bump_failed()
                    self.log(
                        "epoch-bump-failed", level="error", url=result.url, errors=result.errors
                    )
                else:
                    self.log("epoch-bumped", url=result.url, attempts=result.attempts)
                self.save()
        entry_id = intent.get("recorded")
        if entry_id is None and resumed:
            entry_id = self.recorder.find(intent["id"], intent["created"])
        if entry_id is None:
            extra = {
                "decision": intent["id"],
                "host": self.host,
                "candidate": intent["candidate"],
                "release": release,
                "promoted": bool(release),
                "epoch_bump": intent.get("bump") if release else None,
                "restart_command": self.cfg.kumod.restart_command
                if intent["decision"] == "restart-required"
                else None,
                "drift_mode": self.cfg.drift if intent["decision"] == "drift-detected" else None,
                "validate": intent.get("validation"),
            }
            reload = dict(draft.pop("reload"))
            reload["daemon"] = {k: v for k, v in extra.items() if v is not None or k == "release"}
            if not intent.get("needs_bump") and release:
                reload["daemon"]["epoch_bump"] = {"skipped": "no file changed"}
            entry = self.recorder.record(intent["id"], intent["decision"], reload=reload, **draft)
            entry_id = entry.id
        self._finalise(intent, entry_id)
        with contextlib.suppress(OSError):
            draft_path.unlink()
        self.push()
        if release:
            self.prune()

    def _finalise(self, intent: dict[str, Any], entry_id: str) -> None:
        state = self.state
        at = now_iso()
        release = intent.get("release")
        if release:
            state.live_release = release
            state.live_rev = intent.get("rev") if intent.get("kind") == "commit" else None
            state.promoted_at = at
            state.history.append(
                {
                    "release": release,
                    "candidate": intent["candidate"],
                    "rev": state.live_rev,
                    "at": at,
                    "decision": intent["decision"],
                }
            )
            del state.history[:-HISTORY_LIMIT]
            state.held = None
            self.metrics.promoted(time.time())
        elif intent["decision"] == "restart-required":
            state.held = intent["candidate"]
        if intent["decision"] not in ("drift-detected",):
            state.remember(intent["candidate"], intent["remember"])
        if self.cfg.source.kind == "watch" and intent["decision"] != "drift-detected":
            state.history.append(
                {
                    "release": intent.get("baseline"),
                    "candidate": intent["candidate"],
                    "rev": None,
                    "at": at,
                    "decision": intent["decision"],
                }
            )
            del state.history[:-HISTORY_LIMIT]
            state.live_release = intent.get("baseline") or state.live_release
            self.forget_baselines()
        state.last_verdict = {
            "decision": intent["decision"],
            "candidate": intent["candidate"],
            "at": at,
            "entry": entry_id,
            "latency": intent.get("latency"),
            "reasons": intent.get("reasons") or [],
        }
        state.pending = None
        state.count(intent["decision"])
        state.intent = None
        state.unpushed = self.recorder.pushes
        self.save()
        self.metrics.verdict(intent["decision"])
        if intent.get("latency") is not None:
            self.metrics.observe_latency(intent["latency"])
        self.log(
            "verdict",
            decision=intent["decision"],
            candidate=intent["candidate"],
            release=release,
            entry=entry_id,
            latency_ms=round(1000 * intent["latency"], 1)
            if intent.get("latency") is not None
            else None,
            reasons=intent.get("reasons") or None,
        )

    def resume(self) -> None:
        intent = self.state.intent
        if intent is None:
            return
        self.log("resuming", decision=intent["decision"], candidate=intent["candidate"])
        draft_path = self.cfg.state_dir / "intents" / f"{intent['id']}.pickle"
        if not draft_path.exists():  # finished but not cleared: only the state is behind
            self.state.intent = None
            self.save()
            return
        self.finish(intent, resumed=True)

    def push(self) -> None:
        if not self.recorder.pushes:
            return
        error = self.recorder.push()
        if error:
            self.log("runbook-push-failed", level="warning", error=error)
            if not self.state.unpushed:
                self.state.unpushed = True
                self.save()
            return
        if self.state.unpushed:
            self.state.unpushed = False
            self.save()

    def prune(self) -> None:
        protect = {r for r in (self.state.live_release, self.layout.live_release()) if r}
        removed = self.layout.prune(self.cfg.keep_releases, protect)
        if removed:
            self.log("pruned", releases=removed)

    def forget_baselines(self) -> None:
        """Watch mode keeps the content of each state it audited from; only the recent ones stay
        (the history and the current one), so a long run does not fill the disk."""
        keep = {h.get("release") for h in self.state.history} | {self.state.live_release}
        forgotten = self.layout.forget_manifests("live-", keep)
        self._forgotten += forgotten
        if self._forgotten >= PRUNE_OBJECTS_AFTER:
            self._forgotten = 0
            self.layout.prune_objects()

    # -- drift ----------------------------------------------------------------------------------

    def check_drift(self) -> None:
        name = self.state.live_release
        if name is None or self.state.intent is not None:
            return
        release_dir = self.layout.release_dir(name)
        expected = self.layout.manifest(name)
        try:
            current = tree_manifest(release_dir)
            key = manifest_digest(current)
        except (LayoutError, OSError) as exc:
            current, key = None, f"unreadable:{exc}"
        if current == expected:
            if self.state.drift:
                self.log("drift-resolved", release=name)
                self.state.drift = None
                self.state.seen = {k: v for k, v in self.state.seen.items() if v != "blocked-drift"}
                self.save()
                self.metrics.set_drift(False)
            return
        if self.state.drift and self.state.drift.get("key") == key:
            return
        self.metrics.set_drift(True)
        self.record_drift(name, expected, current, key)

    def record_drift(
        self, name: str, expected: dict[str, str], current: dict[str, str] | None, key: str
    ) -> None:
        from auditor.change import audit_change
        from auditor.runbook.model import Change, ChangedFile

        seen_at = time.monotonic()
        files = []
        if current is not None:
            for path in sorted(expected.keys() | current.keys()):
                if expected.get(path) != current.get(path):
                    status = (
                        "added"
                        if path not in expected
                        else "deleted"
                        if path not in current
                        else "modified"
                    )
                    files.append(
                        ChangedFile(
                            path=path,
                            status=status,
                            before=expected.get(path),
                            after=current.get(path),
                        )
                    )
        report = None
        reasons = []
        try:
            snapshot = FsSnapshot(self.layout.release_dir(name))
            report = audit_change(
                ManifestSnapshot(self.layout, name, expected), snapshot, self.gate.options()
            )
        except Exception as exc:  # the drifted tree may be anything; the drift is recorded anyway
            reasons.append(f"cannot audit the drifted tree: {exc}")
        healed = None
        if self.cfg.drift == "heal":
            healed = self.heal(name, expected)
        summary = (
            [f"{e.impact}: {e.element} ({e.path}:{e.line})" for e in report.change.elements][:200]
            if report
            else []
        )
        action = {
            "warn": "warned",
            "block": "promotions blocked until resolved",
            "heal": f"healed: live restored to release content as {healed}",
        }[self.cfg.drift]
        reasons.insert(
            0, f"the live tree differs from release {name} in {len(files)} file(s); {action}"
        )
        verdict = Verdict("drift-detected", False, report=report, reasons=reasons)
        draft = {
            "why": "\n".join(reasons),
            "commits": [],
            "change": Change(
                base=self.state.live_rev or name, head=None, files=files, summary=summary
            ),
            "findings": report.findings if report else [],
            "validator": None,
            "rollback": None,
            "reload": reload_of(verdict, {}),
        }
        decision_id = uuid.uuid4().hex[:16]
        intents = self.cfg.state_dir / "intents"
        intents.mkdir(exist_ok=True)
        write_durable(intents / f"{decision_id}.pickle", pickle.dumps(draft), 0o600)
        self.state.drift = (
            None
            if healed
            else {
                "key": key,
                "since": now_iso(),
                "release": name,
                "files": [f.path for f in files][:50],
                "mode": self.cfg.drift,
            }
        )
        intent = {
            "id": decision_id,
            "created": now_iso(),
            "decision": "drift-detected",
            "remember": "drift-detected",
            "candidate": name,
            "rev": self.state.live_rev,
            "kind": "drift",
            "release": None,
            "previous": name,
            "bump": None,
            "needs_bump": False,
            "recorded": None,
            "latency": round(time.monotonic() - seen_at, 4),
            "action": "drift",
            "reasons": reasons[:5],
        }
        self.state.intent = intent
        self.save()
        self.finish(intent)
        if healed:
            self.metrics.set_drift(False)

    def heal(self, name: str, expected: dict[str, str]) -> str:
        """Restore the live tree to the release's content: a fresh copy, swapped in atomically."""
        base = name.split("~", 1)[0]
        n = 1
        while (self.layout.releases / f"{base}~heal{n}").exists():
            n += 1
        healed = f"{base}~heal{n}"
        self.layout.materialise_from_objects(healed, expected)
        self.layout.swap(healed)
        self.state.live_release = healed
        self.state.history.append(
            {
                "release": healed,
                "candidate": self.live_candidate(),
                "rev": self.state.live_rev,
                "at": now_iso(),
                "decision": "healed",
            }
        )
        del self.state.history[:-HISTORY_LIMIT]
        self.save()
        self.log("healed", release=healed, drifted=name)
        return healed

    # -- control requests (rollback) ------------------------------------------------------------

    def answer_requests(self) -> None:
        directory = self.cfg.state_dir / "requests"
        if not directory.is_dir():
            return
        for path in sorted(directory.glob("*.json")):
            if path.name.endswith(".result.json"):
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                request = Request(
                    id=path.stem,
                    action=data["action"],
                    rev=data.get("rev"),
                    force=bool(data.get("force")),
                )
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)
                continue
            result = self.handle(request)
            write_durable(directory / f"{request.id}.result.json", json.dumps(result).encode())
            path.unlink(missing_ok=True)

    def handle(self, request: Request) -> dict[str, Any]:
        if request.action == "sync":
            self.sync_now.set()
            return {"ok": True, "message": "sync requested"}
        if request.action == "rollback":
            return self.handle_rollback(request.rev, request.force)
        if request.action == "promote" and request.rev:
            return self.handle_promote(request.rev)
        return {"ok": False, "message": f"unknown request {request.action!r}"}

    def handle_rollback(self, rev: str | None, force: bool) -> dict[str, Any]:
        try:
            return self.rollback(rev, force)
        except AuditError as exc:
            return {"ok": False, "message": str(exc)}

    def handle_promote(self, rev: str) -> dict[str, Any]:
        """Promote a candidate held for a restart (the operator has a restart window now)."""
        try:
            if not self.gated:
                raise AuditError("a watch daemon does not promote")
            target = self._rollback_target(rev)
            manifest = self.layout.manifest(target) if self.layout.has_release(target) else None
            candidate = self._release_candidate(target, manifest)
            self.state.seen.pop(candidate.id, None)
            intent = self.decide(candidate, time.monotonic(), restart_ok=True)
        except AuditError as exc:
            return {"ok": False, "message": str(exc)}
        if intent is None:
            return {"ok": False, "message": "interrupted"}
        ok = bool(intent.get("release"))
        return {
            "ok": ok,
            "decision": intent["decision"],
            "release": intent.get("release"),
            "message": "; ".join(intent.get("reasons") or []),
        }

    def rollback(self, rev: str | None, force: bool) -> dict[str, Any]:
        if not self.gated:
            raise AuditError("a watch daemon has no releases to roll back to")
        target = self._rollback_target(rev)
        current = self.live_candidate()
        manifest = self.layout.manifest(target) if self.layout.has_release(target) else None
        candidate = self._release_candidate(target, manifest)
        seen_at = time.monotonic()
        # the source still offers what was live: do not promote it again until it changes
        if current and current not in self.state.skip:
            self.state.skip.append(current)
            del self.state.skip[:-20]
        try:
            source_now = self.source.current()
        except AuditError:
            source_now = None
        if source_now is not None and source_now.id not in self.state.skip:
            self.state.skip.append(source_now.id)
        self.state.seen.pop(candidate.id, None)
        intent = self.decide(candidate, seen_at, action="rolled-back", force=force)
        if intent is None:
            raise AuditError("rollback interrupted")
        ok = intent["decision"] == "rolled-back"
        return {
            "ok": ok,
            "decision": intent["decision"],
            "release": intent.get("release"),
            "message": "; ".join(intent.get("reasons") or []),
        }

    def _rollback_target(self, rev: str | None) -> str:
        if rev is None:
            live = self.live_candidate()
            for item in reversed(self.state.history[:-1]):
                if item["candidate"] != live and item.get("decision") != "healed":
                    return (
                        item["release"]
                        if self.layout.has_release(item["release"])
                        else item["candidate"]
                    )
            raise AuditError("no earlier release to roll back to")
        names = [n for n in self.layout.releases_by_age() if n.startswith(rev)]
        if len(names) == 1:
            return names[0]
        if self.source.repo is not None:
            return self.source.resolve(rev)
        raise AuditError(f"no release matches {rev!r}")

    def _release_candidate(self, target: str, manifest: dict[str, str] | None) -> Candidate:
        layout = self.layout
        if manifest is not None:
            rev = next(
                (h.get("rev") for h in reversed(self.state.history) if h["release"] == target), None
            )

            def open_release():  # type: ignore[no-untyped-def]
                return ManifestSnapshot(layout, target, manifest)

            return Candidate(
                id=target,
                kind="commit" if rev else "release",
                rev=rev,
                promotable=True,
                open=open_release,
            )
        return self.source.commit_candidate(target)


class LiveFilter(EventFilter):
    """Events inside the live release count; the daemon's own staging directories never do."""

    def __init__(self, daemon: Daemon) -> None:
        super().__init__([])
        self.daemon = daemon

    def counts(self, path: str) -> bool:
        name = self.daemon.state.live_release
        if not name:
            return False
        root = str(self.daemon.layout.releases / name)
        return path == root or path.startswith(root + os.sep)


def _manifest_of(candidate: Candidate) -> dict[str, str]:
    snapshot = candidate.open()
    try:
        return {p: snapshot.content_id(p) or "" for p in snapshot.files()}
    finally:
        snapshot.close()


def _cache(state_dir: Path):  # type: ignore[no-untyped-def]
    """The parse cache, kept under the state directory (a hardened unit has no home directory)."""
    from auditor import __version__
    from auditor.kumo.digest import api_table_digest
    from auditor.pipeline.cache import ANALYSIS_LAYERS, ContentCache, code_fingerprint

    # a small memory share: a long-running daemon sees endless versions of the same few files
    cache = ContentCache(state_dir / "cache", memory_entries=MEMORY_ENTRIES)
    version = f"{__version__}:{api_table_digest()}:{code_fingerprint(ANALYSIS_LAYERS)}"
    calls = [0]

    def cached(namespace: str, content_id: str, compute):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] % PRUNE_EVERY == 0:
            cache.prune(CACHE_BYTES)
        return cache.get_or_compute(namespace, content_id, version, compute)

    return cached
