"""KumoMTA's config monitor: which deployed files start a new configuration epoch when they change.

kumod evaluates its monitor globs every 10 s and bumps the epoch when the hashed contents change; the
default glob is `/opt/kumomta/etc/**/*.{lua,json,toml,yaml}` and `kumo.set_config_monitor_globs`
replaces the list (KUMOMTA.md §1.4).
"""

from __future__ import annotations

import re
from functools import lru_cache

from auditor.core.findings import Span
from auditor.core.record import dataclass
from auditor.lua.literal import Lit, Table, Unknown

DEFAULT_GLOBS = ("/opt/kumomta/etc/**/*.{lua,json,toml,yaml}",)


@dataclass(frozen=True, slots=True)
class Computed:
    """A glob computed at run time: what it is written as, and what is known of its text."""

    source: str
    prefix: str = ""
    suffix: str = ""
    env: str | None = None

    def may_match(self, path: str) -> bool:
        """False when no value of the glob can match `path`: the literal text before its first
        wildcard must begin the path, the literal text after its last one must end it."""
        head = re.split(r"[*?\[{]", self.prefix, maxsplit=1)[0]
        if head.startswith("/") and not _squeeze(path).startswith(_squeeze(head)):
            return False
        tail = re.split(r"[*?\]}]", self.suffix)[-1]
        return path.endswith(tail)

    def describe(self) -> str:
        if self.env:
            return f"{self.source} (from ${self.env})"
        return self.source


def _compatible(glob: str, prefix: str, suffix: str) -> bool:
    """Whether a glob might match some `prefix .. x .. suffix`: for one of its `{a,b}`
    alternatives, the literal heads and tails agree (one starts, or ends, with the other)."""
    start = _squeeze(prefix)
    for alternative in _alternatives(glob):
        head = _squeeze("/" + re.split(r"[*?\[]", alternative, maxsplit=1)[0])
        tail = re.split(r"[*?\]]", alternative)[-1]
        if (head.startswith(start) or start.startswith(head)) and (
            tail.endswith(suffix) or suffix.endswith(tail)
        ):
            return True
    return False


def _alternatives(glob: str, limit: int = 64) -> list[str]:
    """Every `{a,b}` alternative of a glob spelled out (up to `limit`; past it, a form that
    matches anything, so nothing is wrongly ruled out)."""
    out, pending = [], [glob]
    while pending:
        text = pending.pop()
        start = text.find("{")
        depth, end = 0, -1
        for i in range(start, len(text)) if start >= 0 else ():
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                end = i
                break
        if start < 0 or end < 0:
            out.append(text)
        else:
            for part in _split_alternatives(text[start + 1 : end]):
                pending.append(text[:start] + part + text[end + 1 :])
        if len(out) + len(pending) > limit:
            return ["*"]
    return out


def _squeeze(path: str) -> str:
    return re.sub("/+", "/", path)


@dataclass(frozen=True, slots=True)
class MonitorGlobs:
    """The config monitor globs in effect and whether the policy set them."""

    globs: tuple[str, ...]
    explicit: bool  # set by the policy (else KumoMTA's default)
    complete: bool  # the list is known element by element (else coverage is unknown)
    module: str | None = None
    span: Span | None = None
    computed: tuple[Computed, ...] = ()  # elements computed at run time

    def covers(self, deployed_path: str) -> bool | None:
        """True/False when known; None when a computed glob (or an unknown list) may match it."""
        if any(glob_matches(g, deployed_path) for g in self.globs):
            return True
        if not self.complete:
            return None
        return None if self.unknown_for(deployed_path) else False

    def unknown_for(self, deployed_path: str) -> list[Computed]:
        """The computed globs that may match the path."""
        return [c for c in self.computed if c.may_match(deployed_path)]

    def covers_computed(self, prefix: str, suffix: str) -> bool | None:
        """Whether the globs cover the files a computed path names (`prefix .. x .. suffix`):
        True when they cover such a file, False when no glob can match any of them, None when
        that depends on the computed part."""
        if any(self.covers(prefix + middle + suffix) is True for middle in ("x", "x/x")):
            return True
        if not self.complete or self.computed:
            return None
        if any(_compatible(g, prefix, suffix) for g in self.globs):
            return None
        return False


def glob_list(value: object) -> tuple[list[str], list[Computed], bool]:
    """(literal globs, computed ones, complete) of the argument of `set_config_monitor_globs`:
    complete when the list is known element by element (each element literal or computed)."""
    if not isinstance(value, Table):
        return [], [], False
    globs: list[str] = []
    computed: list[Computed] = []
    items = value.array()
    complete = len(items) == len(value.entries)
    for item in items:
        if isinstance(item, Lit) and isinstance(item.value, str):
            globs.append(item.value)
        elif isinstance(item, Unknown):
            computed.append(
                Computed(item.source or "a computed value", item.prefix, item.suffix, item.env)
            )
        else:
            complete = False
    return globs, computed, complete


def monitor_globs(model) -> MonitorGlobs:  # type: ignore[no-untyped-def]
    """The globs in force: those of the last `set_config_monitor_globs` call, or KumoMTA's
    default."""
    calls = [s for s in model.calls_to("kumo.set_config_monitor_globs") if s.contexts]
    if not calls:
        return MonitorGlobs(DEFAULT_GLOBS, explicit=False, complete=True)
    site = calls[-1]
    globs, computed, complete = glob_list(site.arg(0))
    return MonitorGlobs(
        tuple(globs),
        explicit=True,
        complete=complete,
        module=site.module,
        span=site.span,
        computed=tuple(computed),
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
