"""Proves a helper data file valid without pydantic, from `fast_spec.json` (generated from the
pydantic models by auditor.data.schemas.fastspec).

`proven_valid` answers True only when every key and value passes the same checks the models run;
anything else (an error, or a construct the spec marks "unsure") answers False, and the caller
validates with pydantic, which then finds the exact errors. Valid files, the common case, never
load pydantic.
"""

from __future__ import annotations

import importlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from auditor.kumo.values import find_type_error, is_unknown

SPEC_FILE = Path(__file__).with_name("fast_spec.json")


@cache
def spec() -> dict[str, Any]:
    return json.loads(SPEC_FILE.read_text(encoding="utf-8"))


def formats() -> list[str]:
    return list(spec()["formats"])


def format_spec(data_format: str) -> dict[str, Any] | None:
    return spec()["formats"].get(data_format)


@cache
def _function(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def _check_passes(kind: str, ref: str, optional: bool, value: Any) -> bool:
    if is_unknown(value) or (optional and value is None):
        return True
    if kind == "type":
        return find_type_error(ref, value) is None
    return _function(ref)(value) is None


def proven_valid(value: Any, data_format: str) -> bool:
    """True when `value` (the parsed file) certainly passes the helper's schema."""
    fmt = format_spec(data_format)
    if fmt is None:
        return False
    models = spec()["models"]
    stack: list[tuple[Any, list[Any]]] = [(value, ["model", fmt["root"]])]
    while stack:
        current, tp = stack.pop()
        kind = tp[0]
        if kind == "any":
            continue
        if kind in ("type", "fn"):
            if not _check_passes(kind, tp[1], tp[2], current):
                return False
        elif kind == "opt":
            if current is not None:
                stack.append((current, tp[1]))
        elif kind == "dict":
            if type(current) is not dict:
                return False
            stack.extend((item, tp[1]) for item in current.values())
        elif kind == "list":
            if type(current) is not list:
                return False
            stack.extend((item, tp[1]) for item in current)
        elif kind in ("model", "entry"):
            model = models[tp[1]]
            if type(current) is not dict or model["unsure"]:
                return False
            fields = model["fields"]
            for key in model["required"]:
                if key not in current:
                    return False
            if "exactly_one_field" in model["rules"] and len(fields.keys() & current.keys()) != 1:
                return False
            for key, item in current.items():
                field = fields.get(key)
                if field is not None:
                    stack.append((item, field))
                elif model["extra"] == "forbid":
                    return False
                elif model["extra"] == "allow" and model["extra_type"] is not None:
                    stack.append((item, model["extra_type"]))
        else:  # "unsure"
            return False
    return True


def model_at(data_format: str, loc: tuple[Any, ...]) -> str | None:
    """The model that validates the table at `loc` (None when it is not a model)."""
    fmt = format_spec(data_format)
    if fmt is None:
        return None
    models = spec()["models"]
    tp: list[Any] | None = ["model", fmt["root"]]
    for part in loc:
        tp = _unwrap(tp)
        if tp is None:
            return None
        if tp[0] in ("model", "entry"):
            model = models[tp[1]]
            field = model["fields"].get(part) if isinstance(part, str) else None
            tp = field if field is not None else model["extra_type"]
        elif tp[0] in ("dict", "list"):
            tp = tp[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp[1] if tp is not None and tp[0] in ("model", "entry") else None


def _unwrap(tp: list[Any] | None) -> list[Any] | None:
    while tp is not None and tp[0] == "opt":
        tp = tp[1]
    return tp


def keys_of(model: str | None) -> list[str]:
    return [] if model is None else list(spec()["models"][model]["fields"])
