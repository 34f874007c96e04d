"""Pydantic schemas of the policy-extras helper data files, one module per helper format."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from auditor.data.schemas import dkim, listener_domains, queues, shaping, sources


@dataclass(frozen=True, slots=True)
class DataFormat:
    """One helper data format: its root model and where its TOML headers name domains.

    `domain_slots` are key-segment patterns: a string must match that segment, "*" matches any,
    and None marks the segment that is a domain name (for E303).
    """

    name: str
    model: type[BaseModel]
    domain_slots: tuple[tuple[str | None, ...], ...]
    not_domains: frozenset[str]


FORMATS: dict[str, DataFormat] = {
    "shaping": DataFormat(
        "shaping", shaping.ShapingFile, shaping.DOMAIN_SLOTS, shaping.NOT_DOMAINS
    ),
    "queues": DataFormat("queues", queues.QueuesFile, queues.DOMAIN_SLOTS, queues.NOT_DOMAINS),
    "sources": DataFormat(
        "sources", sources.SourcesFile, sources.DOMAIN_SLOTS, sources.NOT_DOMAINS
    ),
    "listener_domains": DataFormat(
        "listener_domains",
        listener_domains.ListenerDomainsFile,
        listener_domains.DOMAIN_SLOTS,
        listener_domains.NOT_DOMAINS,
    ),
    "dkim": DataFormat("dkim", dkim.DkimFile, dkim.DOMAIN_SLOTS, dkim.NOT_DOMAINS),
}
