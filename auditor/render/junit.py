"""JUnit XML: the test-report format every CI system displays (GitLab, Jenkins, Azure, CircleCI, …).

One `<testsuite name="kumo-audit">` inside `<testsuites>`, with one `<testcase>` per finding:
`classname` is the file (relative to the repository root; `extra["path_prefix"]` is prepended) so
reports group by file, and `name` is `CODE line:col`. Errors and warnings are `<failure>`s (type
is the code, message the finding's message, the body says where, what and how to fix); infos pass
and carry their text in `<system-out>`; suppressed findings are `<skipped>` with the reason. A run
without findings has one passing test case, so the report is never empty. No timestamps: the
output is byte-identical for the same input.
"""

from __future__ import annotations

import re

from auditor.core.findings import Finding, Severity
from auditor.render.base import RenderInput
from auditor.render.location import repo_path

SUITE = "kumo-audit"
# Characters XML 1.0 cannot carry at all, even escaped.
_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def escape_text(text: str) -> str:
    return (
        _clean(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\r", "&#13;")
    )


def escape_attr(text: str) -> str:
    """Attribute values keep line breaks and tabs as character references (parsers fold them)."""
    return escape_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


def _attrs(pairs: list[tuple[str, str]]) -> str:
    return "".join(f' {key}="{escape_attr(value)}"' for key, value in pairs)


def _details(data: RenderInput, finding: Finding) -> str:
    span = finding.span
    lines = [
        f"{repo_path(data, finding.path)}:{span.line}:{span.column}: {finding.code} "
        f"{finding.name} [{finding.severity.value}]",
        finding.message,
    ]
    if finding.fix:
        lines.append(f"fix: {finding.fix}")
    lines.append(f"fingerprint: {finding.fingerprint}")
    return "\n".join(lines)


def testcase(data: RenderInput, finding: Finding) -> list[str]:
    """The XML lines of one finding's test case."""
    head = f"    <testcase{_attrs([('classname', repo_path(data, finding.path)), ('name', f'{finding.code} {finding.line}:{finding.column}'), ('time', '0')])}"
    if finding.suppressed:
        s = finding.suppression
        reason = f"suppressed ({s.kind}): {s.reason}" if s else "suppressed"
        return [f"{head}>", f"      <skipped{_attrs([('message', reason)])}/>", "    </testcase>"]
    if finding.severity is Severity.INFO:
        return [
            f"{head}>",
            f"      <system-out>{escape_text(_details(data, finding))}</system-out>",
            "    </testcase>",
        ]
    failure = _attrs([("message", finding.message), ("type", finding.code)])
    return [
        f"{head}>",
        f"      <failure{failure}>{escape_text(_details(data, finding))}</failure>",
        "    </testcase>",
    ]


def render(data: RenderInput, *, color: bool = False) -> str:
    findings = sorted(data.findings, key=Finding.sort_key)
    failures = sum(1 for f in findings if not f.suppressed and f.severity is not Severity.INFO)
    skipped = sum(1 for f in findings if f.suppressed)
    body: list[str] = []
    for finding in findings:
        body.extend(testcase(data, finding))
    tests = len(findings)
    if not findings:
        tests = 1
        body.append(
            f"    <testcase{_attrs([('classname', SUITE), ('name', 'no findings'), ('time', '0')])}/>"
        )
    counts = [
        ("tests", str(tests)),
        ("failures", str(failures)),
        ("errors", "0"),
        ("skipped", str(skipped)),
        ("time", "0"),
    ]
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f"<testsuites{_attrs([('name', SUITE), *counts])}>",
            f"  <testsuite{_attrs([('name', SUITE), *counts])}>",
            *body,
            "  </testsuite>",
            "</testsuites>",
            "",
        ]
    )
