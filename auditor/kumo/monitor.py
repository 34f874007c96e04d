"""KumoMTA's config monitor: which deployed files start a new configuration epoch when they change.

kumod evaluates its monitor globs every 10 s and bumps the epoch when the hashed contents change; the
default glob is `/opt/kumomta/etc/**/*.{lua,json,toml,yaml}` and `kumo.set_config_monitor_globs`
replaces the list (KUMOMTA.md §1.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from auditor.findings import Span
from auditor.lua.literal import Lit, Table

DEFAULT_GLOBS = ("/opt/kumomta/etc/**/*.{lua,json,toml,yaml}",)


@dataclass(frozen=True, slots=True)
class MonitorGlobs:
    globs: tuple[str, ...]
    explicit: bool  # set by the policy (else KumoMTA's default)
    complete: bool  # every glob is a literal (else coverage is unknown)
    module: str | None = None
    span: Span | None = None

    def covers(self, deployed_path: str) -> bool | None:
        """True/False when known; None when a non-literal glob could match anything."""
        if any(glob_regex(g).match(deployed_path) for g in self.globs):
            return True
        return False if self.complete else None


def monitor_globs(model) -> MonitorGlobs:  # type: ignore[no-untyped-def]
    """The globs in force: the last literal `set_config_monitor_globs` call, or KumoMTA's default."""
    calls = [s for s in model.calls_to("kumo.set_config_monitor_globs") if s.contexts]
    if not calls:
        return MonitorGlobs(DEFAULT_GLOBS, explicit=False, complete=True)
    site = calls[-1]
    value = site.arg(0)
    if not isinstance(value, Table):
        return MonitorGlobs((), explicit=True, complete=False, module=site.module, span=site.span)
    globs: list[str] = []
    complete = not value.has_unknown_keys
    for item in value.array():
        if isinstance(item, Lit) and isinstance(item.value, str):
            globs.append(item.value)
        else:
            complete = False
    return MonitorGlobs(
        tuple(globs), explicit=True, complete=complete, module=site.module, span=site.span
    )


def expand_braces(pattern: str) -> list[str]:
    """`a.{lua,toml}` -> [`a.lua`, `a.toml`] (nested braces too)."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    out: list[str] = []
    for option in match.group(1).split(","):
        out.extend(expand_braces(head + option + tail))
    return out


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a glob with `**` (any depth, including none), `*`, `?`, `[...]` and `{a,b}`."""
    alternatives = [_translate(p) for p in expand_braces(pattern)]
    return re.compile("(?:" + "|".join(alternatives) + r")\Z")


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append(r"(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(r".*")
            i += 2
        elif ch == "*":
            out.append(r"[^/]*")
            i += 1
        elif ch == "?":
            out.append(r"[^/]")
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
                i += 1
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)
