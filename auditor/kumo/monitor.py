"""KumoMTA's config monitor: which deployed files start a new configuration epoch when they change.

kumod evaluates its monitor globs every 10 s and bumps the epoch when the hashed contents change; the
default glob is `/opt/kumomta/etc/**/*.{lua,json,toml,yaml}` and `kumo.set_config_monitor_globs`
replaces the list (KUMOMTA.md §1.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from auditor.core.findings import Span
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
        if any(glob_matches(g, deployed_path) for g in self.globs):
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


def _split_alternatives(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _component_regex(text: str) -> str:
    """One path component of a filenamegen glob: `*`, `?`, `[...]`, `{a,b}` (nested)."""
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            close = text.find("]", i + 2)
            if close == -1:
                out.append(re.escape(char))
            else:
                body = text[i + 1 : close]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = close
        elif char == "{":
            depth, j = 0, i
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(text):
                out.append(re.escape(char))
            else:
                alternatives = _split_alternatives(text[i + 1 : j])
                out.append("(?:" + "|".join(_component_regex(a) for a in alternatives) + ")")
                i = j
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a KumoMTA config-monitor glob (filenamegen semantics, walked from `/`).

    `*` and `?` stay within one path component, `**` as a whole component matches zero or more
    directories, `{a,b}` is an alternation (alternatives may contain `/`), `[...]` a class.
    Relative patterns are relative to `/`.
    """
    text = pattern if pattern.startswith("/") else "/" + pattern
    regex = ""
    for alternative in _expand_braces_with_slash(text):
        parts = [p for p in alternative.split("/") if p != ""]
        body = ""
        for part in parts:
            body += "(?:/[^/]+)*" if part == "**" else "/" + _component_regex(part)
        regex += ("|" if regex else "") + body
    try:
        return re.compile(f"^(?:{regex})$")
    except re.error:  # e.g. a reversed class range: KumoMTA rejects it too; match it literally
        return re.compile(re.escape(text) + "$")


def _expand_braces_with_slash(text: str) -> list[str]:
    """Expand `{...}` groups whose alternatives contain `/` (they span components)."""
    start = -1
    depth = 0
    for i, char in enumerate(text):
        if char == "{":
            if depth == 0:
                start = i
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                group = text[start + 1 : i]
                if "/" in group:
                    head, tail = text[:start], text[i + 1 :]
                    out: list[str] = []
                    for alt in _split_alternatives(group):
                        out.extend(_expand_braces_with_slash(head + alt + tail))
                    return out
    return [text]


def glob_matches(pattern: str, path: str) -> bool:
    return glob_regex(pattern).match(path) is not None
