"""Reload impact classes, strongest last, and the words that explain them."""

from __future__ import annotations

from dataclasses import dataclass

NONE, EPOCH, TTL, UNMONITORED, RESTART, BLOCKED = (
    "none",
    "epoch",
    "ttl",
    "unmonitored",
    "restart",
    "blocked",
)
ORDER = (NONE, EPOCH, TTL, UNMONITORED, RESTART, BLOCKED)

MEANING = {
    NONE: "comments or formatting only: nothing changes in KumoMTA",
    EPOCH: "live at the next configuration epoch (KumoMTA polls its config files every 10 s)",
    TTL: "live only when a cache entry expires (up to the cache TTL), not at the next epoch",
    UNMONITORED: "not covered by the config monitor globs: live only after an explicit epoch bump",
    RESTART: "applies only after kumod restarts",
    BLOCKED: "the new state has error findings: do not deploy",
}


# What each class means for the person committing (one line, for the hook).
CONSEQUENCE = {
    NONE: "no effect on KumoMTA (comments or formatting only)",
    EPOCH: "live at the next config epoch (about 10 s)",
    TTL: "live only when cache entries expire (up to their TTL)",
    UNMONITORED: "not seen by the config monitor: it needs an explicit config epoch bump",
    RESTART: "it needs a kumod restart",
    BLOCKED: "it must not be deployed",
}


def strongest(impacts: list[str]) -> str:
    return max(impacts, key=ORDER.index, default=NONE)


@dataclass(frozen=True, slots=True)
class Element:
    """One changed thing, its impact and why."""

    element: str
    path: str
    line: int
    impact: str
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {
            "element": self.element,
            "path": self.path,
            "line": self.line,
            "impact": self.impact,
            "reason": self.reason,
        }
