"""GitLab Code Quality report (a Code Climate subset), shown in merge requests.

A JSON list of issues `{type, check_name, description, fingerprint, severity, location: {path,
lines: {begin, end}}}`. Severities map error -> critical, warning -> major, info -> info. GitLab
compares reports of the source and target branch by fingerprint, so the finding's line-independent
fingerprint is used (made unique within the report if two findings share one). Paths are relative
to the repository root (`extra["path_prefix"]` is prepended). Suppressed findings are left out:
GitLab has no notion of an accepted issue.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from auditor.core.findings import Finding, Severity
from auditor.render.base import RenderInput
from auditor.render.location import repo_path

SEVERITIES = {Severity.ERROR: "critical", Severity.WARNING: "major", Severity.INFO: "info"}


def issues(data: RenderInput) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for finding in sorted(data.findings, key=Finding.sort_key):
        if finding.suppressed:
            continue
        fingerprint = finding.fingerprint
        n = 0
        while fingerprint in seen:
            n += 1
            fingerprint = hashlib.sha256(f"{finding.fingerprint}#{n}".encode()).hexdigest()[:16]
        seen.add(fingerprint)
        begin = max(1, finding.span.line)
        out.append(
            {
                "type": "issue",
                "check_name": finding.code,
                "description": f"{finding.code} {finding.message}".strip(),
                "fingerprint": fingerprint,
                "severity": SEVERITIES[finding.severity],
                "location": {
                    "path": repo_path(data, finding.path),
                    "lines": {"begin": begin, "end": max(begin, finding.span.end_line)},
                },
            }
        )
    return out


def render(data: RenderInput, *, color: bool = False) -> str:
    return json.dumps(issues(data), indent=2, ensure_ascii=False) + "\n"
