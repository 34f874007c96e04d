"""SARIF 2.1.0 output for code-scanning services (GitHub code scanning, Azure DevOps, SonarQube, …).

One run. `tool.driver.rules` lists the rules that have results in this run (suppressed ones
included), sorted by code, each with its full documentation, so the log is self-describing
without listing the whole catalog; `ruleIndex` points into that list. Columns count Unicode
code points (`columnKind`), and `endColumn` is the column after the last character, as in
`Finding.span`. Suppressed findings are kept, marked with `suppressions`, so a code-scanning
service shows them as dismissed rather than fixed.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from auditor import __version__
from auditor.core.findings import Finding, Severity, Suppression
from auditor.render.base import RenderInput
from auditor.render.location import repo_path

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "kumoAudit/v1"

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
# Comments in the audited files are "in source"; waivers and baselines live elsewhere.
SUPPRESSION_KINDS = {"inline": "inSource", "file": "inSource"}


def document(data: RenderInput) -> dict[str, Any]:
    """The SARIF log as a plain dict (what `render` serialises)."""
    findings = sorted(data.findings, key=Finding.sort_key)
    rules = _rules_for(findings)
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    driver: dict[str, Any] = {
        "name": "kumo-audit",
        "version": __version__,
        "semanticVersion": __version__,
    }
    uri = data.extra.get("information_uri")
    if uri:
        driver["informationUri"] = str(uri)
    driver["rules"] = rules
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "columnKind": "unicodeCodePoints",
        "results": [_result(data, f, index[f.code]) for f in findings],
    }
    mode = data.extra.get("tool", {}).get("mode")
    if mode and mode != "policy":  # a module, a snippet or a data file audited on its own
        from auditor.render.text import mode_label

        run["properties"] = {"auditMode": mode, "auditModeDescription": mode_label(mode)}
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def render(data: RenderInput, *, color: bool = False) -> str:
    return json.dumps(document(data), indent=2, ensure_ascii=False) + "\n"


def _rules_for(findings: list[Finding]) -> list[dict[str, Any]]:
    from auditor.rules.registry import get

    first: dict[str, Finding] = {}
    for finding in findings:
        first.setdefault(finding.code, finding)
    descriptors = []
    for code in sorted(first):
        registered = get(code)
        if registered is not None:
            descriptors.append(rule_descriptor(registered.meta))
        else:
            descriptors.append(_unregistered_descriptor(first[code]))
    return descriptors


def rule_descriptor(meta: Any) -> dict[str, Any]:
    """A SARIF reportingDescriptor built from a rule's registry metadata (`RuleMeta`)."""
    lang = "" if meta.category == "data" else "lua"
    text_parts = [meta.doc]
    md_parts = [meta.doc]
    if meta.bad:
        text_parts.append(f"Bad:\n{meta.bad}")
        md_parts.append(f"**Bad**\n\n{_fenced(meta.bad, lang)}")
    if meta.good:
        text_parts.append(f"Good:\n{meta.good}")
        md_parts.append(f"**Good**\n\n{_fenced(meta.good, lang)}")
    if meta.fix:
        text_parts.append(f"Fix: {meta.fix}")
        md_parts.append(f"**Fix:** {meta.fix}")
    tags = [meta.category]
    if not meta.suppressible:
        tags.append("not-suppressible")
    return {
        "id": meta.code,
        "name": meta.name,
        "shortDescription": {"text": meta.summary},
        "fullDescription": {"text": meta.doc or meta.summary},
        "help": {
            "text": "\n\n".join(p for p in text_parts if p),
            "markdown": "\n\n".join(md_parts),
        },
        "defaultConfiguration": {"level": LEVELS[meta.severity]},
        "properties": {"tags": tags},
    }


def _unregistered_descriptor(finding: Finding) -> dict[str, Any]:
    """A code not in the registry still needs a descriptor for `ruleIndex` to point at."""
    descriptor: dict[str, Any] = {"id": finding.code}
    if finding.name:
        descriptor["name"] = finding.name
    descriptor["shortDescription"] = {"text": finding.name or finding.code}
    descriptor["defaultConfiguration"] = {"level": LEVELS[finding.severity]}
    return descriptor


def _fenced(code: str, lang: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{code}\n{fence}"


def _region(finding: Finding) -> dict[str, int]:
    span = finding.span
    start_line = max(1, span.line)
    start_col = max(1, span.column)
    end_line = max(start_line, span.end_line)
    end_col = max(1, span.end_column)
    if end_line == start_line:
        end_col = max(start_col, end_col)
    return {
        "startLine": start_line,
        "startColumn": start_col,
        "endLine": end_line,
        "endColumn": end_col,
    }


def _suppression(suppression: Suppression | None) -> dict[str, Any]:
    if suppression is None:
        return {"kind": "external", "status": "accepted"}
    out: dict[str, Any] = {
        "kind": SUPPRESSION_KINDS.get(suppression.kind, "external"),
        "status": "accepted",
    }
    if suppression.reason:
        out["justification"] = suppression.reason
    props = {
        k: v
        for k, v in (
            ("suppressionKind", suppression.kind),
            ("ticket", suppression.ticket),
            ("expires", suppression.expires),
        )
        if v
    }
    if props:
        out["properties"] = props
    return out


def _result(data: RenderInput, finding: Finding, rule_index: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": finding.message or finding.name or finding.code},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {
                        "uri": quote(repo_path(data, finding.path), safe="/"),
                        "uriBaseId": SRCROOT,
                    },
                    "region": _region(finding),
                }
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
    }
    if finding.suppressed:
        result["suppressions"] = [_suppression(finding.suppression)]
    if finding.fix:
        result["properties"] = {"fix": finding.fix}
    return result
