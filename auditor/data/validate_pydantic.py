"""pydantic validation of a helper data file, and its errors turned into findings (E301, E302).

Loaded only for a file that auditor.data.fast could not prove valid.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from auditor.core.data_codes import DATA_INVALID_VALUE, DATA_SYNTAX_ERROR, DATA_UNKNOWN_FIELD
from auditor.core.findings import Finding, Span
from auditor.data.locate import KeyPath, Located, render_path
from auditor.data.schemas import FORMATS, DataFormat
from auditor.data.schemas.egress import SECRET_FIELDS
from auditor.kumo.values import describe


def schema_findings(
    path: str, name: str, data_format: str, located: Located, shadowed: list[KeyPath]
) -> list[Finding]:
    """Every schema error of the file, except those under a header reported as E303."""
    spec = FORMATS[data_format]
    findings: list[Finding] = []
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
    return findings


def _finding(path: str, name: str, spec: DataFormat, located: Located, error: Any) -> Finding:
    loc: KeyPath = tuple(error["loc"])
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


def _is_secret(loc: KeyPath, subpath: KeyPath, value: Any) -> bool:
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


def _field_label(loc: KeyPath) -> str:
    if not loc:
        return "the file"
    return f"'{render_path(loc)}'"


def _where(model: type[BaseModel] | None, loc: KeyPath) -> str:
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


def _model_at(root: type[BaseModel], loc: KeyPath) -> type[BaseModel] | None:
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
