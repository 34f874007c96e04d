"""A Markdown job summary (for `$GITHUB_STEP_SUMMARY`, GitLab or any Markdown viewer).

Sections: the verdict, a counts table, the findings (most severe first, capped), the reload impact
when `data.reload` is present, the change when `data.change` is present, and the suppressions
that were used. The verdict fails when an unsuppressed finding is at or above
`extra["fail_on"]` (default `error`), or when the reload impact is `blocked`. Locations link to
the file when `extra["blob_url"]` is given (e.g. `https://github.com/OWNER/REPO/blob/SHA`); paths
are relative to the repository root (`extra["path_prefix"]` is prepended). Text from the policy is
escaped, so it can neither break a table nor turn into formatting or HTML.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from auditor.core.findings import Finding, Severity
from auditor.render.base import RenderInput
from auditor.render.location import repo_path

MAX_FINDINGS = 100
MAX_ELEMENTS = 50
MAX_SUPPRESSIONS = 100

_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ICONS = {Severity.ERROR: "🔴", Severity.WARNING: "🟡", Severity.INFO: "🔵"}
_ORDER = (Severity.ERROR, Severity.WARNING, Severity.INFO)


def cell(value: object) -> str:
    """Escape text for a table cell (or any inline Markdown): one line, no markup, no HTML."""
    text = _CONTROL.sub("\ufffd", "" if value is None else str(value))
    text = _SPECIAL.sub(r"\\\1", text)
    return "<br>".join(re.split(r"\r\n|\r|\n", text))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _location(data: RenderInput, path: str, line: object) -> str:
    full = repo_path(data, path)
    label = cell(f"{full}:{line}" if line else full)
    base = str(data.extra.get("blob_url") or "").rstrip("/")
    if not base:
        return label
    anchor = f"#L{line}" if isinstance(line, int) and line > 0 else ""
    return f"[{label}]({base}/{quote(full, safe='/')}{anchor})"


def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    align = align or ["---"] * len(header)
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _failed(data: RenderInput, shown: list[Finding]) -> bool:
    try:
        threshold = Severity.parse(str(data.extra.get("fail_on") or "error"))
    except ValueError:
        threshold = Severity.ERROR
    if data.reload and data.reload.get("impact") == "blocked":
        return True
    return any(f.severity.rank >= threshold.rank for f in shown)


def _counts(data: RenderInput, shown: list[Finding], suppressed: int) -> list[str]:
    counts = {s: sum(f.severity is s for f in shown) for s in _ORDER}
    rows = [[f"{_ICONS[s]} {s.value}", str(counts[s])] for s in _ORDER]
    rows.append(["suppressed", str(suppressed)])
    files = data.summary.get("files")
    parts = ", ".join(_plural(counts[s], s.value) for s in _ORDER)
    from auditor.render.text import files_phrase, mode_label

    where = files_phrase(files) if isinstance(files, int) else ""
    mode = data.extra.get("tool", {}).get("mode")
    if mode and mode != "policy":  # a module, a snippet or a data file audited on its own
        where += f" ({mode_label(mode)})"
    lines = [f"**{_plural(len(shown), 'finding')}** ({parts}){where}.", ""]
    return lines + _table(["Severity", "Count"], rows, ["---", "---:"])


def _findings(data: RenderInput, shown: list[Finding]) -> list[str]:
    if not shown:
        return []
    ordered = sorted(shown, key=lambda f: (-f.severity.rank, *f.sort_key()))
    rows = [
        [
            _location(data, f.path, f.line),
            cell(f"{f.code} {f.name}".strip()),
            f"{_ICONS[f.severity]} {f.severity.value}",
            cell(f.message),
        ]
        for f in ordered[:MAX_FINDINGS]
    ]
    lines = ["", "### Findings", "", *_table(["Location", "Code", "Severity", "Message"], rows)]
    if len(ordered) > MAX_FINDINGS:
        more = len(ordered) - MAX_FINDINGS
        lines += ["", f"… and {_plural(more, 'more finding')} (see the full report)."]
    return lines


def _reload(data: RenderInput) -> list[str]:
    reload: dict[str, Any] | None = data.reload
    if not reload:
        return []
    lines = ["", f"### Reload impact: **{cell(reload.get('impact', 'unknown'))}**"]
    elements = list(reload.get("elements") or [])
    if elements:
        rows = [
            [
                cell(e.get("element")),
                _location(data, str(e.get("path") or ""), e.get("line")),
                cell(e.get("impact")),
                cell(e.get("reason")),
            ]
            for e in elements[:MAX_ELEMENTS]
        ]
        lines += ["", *_table(["Element", "Location", "Impact", "Reason"], rows)]
        if len(elements) > MAX_ELEMENTS:
            lines += ["", f"… and {_plural(len(elements) - MAX_ELEMENTS, 'more element')}."]
    return lines


def _change(data: RenderInput) -> list[str]:
    change = data.change
    if not isinstance(change, dict):
        return []
    parts = []
    base, head = change.get("base"), change.get("head")
    if base or head:
        parts.append(f"{cell(base or '?')} → {cell(head or 'working tree')}")
    for key in ("introduced", "resolved"):
        value = change.get(key)
        if isinstance(value, list):
            parts.append(f"{len(value)} {key}")
    return ["", f"**Change:** {', '.join(parts)}"] if parts else []


def _suppressions(data: RenderInput) -> list[str]:
    if not data.suppressions:
        return []
    rows = [
        [
            _location(data, s.path, s.line),
            cell(s.kind),
            cell(s.reason),
            cell(s.ticket or ""),
            cell(s.expires or ""),
        ]
        for s in data.suppressions[:MAX_SUPPRESSIONS]
    ]
    lines = [
        "",
        "### Suppressions used",
        "",
        *_table(["Location", "Kind", "Reason", "Ticket", "Expires"], rows),
    ]
    if len(data.suppressions) > MAX_SUPPRESSIONS:
        more = len(data.suppressions) - MAX_SUPPRESSIONS
        lines += ["", f"… and {_plural(more, 'more suppression')}."]
    return lines


def render(data: RenderInput, *, color: bool = False) -> str:
    shown = [f for f in data.findings if not f.suppressed]
    suppressed = len(data.findings) - len(shown)
    verdict = "❌ failed" if _failed(data, shown) else "✅ passed"
    lines = [f"## kumo-audit: {verdict}", ""]
    if data.root not in ("", "."):
        lines += [f"Policy: {cell(data.root)}", ""]
    lines += _counts(data, shown, suppressed)
    lines += _findings(data, shown)
    lines += _reload(data)
    lines += _change(data)
    lines += _suppressions(data)
    return "\n".join(lines) + "\n"
