"""GitHub Actions workflow commands: one annotation per finding, shown on the pull request diff.

`::error file=F,line=L,col=C,endLine=L2,endColumn=C2,title=CODE name::message`, with `warning`
and `notice` for the other severities. GitHub displays at most 10 annotations of each level per
step, so at most 10 of each are printed (9 notices when some are held back, leaving room for the
closing `::notice::N more …` line that says how many were not shown). Findings that span several
lines get no `col`/`endColumn` (GitHub would attach the columns to the wrong lines); on one line,
`endColumn` is the last character of the range (inclusive). Suppressed findings are not annotated.
Paths are relative to the repository root: `extra["path_prefix"]` is prepended to each.
"""

from __future__ import annotations

from auditor.core.findings import Finding, Severity
from auditor.render.base import RenderInput
from auditor.render.location import repo_path

LIMIT = 10
COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
_NOUNS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """The message part of a workflow command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value: data escapes plus `:` and `,`, which separate properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(data: RenderInput, finding: Finding) -> str:
    """The workflow command line for one finding."""
    span = finding.span
    line = max(1, span.line)
    props: list[tuple[str, str]] = [
        ("file", repo_path(data, finding.path)),
        ("line", str(line)),
    ]
    if span.end_line > line:
        props.append(("endLine", str(span.end_line)))
    else:
        column = max(1, span.column)
        props.append(("col", str(column)))
        props.append(("endLine", str(line)))
        props.append(("endColumn", str(max(column, span.end_column - 1))))
    title = f"{finding.code} {finding.name}".strip()
    props.append(("title", title))
    message = finding.message or title
    if finding.fix:
        message += f"\nfix: {finding.fix}"
    rendered = ",".join(f"{key}={escape_property(value)}" for key, value in props)
    return f"::{COMMANDS[finding.severity]} {rendered}::{escape_data(message)}"


def render(data: RenderInput, *, color: bool = False) -> str:
    shown = sorted((f for f in data.findings if not f.suppressed), key=Finding.sort_key)
    by_level = {s: [f for f in shown if f.severity == s] for s in COMMANDS}
    overflow = any(len(fs) > LIMIT for fs in by_level.values())
    limits = {s: LIMIT for s in COMMANDS}
    if overflow:
        limits[Severity.INFO] = LIMIT - 1
    used = dict.fromkeys(COMMANDS, 0)
    lines: list[str] = []
    for finding in shown:
        if used[finding.severity] < limits[finding.severity]:
            used[finding.severity] += 1
            lines.append(annotation(data, finding))
    held = {s: len(fs) - used[s] for s, fs in by_level.items()}
    total_held = sum(held.values())
    if total_held:
        parts = [
            f"{n} {_NOUNS[s]}{'s' if n != 1 else ''}"
            for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)
            if (n := held[s])
        ]
        lines.append(
            f"::notice::{total_held} more finding{'s' if total_held != 1 else ''} not shown as "
            f"annotations ({escape_data(', '.join(parts))}); see the full report"
        )
    return "".join(line + "\n" for line in lines)
