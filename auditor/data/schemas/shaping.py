"""Shaping data (policy-extras.shaping / kumo.shaping.load): crates/kumo-api-types/src/shaping.rs.

Top level: ["default"], any other key is a domain section, plus [provider."<name>"]. Domain,
default and provider sections take every egress-path field (one bad key or value fails the whole
load) plus their own keys; `sources` sub-tables take egress-path fields too.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

from auditor.data.checks import CONFIG_ACTIONS, SIMPLE_ACTIONS, check_action, check_trigger
from auditor.data.schemas.base import StrictModel, checked, table_entry, typed
from auditor.data.schemas.egress import EGRESS_PATH_TYPES, EgressPathFields, fields_of

__all__ = ["CONFIG_ACTIONS", "SIMPLE_ACTIONS", "check_action"]


class AutomationRule(StrictModel):
    section = "automation rule"
    ignores_unknown = True  # shaping::Rule has no deny_unknown_fields
    regex: typed("string|list(string)", optional=False)  # type: ignore[valid-type]
    action: checked(check_action, optional=False)  # type: ignore[valid-type]
    trigger: checked(check_trigger) = None  # type: ignore[valid-type]
    duration: typed("duration", optional=False)  # type: ignore[valid-type]
    match_internal: typed("boolean") = None  # type: ignore[valid-type]


class ProviderMatch(StrictModel):
    section = "provider match rule"
    MXSuffix: typed("string") = None  # type: ignore[valid-type]
    DomainSuffix: typed("string") = None  # type: ignore[valid-type]
    HostName: typed("string") = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _exactly_one(self) -> ProviderMatch:
        if len(self.model_fields_set) != 1:
            raise PydanticCustomError(
                "invalid_value",
                "{message}",
                {
                    "message": "each match rule has exactly one of MXSuffix, DomainSuffix or "
                    "HostName",
                    "subpath": (),
                },
            )
        return self


DomainSource = create_model(  # type: ignore[call-overload]
    "DomainSource",
    __base__=EgressPathFields,
    **fields_of(EGRESS_PATH_TYPES),
)
DomainSource.section = "shaping source section"

ProviderSource = create_model(  # type: ignore[call-overload]
    "ProviderSource",
    __base__=EgressPathFields,
    provider_source_selection_rate=(typed("rate"), None),
    **fields_of(EGRESS_PATH_TYPES),
)
ProviderSource.section = "shaping provider source section"

DomainEntry = create_model(  # type: ignore[call-overload]
    "DomainEntry",
    __base__=EgressPathFields,
    mx_rollup=(typed("boolean"), None),
    replace_base=(typed("boolean"), None),
    automation=(list[AutomationRule] | None, None),
    sources=(dict[str, DomainSource] | None, None),
    **fields_of(EGRESS_PATH_TYPES),
)
DomainEntry.section = "shaping domain section"

ProviderEntry = create_model(  # type: ignore[call-overload]
    "ProviderEntry",
    __base__=EgressPathFields,
    provider_connection_limit=(typed("limit"), None),
    provider_max_message_rate=(typed("rate"), None),
    match_=(
        list[ProviderMatch] | None,
        Field(None, alias="match"),
    ),
    replace_base=(typed("boolean"), None),
    automation=(list[AutomationRule] | None, None),
    sources=(dict[str, ProviderSource] | None, None),
    **fields_of(EGRESS_PATH_TYPES),
)
ProviderEntry.section = "shaping provider section"


class ShapingFile(StrictModel):
    """A whole shaping file; every key other than `provider` is a domain (or "default")."""

    model_config = ConfigDict(extra="allow")
    section = "shaping file"
    dynamic_entry: ClassVar[str] = "domain"
    __pydantic_extra__: dict[str, table_entry(DomainEntry, "domain")] = Field(init=False)  # type: ignore[valid-type]
    provider: dict[str, ProviderEntry] | None = None


# E303: header positions that name a domain (index into the header's key segments).
DOMAIN_SLOTS: tuple[tuple[str | None, ...], ...] = ((None,),)
NOT_DOMAINS = frozenset({"provider"})
