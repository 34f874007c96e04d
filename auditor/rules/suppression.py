"""X0xx: problems with suppressions themselves (produced by auditor.filter.apply)."""

from auditor.rules.registry import declare

SUPPRESSION_WITHOUT_REASON = declare(
    "X001",
    "suppression-without-reason",
    "error",
    "A suppression or waiver that gives no reason (or cannot be read)",
    doc="""
Every exception to a policy rule must say why, so that an auditor reading the runbook can judge it.
A suppression comment without `reason="…"`, with a malformed code list or unknown attributes, does
not suppress anything and is reported itself.
""",
    bad="""
-- kumo-audit: allow(R103)
counter = 0
""",
    good="""
-- kumo-audit: allow(R103) reason="per-context counter, reset on purpose" ticket=OPS-41
counter = 0
""",
    fix='Add reason="…" (and ticket=… where your process wants one), or fix the finding instead.',
    suppressible=False,
)

SUPPRESSION_EXPIRED = declare(
    "X002",
    "suppression-expired",
    "error",
    "A suppression or waiver whose expiry date has passed",
    doc="""
Suppressions and waivers may carry `expires=YYYY-MM-DD`. After that date the exception no longer
applies: the finding it covered is reported again, and so is the stale exception.
""",
    bad="""
-- kumo-audit: allow(S105) reason="TLS terminates at the LB until migration" expires=2025-01-31
""",
    good="""
-- kumo-audit: allow(S105) reason="TLS terminates at the LB until migration" expires=2027-01-31
""",
    fix="Fix the underlying finding, or renew the exception with a new review and a new date.",
    suppressible=False,
)

UNUSED_SUPPRESSION = declare(
    "X003",
    "unused-suppression",
    "warning",
    "A suppression or waiver that matched no finding",
    doc="""
An exception that no longer matches anything hides nothing today but would silently hide a future
problem at the same place. Remove it. Codes that can never be suppressed (E1xx, X0xx) are reported
here too.
""",
    bad="""
-- kumo-audit: allow(S101) reason="legacy"
local x = 1
""",
    good="-- (no suppression where nothing is reported)",
    fix="Delete the suppression comment or the [[waiver]] entry.",
    suppressible=False,
)
