"""Names the command line needs without importing the entry model (kept in step with `model.Decision`)."""

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
IMPACTS: tuple[str, ...] = ("none", "epoch", "ttl", "unmonitored", "restart", "blocked")
DEFAULT_BRANCH = "kumo-runbook"
