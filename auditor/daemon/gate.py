"""The gate: audit a candidate as a change from the live release, optionally run `kumod --validate`
on it, and decide: promote, hold for a restart, accept without promoting, or block.

The audit is the pipeline's own `audit_change`, the same call the hook and CI make. Configuration
comes from the candidate. The gate fails closed: a candidate it cannot audit is blocked.

`kumod --validate` reads the candidate's entry file, but a policy may name files by absolute path
under the live path (`/opt/kumomta/etc/policy/shaping.toml`), which shows the live release, not the
candidate. Where the host allows it (`unshare --user --map-root-user --mount`, probed at start), the
validation runs in a private mount namespace in which the live path is bind-mounted to the
candidate, so every path under it shows the candidate. Where it does not, the decision records that
the validation saw the live files, with the live paths the candidate names.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
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


class Preempted(BaseException):
    """A newer candidate arrived while this one was being checked. A BaseException, as
    KeyboardInterrupt is: no handler inside the audit may turn it into a result (which would then
    be cached as the content's)."""


@dataclass
class Verdict:
    decision: str  # promoted | restart-required | accepted | blocked
    promote: bool
    report: ChangeResult | None = None
    reasons: list[str] = field(default_factory=list)
    validator: ValidatorDigest | None = None
    files: dict[str, bytes] | None = None  # the candidate's files, when it is to be promoted
    validation: dict[str, Any] | None = None  # how kumod --validate saw the live path

    @property
    def impact(self) -> str:
        if self.report is None:
            return "blocked"
        return "blocked" if self.decision == "blocked" else self.report.change.impact

    def findings(self) -> list[Finding]:
        if self.report is None:
            return []
        return self.report.introduced if self.decision == "blocked" else self.report.findings


ISOLATION_COMMAND = ("--user", "--map-root-user", "--mount")
_BIND_AND_RUN = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'


def probe_isolation(cfg: DaemonConfig) -> dict[str, str]:
    """How `kumod --validate` will see the live path: {"isolation": "namespace" | "none" | "off",
    "detail": why}. AuditError when the configuration requires a namespace the host cannot give."""
    if cfg.kumod.binary is None:
        return {"isolation": "off", "detail": "no kumod binary configured"}
    if cfg.kumod.validate_isolation == "none":
        return {"isolation": "none", "detail": "validate_isolation = none"}
    unshare = shutil.which("unshare")
    if unshare is None:
        reason = "unshare is not installed"
    else:
        probe = str(cfg.state_dir)
        try:
            proc = subprocess.run(
                [
                    unshare,
                    *ISOLATION_COMMAND,
                    "sh",
                    "-c",
                    _BIND_AND_RUN,
                    "sh",
                    probe,
                    probe,
                    "true",
                ],
                capture_output=True,
                text=True,
                timeout=10,
                stdin=subprocess.DEVNULL,
            )
            ok, reason = proc.returncode == 0, " ".join(proc.stderr.split())[:200]
        except (OSError, subprocess.TimeoutExpired) as exc:
            ok, reason = False, str(exc)
        if ok:
            return {"isolation": "namespace", "detail": "unshare " + " ".join(ISOLATION_COMMAND)}
        reason = f"unshare failed: {reason or 'no reason given'}"
    if cfg.kumod.validate_isolation == "namespace":
        raise AuditError(
            f"validate_isolation = namespace, but no private mount namespace: {reason}"
        )
    return {"isolation": "none", "detail": reason}


def live_references(cfg: DaemonConfig, files: dict[str, bytes]) -> list[str]:
    """Absolute paths under the live path that the candidate's files name (first 20, sorted)."""
    roots = {os.path.normpath(str(cfg.live))}
    with contextlib.suppress(OSError):
        roots.add(os.path.join(os.path.realpath(cfg.live.parent), cfg.live.name))
    pattern = re.compile(
        b"(?:"
        + b"|".join(re.escape(root.encode()) for root in sorted(roots, key=len, reverse=True))
        + rb")(?:/[^\s'\"\]\)\\,;]*)?(?![\w.-])"
    )
    found: set[str] = set()
    for data in files.values():
        for match in pattern.finditer(data):
            found.add(match.group(0).decode("utf-8", "replace"))
    return sorted(found)[:20]


class Gate:
    def __init__(
        self,
        cfg: DaemonConfig,
        layout: Layout,
        cached: Callable[[str, str, Callable[[], object]], object] | None,
        isolation: dict[str, str] | None = None,
    ) -> None:
        self.cfg = cfg
        self.layout = layout
        self.cached = cached
        self.isolation = isolation or {"isolation": "none", "detail": "not probed"}

    def options(self, cancelled: Callable[[], bool] | None = None) -> AuditOptions:
        """As everywhere: the configuration comes from the audited (head) snapshot. With
        `cancelled`, the audit stops (Preempted) at the next file or stage once it says so: every
        file parse, data file and per-snapshot stage goes through the cache lookup."""
        if cancelled is None:
            return AuditOptions(entry=self.cfg.entry, cached=self.cached)
        inner = self.cached

        def cached(namespace: str, key: str, compute: Callable[[], object]) -> object:
            if cancelled():
                raise Preempted(f"audit: before {namespace}")
            return inner(namespace, key, compute) if inner is not None else compute()

        return AuditOptions(entry=self.cfg.entry, cached=cached)

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
                report = audit_change(base_snapshot, snapshot, self.options(superseded))
            except AuditError as exc:
                return Verdict("blocked", False, reasons=[f"cannot audit: {exc}"])
            if superseded():
                raise Preempted("audit finished")
            threshold = Severity.parse(self.cfg.fail_on)
            if at_or_above(report.introduced, threshold):
                return Verdict("blocked", False, report=report)
        files = self._files(snapshot) if candidate.promotable else None
        if isinstance(files, str):
            return Verdict("blocked", False, report=report, reasons=[files])
        validator = None
        validation = None
        if self.cfg.kumod.binary is not None and not force and files is not None:
            self.layout.materialise(candidate.id, files)
            validation = self._validation(files)
            validator = self._validate(candidate.id, report, superseded, validation)
            if validator.exit_code != 0:
                return Verdict(
                    "blocked",
                    False,
                    report=report,
                    validator=validator,
                    validation=validation,
                    reasons=[
                        f"kumod --validate failed (exit status {validator.exit_code})",
                        *self._caveat(validation),
                    ],
                )
        impact = report.change.impact if report is not None else "epoch"
        verdict = Verdict(
            promote_as,
            True,
            report,
            reasons=self._caveat(validation),
            validator=validator,
            files=files,
            validation=validation,
        )
        if impact == "restart":
            verdict.decision = "restart-required"
            verdict.promote = candidate.promotable and (
                self.cfg.on_restart == "promote" or restart_ok
            )
        elif not candidate.promotable:
            verdict.decision, verdict.promote, verdict.files = "accepted", False, None
        return verdict

    def _validation(self, files: dict[str, bytes]) -> dict[str, Any]:
        """How this validation sees the live path (recorded with the decision)."""
        validation: dict[str, Any] = {"isolation": self.isolation["isolation"]}
        if validation["isolation"] != "namespace":
            validation["detail"] = self.isolation.get("detail")
            references = live_references(self.cfg, files)
            if references:
                validation["live_files_seen"] = references
        return validation

    @staticmethod
    def _caveat(validation: dict[str, Any] | None) -> list[str]:
        if not validation or not validation.get("live_files_seen"):
            return []
        paths = ", ".join(validation["live_files_seen"][:5])
        return [
            "kumod --validate read the LIVE files, not the candidate's, for the live paths the "
            f"candidate names ({paths}): no private mount namespace ({validation.get('detail')})"
        ]

    def _files(self, snapshot: Snapshot) -> dict[str, bytes] | str:
        files: dict[str, bytes] = {}
        try:
            for path in snapshot.files():
                files[path] = snapshot.read(path)
        except Exception as exc:  # FileNotFoundError, FileProblem: the tree moved or is unusable
            return f"cannot read the candidate: {exc}"
        return files

    def _validate(
        self,
        release: str,
        report: ChangeResult | None,
        superseded: Callable[[], bool],
        validation: dict[str, Any],
    ) -> ValidatorDigest:
        """Run kumod --validate against the materialised candidate; its exit status and output
        digest. In a private mount namespace, the live path shows the candidate."""
        entry = report.head.entry if report is not None else "init.lua"
        release_dir = self.layout.release_dir(release)
        policy = release_dir / entry
        binary = str(self.cfg.kumod.binary)
        args = [a.replace("{policy}", str(policy)) for a in self.cfg.kumod.validate_args]
        argv = [binary, *args]
        if validation["isolation"] == "namespace":
            argv += self.cfg.kumod.namespace_args
            argv = [
                shutil.which("unshare") or "unshare",
                *ISOLATION_COMMAND,
                "sh",
                "-c",
                _BIND_AND_RUN,
                "sh",
                str(release_dir),
                str(self.cfg.live),
                *argv,
            ]
        command = " ".join(argv)
        try:
            proc = subprocess.Popen(
                argv,
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
                raise Preempted("kumod --validate") from None
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
