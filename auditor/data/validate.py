"""Validate one helper data file (shaping, queues, sources, listener_domains, dkim) into findings.

E103 for files that do not parse, E301 for keys the helper's schema rejects, E302 for values of the
wrong type or outside their enum, E303 for TOML headers like `[gmail.com]` that nest tables instead
of naming one domain. Messages never contain a value (values may be secrets), only keys and types.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Literal

from auditor.core.data_codes import (
    DATA_SYNTAX_ERROR,
    DATA_UNQUOTED_DOMAIN,
)
from auditor.core.findings import Finding, Span
from auditor.core.load_codes import UNREADABLE_FILE
from auditor.data import fast
from auditor.data.locate import (
    DataSyntaxError,
    DataTooComplex,
    KeyPath,
    Located,
    TableHeader,
    load_located,
)
from auditor.data.result import DataResult


def detect_format(path: str) -> Literal["toml", "json"]:
    """TOML for names ending `.toml`, JSON for anything else (policy_utils.load_json_or_toml_file)."""
    return "toml" if path.endswith(".toml") else "json"


def unloadable_finding(path: str, err: DataSyntaxError, key: str) -> Finding:
    """E103 for a data file that does not parse; E102 for one over the per-file budget."""
    if isinstance(err, DataTooComplex):
        return UNREADABLE_FILE.finding(
            path, Span.point(err.line, err.column), err.message, key=path
        )
    return DATA_SYNTAX_ERROR.finding(path, Span.point(err.line, err.column), err.message, key=key)


def validate_data(
    path: str,
    text: str | bytes,
    data_format: str,
    fmt: Literal["toml", "json"] | None = None,
) -> DataResult:
    """Parse and check `text` (the content of `path`) against the helper schema `data_format`."""
    spec = fast.format_spec(data_format)
    if spec is None:
        raise ValueError(
            f"unknown helper data format {data_format!r} "
            f"(expected one of {', '.join(fast.formats())})"
        )
    fmt = fmt or detect_format(path)
    name = os.path.basename(path)
    try:
        located = load_located(text, fmt)
    except DataSyntaxError as err:
        return DataResult(None, None, [unloadable_finding(path, err, f"{name}:syntax")])
    findings = [
        DATA_SYNTAX_ERROR.finding(
            path, Span.point(p.line, p.column), p.message, key=f"{name}:{p.message}"
        )
        for p in located.problems
    ]
    shadowed: list[KeyPath] = []
    if fmt == "toml":
        for header, domain_path, message in _unquoted_domains(located, data_format, spec):
            shadowed.append(domain_path)
            findings.append(
                DATA_UNQUOTED_DOMAIN.finding(path, header.span, message, key=f"{name}:{header.raw}")
            )
    try:
        valid = fast.proven_valid(located.value, data_format)
    except RecursionError:
        valid = False
    if not valid:
        from auditor.data.validate_pydantic import schema_findings  # only for a file with problems

        findings.extend(schema_findings(path, name, data_format, located, shadowed))
    findings.sort(key=Finding.sort_key)
    return DataResult(located.value, located, findings)


# ---------------------------------------------------------------------------------------------
# E303


def _unquoted_domains(
    located: Located, data_format: str, spec: dict[str, Any]
) -> list[tuple[TableHeader, KeyPath, str]]:
    """Headers whose unquoted dotted domain TOML split into nested tables."""
    out = []
    for header in located.headers:
        segments = header.segments
        for pattern in spec["domain_slots"]:
            slot = len(pattern) - 1
            if len(segments) <= slot + 1:
                continue
            if any(
                p not in (None, "*") and segments[i].text != p for i, p in enumerate(pattern[:-1])
            ):
                continue
            first = segments[slot]
            if first.quoted or first.text in spec["not_domains"]:
                continue
            entry = fast.model_at(data_format, tuple(s.text for s in segments[: slot + 1]))
            known = set(fast.keys_of(entry))
            labels = [first.text]
            for segment in segments[slot + 1 :]:
                if segment.quoted or segment.text in known:
                    break
                labels.append(segment.text)
            if len(labels) < 2:
                continue
            domain = ".".join(labels)
            rest = segments[slot + len(labels) :]
            fixed = [_render_segment(s.text, s.quoted) for s in segments[:slot]]
            key_text = ".".join(
                [*fixed, json.dumps(domain), *(_render_segment(s.text, s.quoted) for s in rest)]
            )
            brackets = ("[[", "]]") if header.is_array else ("[", "]")
            suggestion = f"{brackets[0]}{key_text}{brackets[1]}"
            nested = " -> ".join(repr(label) for label in labels)
            message = (
                f"{header.raw} is read by TOML as nested tables {nested}, not as the domain "
                f"'{domain}'; quote the domain: {suggestion}"
            )
            out.append((header, tuple(s.text for s in segments[: slot + 1]), message))
            break
    return out


def _render_segment(text: str, quoted: bool) -> str:
    return json.dumps(text) if quoted or not re.fullmatch(r"[A-Za-z0-9_-]+", text) else text
