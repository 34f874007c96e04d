"""Queue helper data (policy-extras.queue): the QueueHelperConfig records of assets/policy-extras/queue.lua.

[tenant.X] takes make_queue_config options plus require_authz, overall_max_message_rate and
campaigns (no routing_domain). [queue.'<domain>'] takes queue options plus overall_max_message_rate
and routing_domain; any other key there names a tenant table, and inside that any other key names
a campaign table.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field, create_model

from auditor.data.schemas.base import StrictModel, table_entry, typed
from auditor.data.schemas.egress import queue_fields

_SHARED = {
    "overall_max_message_rate": (typed("rate"), None),
    "routing_domain": (typed("string"), None),
}

CampaignConfig = create_model(  # type: ignore[call-overload]
    "CampaignConfig", __base__=StrictModel, **queue_fields(), **_SHARED
)
CampaignConfig.section = "queue campaign section"


class _TenantInDomainBase(StrictModel):
    model_config = ConfigDict(extra="allow")
    section = "queue tenant section"
    dynamic_entry: ClassVar[str] = "campaign"
    __pydantic_extra__: dict[str, table_entry(CampaignConfig, "campaign")] = Field(init=False)  # type: ignore[valid-type]


TenantInDomain = create_model(  # type: ignore[call-overload]
    "TenantInDomain",
    __base__=_TenantInDomainBase,
    campaigns=(dict[str, CampaignConfig] | None, None),
    **queue_fields(),
    **_SHARED,
)


class _DomainBase(StrictModel):
    model_config = ConfigDict(extra="allow")
    section = "queue domain section"
    dynamic_entry: ClassVar[str] = "tenant"
    __pydantic_extra__: dict[str, table_entry(TenantInDomain, "tenant")] = Field(init=False)  # type: ignore[valid-type]


DomainQueue = create_model(  # type: ignore[call-overload]
    "DomainQueue", __base__=_DomainBase, **queue_fields(), **_SHARED
)

TenantConfig = create_model(  # type: ignore[call-overload]
    "TenantConfig",
    __base__=StrictModel,
    require_authz=(typed("list(string)"), None),
    overall_max_message_rate=(typed("rate"), None),
    campaigns=(dict[str, CampaignConfig] | None, None),
    **queue_fields(),
)
TenantConfig.section = "queue tenant section"


class QueuesFile(StrictModel):
    section = "queue helper file"
    scheduling_header: typed("string") = None  # type: ignore[valid-type]
    tenant_header: typed("string") = None  # type: ignore[valid-type]
    remove_tenant_header: typed("boolean") = None  # type: ignore[valid-type]
    campaign_header: typed("string") = None  # type: ignore[valid-type]
    remove_campaign_header: typed("boolean") = None  # type: ignore[valid-type]
    default_tenant: typed("string") = None  # type: ignore[valid-type]
    tenant: dict[str, TenantConfig] | None = None
    queue: dict[str, DomainQueue] | None = None


DOMAIN_SLOTS: tuple[tuple[str | None, ...], ...] = (("queue", None),)
NOT_DOMAINS: frozenset[str] = frozenset({"default"})
