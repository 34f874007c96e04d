"""Listener domain data (policy-extras.listener_domains): ListenerConfig of
assets/policy-extras/listener_domains.lua, whose keys are make_listener_domain's (EsmtpDomain in
crates/kumod/src/smtp_server.rs) plus the helper's relay_from_authz.

Every top-level key is a domain (or "*"), except [listener."<ip:port>"."<domain>"].
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field

from auditor.data.schemas.base import StrictModel, table_entry, typed

_DISPOSITION = "boolean|enum(Ignore|LogThenRelay|LogThenDrop)"


class ListenerDomain(StrictModel):
    section = "listener domain section"
    relay_to: typed("boolean") = None  # type: ignore[valid-type]
    relay_from: typed("cidr_list") = None  # type: ignore[valid-type]
    relay_from_authz: typed("list(string)") = None  # type: ignore[valid-type]
    log_oob: typed(_DISPOSITION) = None  # type: ignore[valid-type]
    log_arf: typed(_DISPOSITION) = None  # type: ignore[valid-type]
    ttl: typed("duration") = None  # type: ignore[valid-type]


class ListenerDomainsFile(StrictModel):
    model_config = ConfigDict(extra="allow")
    section = "listener domains file"
    dynamic_entry: ClassVar[str] = "domain"
    __pydantic_extra__: dict[str, table_entry(ListenerDomain, "domain")] = Field(init=False)  # type: ignore[valid-type]
    listener: dict[str, dict[str, ListenerDomain]] | None = None


DOMAIN_SLOTS: tuple[tuple[str | None, ...], ...] = ((None,), ("listener", "*", None))
NOT_DOMAINS: frozenset[str] = frozenset({"listener"})
