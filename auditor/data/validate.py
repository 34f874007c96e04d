"""Validate one helper data file (shaping, queues, sources, listener_domains, dkim) into findings.

E103 for files that do not parse, E301 for keys the helper's schema rejects, E302 for values of the
wrong type or outside their enum, E303 for TOML headers like `[gmail.com]` that nest tables instead
of naming one domain. Messages never contain a value (values may be secrets), only keys and types.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from auditor.core.findings import Finding, Span
from auditor.data.locate import (
    DataSyntaxError,
    Located,
    Path,
    TableHeader,
    load_located,
    render_path,
)
from auditor.data.result import DataResult
from auditor.data.schemas import FORMATS, DataFormat
from auditor.data.schemas.egress import SECRET_FIELDS
from auditor.kumo.values import describe
from auditor.rules.data import (
    DATA_INVALID_VALUE,
    DATA_SYNTAX_ERROR,
    DATA_UNKNOWN_FIELD,
    DATA_UNQUOTED_DOMAIN,
)


def detect_format(path: str) -> Literal["toml", "json"]:
    """TOML for names ending `.toml`, JSON for anything else (policy_utils.load_json_or_toml_file)."""
    return "toml" if path.endswith(".toml") else "json"


def validate_data(
    path: str,
    text: str | bytes,
    data_format: str,
    fmt: Literal["toml", "json"] | None = None,
) -> DataResult:
    """Parse and check `text` (the content of `path`) against the helper schema `data_format`."""
    spec = FORMATS.get(data_format)
    if spec is None:
        raise ValueError(
            f"unknown helper data format {data_format!r} (expected one of {', '.join(FORMATS)})"
        )
    fmt = fmt or detect_format(path)
    name = os.path.basename(path)
    try:
        located = load_located(text, fmt)
    except DataSyntaxError as err:
        finding = DATA_SYNTAX_ERROR.finding(
            path, Span.point(err.line, err.column), err.message, key=f"{name}:syntax"
        )
        return DataResult(None, None, [finding])
    findings = [
        DATA_SYNTAX_ERROR.finding(
            path, Span.point(p.line, p.column), p.message, key=f"{name}:{p.message}"
        )
        for p in located.problems
    ]
    shadowed: list[Path] = []
    if fmt == "toml":
        for header, domain_path, message in _unquoted_domains(located, spec):
            shadowed.append(domain_path)
            findings.append(
                DATA_UNQUOTED_DOMAIN.finding(path, header.span, message, key=f"{name}:{header.raw}")
            )
    try:
        spec.model.model_validate(located.value)
    except ValidationError as err:
        for error in err.errors(include_url=False, include_input=True):
            finding = _finding(path, name, spec, located, error)
            loc = tuple(error["loc"])
            if any(loc[: len(prefix)] == prefix for prefix in shadowed):
                continue
            findings.append(finding)
    except RecursionError:
        findings.append(
            DATA_SYNTAX_ERROR.finding(
                path,
                Span.point(1, 1),
                "the data is nested too deeply to be checked",
                key=f"{name}:depth",
            )
        )
    findings.sort(key=Finding.sort_key)
    return DataResult(located.value, located, findings)


# ---------------------------------------------------------------------------------------------
# pydantic errors -> findings


def _finding(path: str, name: str, spec: DataFormat, located: Located, error: Any) -> Finding:
    loc: Path = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    key = f"{name}:{render_path(loc)}"
    parent = _model_at(spec.model, loc[:-1]) if loc else None
    where = _where(parent, loc[:-1])
    if kind in ("extra_forbidden", "unknown_field"):
        field_name = str(loc[-1])
        message = f"unknown field '{field_name}' in {where}"
        if kind == "unknown_field":
            message = f"unknown field '{field_name}' in {where}: it {ctx.get('message', '')}"
        elif parent is not None and getattr(parent, "ignores_unknown", False):
            message += " (KumoMTA ignores it, so the setting has no effect)"
        suggestion = _closest(field_name, _keys_of(parent))
        if suggestion:
            message += f"; did you mean '{suggestion}'?"
        return DATA_UNKNOWN_FIELD.finding(path, located.key_span(loc), message, key=key)
    if kind == "missing":
        owner = _model_at(spec.model, loc[:-1])
        message = f"missing required field '{loc[-1]}' in {_where(owner, loc[:-1])}"
        return DATA_INVALID_VALUE.finding(path, located.key_span(loc[:-1]), message, key=key)
    field_label = _field_label(loc)
    if kind == "invalid_value":
        subpath = tuple(ctx.get("subpath") or ())
        detail = ctx.get("message", error["msg"])
        if _is_secret(loc, subpath, error.get("input")):
            detail = "the value is not valid here (its content is not shown: it may be a secret)"
        message = f"invalid value for {field_label}: {detail}"
        span = located.value_span(loc + subpath)
        return DATA_INVALID_VALUE.finding(path, span, message, key=key)
    expected = _EXPECTED_SHAPES.get(kind)
    if expected:
        message = f"invalid value for {field_label}: expected {expected}, got {describe(error.get('input'))}"
    else:
        message = f"invalid value for {field_label}: {error['msg']}"
    return DATA_INVALID_VALUE.finding(path, located.value_span(loc), message, key=key)


def _is_secret(loc: Path, subpath: Path, value: Any) -> bool:
    """True if the value sits under a credential field (directly or as a SetConfig value)."""
    if any(part in SECRET_FIELDS for part in loc):
        return True
    if "value" in subpath and isinstance(value, list | dict):
        names = value if isinstance(value, list) else [value]
        for item in names:
            if isinstance(item, dict):
                for body in item.values():
                    if isinstance(body, dict) and body.get("name") in SECRET_FIELDS:
                        return True
    return False


_EXPECTED_SHAPES = {
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dict_type": "a table",
    "list_type": "a list",
}


def _field_label(loc: Path) -> str:
    if not loc:
        return "the file"
    return f"'{render_path(loc)}'"


def _where(model: type[BaseModel] | None, loc: Path) -> str:
    section = getattr(model, "section", None) or "section"
    if not loc:
        return f"the {section}"
    return f"{section} {render_path(loc)}"


def _closest(word: str, choices: list[str]) -> str | None:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if found:
        return found[0]
    containing = sorted((c for c in choices if len(word) >= 3 and word in c), key=len)
    return containing[0] if containing else None


def _keys_of(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = (
                options[0]
                if len(options) == 1
                else next(
                    (a for a in options if isinstance(a, type) and issubclass(a, BaseModel)), Any
                )
            )
        else:
            return tp


def _extra_type(model: type[BaseModel]) -> Any:
    try:
        hints = typing.get_type_hints(model, include_extras=True)
    except (NameError, TypeError):
        return None
    extra = hints.get("__pydantic_extra__")
    if extra is None or model.model_config.get("extra") != "allow":
        return None
    args = typing.get_args(_unwrap(extra))
    return args[1] if len(args) == 2 else None


def _model_at(root: type[BaseModel], loc: Path) -> type[BaseModel] | None:
    """The model class that validates the table at `loc` (None if it is not a model)."""
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = {f.alias or n: f for n, f in tp.model_fields.items()}
            if isinstance(part, str) and part in fields:
                tp = fields[part].annotation
            else:
                tp = _extra_type(tp)
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        else:
            return None
        if tp is None:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


# ---------------------------------------------------------------------------------------------
# E303


def _unquoted_domains(located: Located, spec: DataFormat) -> list[tuple[TableHeader, Path, str]]:
    """Headers whose unquoted dotted domain TOML split into nested tables."""
    out = []
    for header in located.headers:
        segments = header.segments
        for pattern in spec.domain_slots:
            slot = len(pattern) - 1
            if len(segments) <= slot + 1:
                continue
            if any(
                p not in (None, "*") and segments[i].text != p for i, p in enumerate(pattern[:-1])
            ):
                continue
            first = segments[slot]
            if first.quoted or first.text in spec.not_domains:
                continue
            entry = _model_at(spec.model, tuple(s.text for s in segments[: slot + 1]))
            known = set(_keys_of(entry))
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
