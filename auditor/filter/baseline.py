"""Semantic baselines: accepted findings keyed on rule, file and configuration object, never lines.

A baseline lets a team adopt kumo-audit on an existing policy: findings recorded in it are reported as
suppressed (kind "baseline"), new ones are not. Entries match by fingerprint, which is derived from the
rule code, the file and the semantic key of the finding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from auditor.core.atomic import write_atomic
from auditor.core.errors import AuditError
from auditor.core.findings import Finding, Suppression
from auditor.core.small_file import SmallFileError, read_small_file

BASELINE_VERSION = 1


def write_baseline(path: Path, findings: list[Finding]) -> None:
    entries = sorted(
        (
            {"code": f.code, "path": f.path, "fingerprint": f.fingerprint, "message": f.message}
            for f in findings
            if not f.suppressed
        ),
        key=lambda e: (e["path"], e["code"], e["fingerprint"]),
    )
    write_atomic(
        path,
        json.dumps(
            {"baseline_version": BASELINE_VERSION, "findings": entries}, indent=2, sort_keys=True
        )
        + "\n",
    )


def read_baseline(path: Path) -> set[str]:
    try:
        data = read_small_file(path)
    except SmallFileError as exc:
        raise AuditError(f"baseline file: {exc}") from None
    try:
        doc: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditError(f"baseline file {path} is not readable JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("baseline_version") != BASELINE_VERSION:
        raise AuditError(
            f"{path} is not a kumo-audit baseline (baseline_version {BASELINE_VERSION})"
        )
    return {str(e.get("fingerprint")) for e in doc.get("findings", []) if isinstance(e, dict)}


def baselined(findings: list[Finding], fingerprints: set[str], source: str) -> list[Finding]:
    record = Suppression("baseline", f"accepted in baseline {source}", source, 0)
    return [
        f.suppress(record) if not f.suppressed and f.fingerprint in fingerprints else f
        for f in findings
    ]


def apply_baseline(report: Any, fingerprints: set[str], source: str = "baseline") -> None:
    """Mark baselined findings of a change report as suppressed (in place)."""
    report.head.findings = baselined(report.head.findings, fingerprints, source)
    report.change_findings = baselined(report.change_findings, fingerprints, source)
    report.change.introduced = baselined(report.change.introduced, fingerprints, source)
    report.change.introduced = [f for f in report.change.introduced if not f.suppressed]
