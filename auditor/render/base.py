"""What every renderer receives: findings plus the context of the run, in one plain structure."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from auditor.core.findings import Finding, Suppression
from auditor.core.record import dataclass


@dataclass
class RenderInput:
    """Everything a renderer needs: findings, summary, and optional reload and change reports."""

    root: str
    findings: list[Finding]
    summary: dict[str, Any]
    suppressions: list[Suppression] = field(default_factory=list)
    reload: dict[str, Any] | None = None
    change: dict[str, Any] | None = (
        None  # change-audit extras: introduced/resolved fingerprints, base/head
    )
    extra: dict[str, Any] = field(default_factory=dict)
