"""JSON output: the versioned contract of DESIGN.md (deterministic: sorted keys, stable order)."""

from __future__ import annotations

import json
from typing import Any

from auditor import __version__
from auditor.core.findings import Finding
from auditor.render.base import RenderInput

SCHEMA_VERSION = 1


def document(data: RenderInput) -> dict[str, Any]:
    findings = sorted(data.findings, key=Finding.sort_key)
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "kumo-audit", "version": __version__, **data.extra.get("tool", {})},
        "root": data.root,
        "findings": [f.as_dict() for f in findings],
        "suppressions": [s.as_dict() for s in data.suppressions],
        "reload": data.reload,
        "summary": data.summary,
    }
    if data.change is not None:
        change = dict(data.change)
        doc["introduced"] = change.pop("introduced", [])
        doc["resolved"] = change.pop("resolved", [])
        doc["change"] = change
    return doc


def render(data: RenderInput, *, color: bool = False) -> str:
    return json.dumps(document(data), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
