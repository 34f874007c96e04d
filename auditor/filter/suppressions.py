"""Inline suppression comments in Lua files.

`-- kumo-audit: allow(R103, S106) reason="…" ticket=OPS-12 expires=2027-01-31` on the line before a
statement (or on its first line) covers that whole statement; `--# kumo-audit: allow(...)` covers the file.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import field
from datetime import date

from auditor.core.findings import Span
from auditor.core.record import dataclass
from auditor.lua.facts import Comment, FileFacts

_MARKER = re.compile(r"^--(#)?\s*kumo-audit:\s*allow\(([^)]*)\)(.*)$", re.DOTALL)
_CODE = re.compile(r"^[A-Z]\d{3}$")


@dataclass(slots=True)
class InlineSuppression:
    """One `kumo-audit: allow(...)` comment and what it covers."""

    path: str
    span: Span
    codes: list[str]
    reason: str | None
    ticket: str | None
    expires: date | None
    file_level: bool
    first_line: int  # lines covered (inclusive)
    last_line: int
    problems: list[str] = field(default_factory=list)  # malformed parts
    used: bool = False

    def covers(self, code: str, line: int) -> bool:
        return code in self.codes and (self.file_level or self.first_line <= line <= self.last_line)


def parse_comment(text: str) -> tuple[bool, list[str], dict[str, str], list[str]] | None:
    """(file_level, codes, attributes, problems) of a suppression comment, or None if it is not one."""
    body = text.strip()
    if body.startswith("--[["):
        return None
    match = _MARKER.match(body)
    if match is None:
        return None
    file_level = match.group(1) is not None
    codes = [c.strip().upper() for c in match.group(2).split(",") if c.strip()]
    problems = [f"'{c}' is not a rule code" for c in codes if not _CODE.match(c)]
    attrs: dict[str, str] = {}
    try:
        tokens = shlex.split(match.group(3))
    except ValueError as exc:
        return file_level, codes, attrs, [*problems, f"cannot read attributes: {exc}"]
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep:
            problems.append(f"'{token}' is not key=value")
            continue
        attrs[key.strip().lower()] = value.strip()
    unknown = sorted(set(attrs) - {"reason", "ticket", "expires"})
    problems += [f"unknown attribute '{k}'" for k in unknown]
    return file_level, codes, attrs, problems


def _unknown_codes(codes: list[str]) -> list[str]:
    """A problem for each code that names no rule, with the closest real code."""
    if not codes:
        return []
    from auditor.filter.codes import code_problem, known_codes

    known = known_codes()
    return [p for c in codes if (p := code_problem(c, known, prefix=False))]


def collect(path: str, facts: FileFacts) -> list[InlineSuppression]:
    out: list[InlineSuppression] = []
    starts = sorted(facts.statement_lines)
    comment_lines = {c.line for c in facts.comments}
    for comment in facts.comments:
        parsed = parse_comment(comment.text)
        if parsed is None:
            continue
        file_level, codes, attrs, problems = parsed
        problems = [p for p in problems if not p.endswith("is not a rule code")]
        problems[:0] = _unknown_codes(codes)
        expires: date | None = None
        if "expires" in attrs:
            try:
                expires = date.fromisoformat(attrs["expires"])
            except ValueError:
                problems.append(f"expires={attrs['expires']!r} is not a date (YYYY-MM-DD)")
        first, last = _target(comment, starts, comment_lines)
        out.append(
            InlineSuppression(
                path=path,
                span=Span(
                    comment.line,
                    comment.column,
                    comment.end_line,
                    comment.column + len(comment.text),
                ),
                codes=codes,
                reason=attrs.get("reason") or None,
                ticket=attrs.get("ticket"),
                expires=expires,
                file_level=file_level,
                first_line=first,
                last_line=last,
                problems=problems,
            )
        )
    return out


def _target(
    comment: Comment, statements: list[tuple[int, int]], comment_lines: set[int]
) -> tuple[int, int]:
    """Lines of the statement a comment applies to: the one on its line, else the next one."""
    if not comment.standalone:
        on_line = [s for s in statements if s[0] == comment.line]
        if on_line:
            return min(on_line[0][0], comment.line), max(e for _, e in on_line)
        containing = [s for s in statements if s[0] <= comment.line <= s[1]]
        if containing:
            inner = min(containing, key=lambda s: s[1] - s[0])
            return inner
        return comment.line, comment.line
    following = [s for s in statements if s[0] > comment.end_line]
    if not following:
        return comment.line, comment.end_line
    start = min(s[0] for s in following)
    end = max(e for s, e in following if s == start)
    return comment.line, end
