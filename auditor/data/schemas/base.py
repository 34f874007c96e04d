"""Building blocks of the helper data schemas: strict models and value checks from `values.py`.

Every value check raises a pydantic error of type ``invalid_value`` whose context carries the
sub-path of the offending element (so a finding can point at the bad list item, not the list).
A table entry that must be a table (a domain section, a tenant) but is a scalar raises
``unknown_field``: for the helpers it is an unknown key, not a bad value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from auditor.data.checks import Problem, check_trigger
from auditor.kumo.values import describe, find_type_error, is_unknown

CheckFn = Callable[[Any], Problem | None]
__all__ = ["Check", "StrictModel", "check_trigger", "checked", "table_entry", "typed"]


@dataclass(frozen=True, slots=True)
class Check:
    """What a value check is, as data: the fast validator (auditor.data.fast) runs it without
    pydantic. kind "type" (ref: a type expression), "fn" (ref: module:function of
    auditor.data.checks) or "entry" (a table keyed by a user-chosen name; ref: what it names)."""

    kind: str
    ref: str
    optional: bool = True


class StrictModel(BaseModel):
    """A helper record: unknown keys are errors (the helpers' typing records reject them)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False, frozen=False)

    # Human name of the section, used in messages ("shaping domain section").
    section: ClassVar[str] = "section"
    # True where KumoMTA silently ignores unknown keys instead of failing the load.
    ignores_unknown: ClassVar[bool] = False


def _raise(problem: Problem) -> None:
    subpath, message = problem
    raise PydanticCustomError(
        "invalid_value", "{message}", {"message": message, "subpath": subpath}
    )


def checked(check: CheckFn, *, optional: bool = True, marker: Check | None = None) -> Any:
    """An annotated `Any` whose value must pass `check` (None passes when `optional`)."""
    if marker is None:
        marker = Check("fn", f"{check.__module__}:{check.__qualname__}", optional)

    def validate(value: Any) -> Any:
        if is_unknown(value) or (optional and value is None):
            return value
        problem = check(value)
        if problem is not None:
            _raise(problem)
        return value

    return Annotated[Any, BeforeValidator(validate), marker]


def typed(type_expr: str, *, optional: bool = True) -> Any:
    """A value of the `values.check_type` grammar, e.g. ``typed("duration")``."""
    from pydantic import WithJsonSchema

    from auditor.kumo.types import json_schema  # the published JSON Schema shows the type

    value_type = checked(
        lambda value: find_type_error(type_expr, value),
        optional=optional,
        marker=Check("type", type_expr, optional),
    )
    return Annotated[value_type, WithJsonSchema(json_schema(type_expr))]


def table_entry(model: type[BaseModel], what: str) -> Any:
    """A table keyed by a user-chosen name (domain, tenant): a scalar there is an unknown key."""

    def validate(value: Any) -> Any:
        if not isinstance(value, dict) and not is_unknown(value):
            raise PydanticCustomError(
                "unknown_field",
                "{message}",
                {
                    "message": f"is {describe(value)}, but keys here name a {what} and must be tables"
                },
            )
        return value

    return Annotated[model, BeforeValidator(validate), Check("entry", what, False)]
