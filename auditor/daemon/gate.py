"""The gate: audit a candidate as a change from the live release, optionally run `kumod --validate`
on it, and decide: promote, hold for a restart, accept without promoting, or block.

The audit is the pipeline's own `audit_change`, the same call the hook and CI make. Configuration
comes from the candidate. The gate fails closed: a candidate it cannot audit is blocked.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from auditor.change import ChangeResult, audit_change
from auditor.core.errors import AuditError
from auditor.core.findings import Finding, Severity, at_or_above
from auditor.daemon.config import DaemonConfig
from auditor.daemon.layout import Layout, ManifestSnapshot
from auditor.daemon.recorder import ValidatorDigest
from auditor.daemon.sources import Candidate
from auditor.pipeline import AuditOptions
from auditor.source.snapshot import Snapshot


class Preempted(Exception):
    """A newer candidate arrived while this one was being checked."""


@dataclass
class Verdict:
    decision: str  # promoted | restart-required | accepted | blocked
    promote: bool
    report: ChangeResult | None = None
    reasons: list[str] = field(default_factory=list)
    validator: ValidatorDigest | None = None
    files: dict[str, bytes] | None = None  # the candidate's files, when it is to be promoted

    @property
    def impact(self) -> str:
        if self.report is None:
            return "blocked"
        return "blocked" if self.decision == "blocked" else self.report.change.impact

    def findings(self) -> list[Finding]:
        if self.report is None:
            return []
        return self.report.introduced if self.decision == "blocked" else self.report.findings


class Gate:
    def __init__(
        self,
        cfg: DaemonConfig,
        layout: Layout,
        cached: Callable[[str, str, Callable[[], object]], object] | None,
    ) -> None:
        self.cfg = cfg
        self.layout = layout
        self.cached = cached

    def options(self) -> AuditOptions:
        """As everywhere: the configuration comes from the audited (head) snapshot."""
        return AuditOptions(entry=self.cfg.entry, cached=self.cached)

    def check(
        self,
        candidate: Candidate,
        base: str | None,
        superseded: Callable[[], bool] = lambda: False,
        *,
        force: bool = False,
        promote_as: str = "promoted",
        restart_ok: bool = False,
    ) -> Verdict:
        """Decide about `candidate` as a change from release `base` (None: nothing live yet)."""
        snapshot = candidate.open()
        try:
            return self._check(snapshot, candidate, base, superseded, force, promote_as, restart_ok)
        finally:
            snapshot.close()

    def _check(
        self,
        snapshot: Snapshot,
        candidate: Candidate,
        base: str | None,
        superseded: Callable[[], bool],
        force: bool,
        promote_as: str,
        restart_ok: bool,
    ) -> Verdict:
        problems = [f"{p.path}: {p.reason}" for p in snapshot.problems()]
        if problems:
            return Verdict("blocked", False, reasons=problems[:20])
        base_snapshot = ManifestSnapshot(self.layout, base) if base else None
        report: ChangeResult | None = None
        if not force:
            try:
                report = audit_change(base_snapshot, snapshot, self.options())
            except AuditError as exc:
                return Verdict("blocked", False, reasons=[f"cannot audit: {exc}"])
            if superseded():
                raise Preempted
            threshold = Severity.parse(self.cfg.fail_on)
            if at_or_above(report.introduced, threshold):
                return Verdict("blocked", False, report=report)
        files = self._files(snapshot) if candidate.promotable else None
        if isinstance(files, str):
            return Verdict("blocked", False, report=report, reasons=[files])
        validator = None
        if self.cfg.kumod.binary is not None and not force:
            name = None
            if files is not None:
                self.layout.materialise(candidate.id, files)
                name = candidate.id
            validator = self._validate(name, report, superseded)
            if validator is not None and validator.exit_code != 0:
                return Verdict(
                    "blocked",
                    False,
                    report=report,
                    validator=validator,
                    reasons=[f"kumod --validate failed (exit status {validator.exit_code})"],
                )
        impact = report.change.impact if report is not None else "epoch"
        if impact == "restart":
            promote = candidate.promotable and (self.cfg.on_restart == "promote" or restart_ok)
            return Verdict("restart-required", promote, report, validator=validator, files=files)
        if not candidate.promotable:
            return Verdict("accepted", False, report, validator=validator)
        return Verdict(promote_as, True, report, validator=validator, files=files)

    def _files(self, snapshot: Snapshot) -> dict[str, bytes] | str:
        files: dict[str, bytes] = {}
        try:
            for path in snapshot.files():
                files[path] = snapshot.read(path)
        except Exception as exc:  # FileNotFoundError, FileProblem: the tree moved or is unusable
            return f"cannot read the candidate: {exc}"
        return files

    def _validate(
        self, release: str | None, report: ChangeResult | None, superseded: Callable[[], bool]
    ) -> ValidatorDigest | None:
        """Run kumod --validate against the materialised candidate; its exit status and output digest."""
        if release is None:
            return None
        entry = report.head.entry if report is not None else "init.lua"
        policy = self.layout.release_dir(release) / entry
        binary = str(self.cfg.kumod.binary)
        args = [a.replace("{policy}", str(policy)) for a in self.cfg.kumod.validate_args]
        command = " ".join([binary, *args])
        try:
            proc = subprocess.Popen(
                [binary, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(self.layout.release_dir(release)),
            )
        except OSError as exc:
            digest = hashlib.sha256(str(exc).encode()).hexdigest()
            return ValidatorDigest(exit_code=127, output_sha256=digest, command=command)
        deadline = time.monotonic() + self.cfg.kumod.validate_timeout
        while True:
            try:
                out, _ = proc.communicate(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                pass
            if superseded():
                proc.kill()
                proc.communicate()
                raise Preempted from None
            if time.monotonic() > deadline:
                proc.kill()
                out, _ = proc.communicate()
                digest = hashlib.sha256(out or b"").hexdigest()
                return ValidatorDigest(exit_code=124, output_sha256=digest, command=command)
        return ValidatorDigest(
            exit_code=proc.returncode or 0,
            output_sha256=hashlib.sha256(out or b"").hexdigest(),
            command=command,
        )


def reload_of(verdict: Verdict, extra: dict[str, Any]) -> dict[str, Any]:
    reload = (
        verdict.report.change.reload_dict()
        if verdict.report is not None
        else {"impact": "blocked" if verdict.decision == "blocked" else "epoch", "elements": []}
    )
    if verdict.decision == "blocked":
        reload["impact"] = "blocked"
    reload["daemon"] = extra
    return reload
