"""Human output: `path:line:col: CODE [severity] message`, grouped by file, then a summary line."""

from __future__ import annotations

import re

from auditor.core.findings import Finding, Severity
from auditor.render.base import RenderInput

# Control characters (and line breaks) taken from the policy or its data (keys, values, paths) must not
# reach a terminal as they are: an ANSI escape sequence in a data-file key could rewrite the screen.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """`text` with control characters and line breaks shown as `\\xNN` escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


_COLORS = {Severity.ERROR: "\033[31m", Severity.WARNING: "\033[33m", Severity.INFO: "\033[36m"}
_BOLD, _DIM, _RESET = "\033[1m", "\033[2m", "\033[0m"


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text


def format_finding(f: Finding, *, color: bool = False) -> str:
    where = _paint(f"{printable(f.path)}:{f.line}:{f.column}:", _BOLD, color)
    label = _paint(f"{f.code} [{f.severity.value}]", _COLORS[f.severity], color)
    line = f"{where} {label} {printable(f.message)}"
    if f.fix:
        line += "\n    " + _paint(f"fix: {printable(f.fix)}", _DIM, color)
    return line


def _change_lines(data: RenderInput, color: bool) -> list[str]:
    """For a change audit: what the change introduces and resolves, from the JSON-ready dicts."""
    assert data.change is not None
    lines: list[str] = []
    for title, key in (
        ("introduced by this change", "introduced"),
        ("resolved by this change", "resolved"),
    ):
        items = data.change.get(key) or []
        if not items:
            continue
        if lines:
            lines.append("")
        lines.append(_paint(f"{title} ({len(items)}):", _BOLD, color))
        for item in items:
            sev = Severity(item["severity"])
            label = _paint(f"{item['code']} [{sev.value}]", _COLORS[sev], color)
            lines.append(
                f"  {printable(item['path'])}:{item['line']}:{item['column']}: {label} "
                f"{printable(item['message'])}"
            )
    return lines


def render(data: RenderInput, *, color: bool = False) -> str:
    if data.change is not None:
        return _render_change(data, color)
    lines: list[str] = []
    shown = sorted((f for f in data.findings if not f.suppressed), key=Finding.sort_key)
    current = None
    for finding in shown:
        if finding.path != current:
            if current is not None:
                lines.append("")
            current = finding.path
        lines.append(format_finding(finding, color=color))
    if data.reload:
        lines.append("")
        lines.append(f"reload impact: {data.reload.get('impact')}")
        for element in data.reload.get("elements", [])[:50]:
            lines.append(
                f"  {printable(element.get('path'))}:{element.get('line')}: "
                f"{element.get('impact')}: {printable(element.get('element'))}: "
                f"{printable(element.get('reason'))}"
            )
    if data.suppressions:
        lines.append("")
        lines.append("suppressions used:")
        for s in data.suppressions:
            extra = "".join(
                f" {k}={v}" for k, v in (("ticket", s.ticket), ("expires", s.expires)) if v
            )
            where = f"{s.path}:{s.line}" if s.line else s.path
            lines.append(printable(f"  {where}: {s.kind}: {s.reason}{extra}"))
    counts = data.summary.get("by_severity", {})
    total = data.summary.get("findings", 0)
    parts = [
        f"{counts.get(s, 0)} {s}{'s' if counts.get(s, 0) != 1 else ''}"
        for s in ("error", "warning", "info")
    ]
    suppressed = data.summary.get("suppressed", 0)
    tail = f", {suppressed} suppressed" if suppressed else ""
    files = data.summary.get("files", 0)
    verdict = "no problems" if total == 0 else f"{total} finding{'s' if total != 1 else ''}"
    if lines:
        lines.append("")
    mode = data.extra.get("tool", {}).get("mode")
    audited_as = f" ({mode_label(mode)})" if mode and mode != "policy" else ""
    lines.append(f"{verdict} ({', '.join(parts)}{tail}){files_phrase(files)}{audited_as}")
    return "\n".join(lines) + "\n"


def files_phrase(files: int) -> str:
    """How many files the findings come from; none when not one file could be read or parsed
    (the findings then say why: an unreadable entry, a size limit, a syntax error)."""
    if files == 0:
        return "; no file could be audited"
    return f" in {files} file{'s' if files != 1 else ''}"


MODE_LABELS = {
    "module": "audited as a module: whole-policy rules off; its top level runs where it is required",
}


def mode_label(mode: str) -> str:
    if mode.startswith("data:"):
        return f"audited as a {mode[5:].replace('_', ' ')} data file"
    return MODE_LABELS.get(mode, mode)


def _render_change(data: RenderInput, color: bool) -> str:
    lines = _change_lines(data, color)
    if data.reload:
        if lines:
            lines.append("")
        impact = data.reload.get("impact")
        lines.append(
            _paint(f"reload impact: {impact}", _BOLD, color)
            + f" ({data.reload.get('meaning', '')})"
        )
        for element in data.reload.get("elements", [])[:50]:
            lines.append(
                f"  {printable(element['path'])}:{element['line']}: {element['impact']}: "
                f"{printable(element['reason'])}"
            )
        hidden = len(data.reload.get("elements", [])) - 50
        if hidden > 0:
            lines.append(f"  ... and {hidden} more")
    if data.suppressions:
        lines.append("")
        lines.append("suppressions used:")
        for s in data.suppressions:
            where = f"{s.path}:{s.line}" if s.line else s.path
            lines.append(printable(f"  {where}: {s.kind}: {s.reason}"))
    summary = data.summary
    if lines:
        lines.append("")
    lines.append(
        f"{summary.get('introduced', 0)} introduced, {summary.get('resolved', 0)} resolved, "
        f"{summary.get('findings', 0)} in the new state, {summary.get('changed_files', 0)} changed "
        f"file{'s' if summary.get('changed_files', 0) != 1 else ''}"
    )
    return "\n".join(lines) + "\n"
