"""Runbook decisions: the one list of what a runbook entry may record (the entry model and the
command line both read it)."""

from auditor.core.impacts import ORDER

DECISIONS: tuple[str, ...] = (
    "accepted",
    "blocked",
    "restart-required",
    "promoted",
    "rolled-back",
    "drift-detected",
    "waived",
    "reload-verified",
    "upgrade-evaluated",
    "note",
    "checkpoint",
)
IMPACTS: tuple[str, ...] = ORDER
DEFAULT_BRANCH = "kumo-runbook"
