"""Egress sources data (policy-extras.sources): SourcesHelperConfig of assets/policy-extras/sources.lua.

[source."<name>"] takes every make_egress_source field; [pool."<pool>"."<source>"] takes only weight.
"""

from __future__ import annotations

from pydantic import create_model

from auditor.data.schemas.base import StrictModel, typed
from auditor.data.schemas.egress import egress_source_fields

SourceConfig = create_model(  # type: ignore[call-overload]
    "SourceConfig", __base__=StrictModel, **egress_source_fields()
)
SourceConfig.section = "egress source section"


class PoolSourceEntry(StrictModel):
    section = "pool entry"
    weight: typed("number") = None  # type: ignore[valid-type]


class SourcesFile(StrictModel):
    section = "sources file"
    source: dict[str, SourceConfig] | None = None
    pool: dict[str, dict[str, PoolSourceEntry]] | None = None


DOMAIN_SLOTS: tuple[tuple[str | None, ...], ...] = ()
NOT_DOMAINS: frozenset[str] = frozenset()
