"""Builds the data that lets auditor.data.fast prove a data file valid without pydantic.

The pydantic models stay the authority: the spec mirrors their fields (by alias), required fields,
extra-key policy and value checks (the `Check` markers of base.py), and marks whatever it cannot
mirror as "unsure", which sends a file through pydantic. `auditor/data/fast_spec.json` is this
module's output, checked in and tested to be current:

    python -m auditor.data.schemas.fastspec > auditor/data/fast_spec.json
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.functional_validators import (
    AfterValidator,
    BeforeValidator,
    PlainValidator,
    WrapValidator,
)

from auditor.data.schemas import FORMATS
from auditor.data.schemas.base import Check

_VALIDATORS = (AfterValidator, BeforeValidator, PlainValidator, WrapValidator)
# model validators the fast validator repeats, by name (any other makes the model "unsure")
_KNOWN_MODEL_VALIDATORS = {"_exactly_one": "exactly_one_field"}


class _Builder:
    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] = {}
        self.names: dict[type[BaseModel], str] = {}

    def model(self, model: type[BaseModel]) -> str:
        if model in self.names:
            return self.names[model]
        name = model.__name__
        while name in self.models:
            name += "_"
        self.names[model] = name
        self.models[name] = {}  # placeholder: models may refer to themselves
        decorators = model.__pydantic_decorators__
        rules = [_KNOWN_MODEL_VALIDATORS.get(name) for name in decorators.model_validators]
        unsure = bool(
            None in rules
            or decorators.field_validators
            or decorators.validators
            or decorators.root_validators
        )
        fields: dict[str, Any] = {}
        required: list[str] = []
        for field_name, info in model.model_fields.items():
            key = info.alias or field_name
            annotation = info.annotation
            if info.metadata:
                annotation = typing.Annotated[(annotation, *info.metadata)]  # type: ignore[valid-type]
            fields[key] = self.type(annotation)
            if info.is_required():
                required.append(key)
        extra = model.model_config.get("extra") or "ignore"
        extra_type = None
        if extra == "allow":
            hints = typing.get_type_hints(model, include_extras=True)
            extra_hint = hints.get("__pydantic_extra__")
            args = typing.get_args(extra_hint) if extra_hint is not None else ()
            extra_type = self.type(args[1]) if len(args) == 2 else ["any"]
        self.models[name] = {
            "fields": fields,
            "required": required,
            "extra": extra,
            "extra_type": extra_type,
            "unsure": unsure,
            "rules": sorted(r for r in rules if r),
        }
        return name

    def type(self, tp: Any) -> list[Any]:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            inner, *meta = typing.get_args(tp)
            marks = [m for m in meta if isinstance(m, Check)]
            if marks:
                mark = marks[0]
                if mark.kind == "entry":
                    return ["entry", self.model(inner)]
                return [mark.kind, mark.ref, mark.optional]
            if any(isinstance(m, _VALIDATORS) for m in meta):
                return ["unsure"]
            return self.type(inner)
        if origin in (typing.Union, types.UnionType):
            args = typing.get_args(tp)
            options = [a for a in args if a is not type(None)]
            if len(options) == 1 and len(args) == 2:
                return ["opt", self.type(options[0])]
            return ["unsure"]
        if origin is dict:
            key, value = typing.get_args(tp)
            return ["dict", self.type(value)] if key is str else ["unsure"]
        if origin is list:
            return ["list", self.type(typing.get_args(tp)[0])]
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return ["model", self.model(tp)]
        if tp is Any:
            return ["any"]
        return ["unsure"]


def build_spec() -> dict[str, Any]:
    builder = _Builder()
    formats = {
        name: {
            "root": builder.model(spec.model),
            "domain_slots": [list(slot) for slot in spec.domain_slots],
            "not_domains": sorted(spec.not_domains),
        }
        for name, spec in FORMATS.items()
    }
    return {"formats": formats, "models": builder.models}


def render_spec() -> str:
    return json.dumps(build_spec(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render_spec(), end="")
