"""Field types of the Rust structs that helper data feeds: egress paths, queues, egress sources.

Mirrors crates/kumo-api-types/src/egress_path.rs (EgressPathConfig, with the flattened
SmtpClientTimeouts), crates/kumod/src/queue/config.rs (QueueConfig) and
crates/kumod/src/egress_source.rs (EgressSource); all of them deny unknown fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import create_model

from auditor.data.checks import EGRESS_PATH_TYPES, check_trigger
from auditor.data.schemas.base import StrictModel, checked, typed

# Fields whose values are credentials: messages name them, never print them.
SECRET_FIELDS = frozenset({"smtp_auth_plain_password", "socks5_proxy_password", "tls_private_key"})


def fields_of(types: dict[str, str]) -> dict[str, Any]:
    """pydantic field definitions (all optional) for a name -> type-expression table."""
    return {name: (typed(expr), None) for name, expr in types.items()}


class EgressPathFields(StrictModel):
    """Marker base: a model whose keys include every `kumo.make_egress_path` field."""

    section = "egress path"


EgressPath = create_model(  # type: ignore[call-overload]
    "EgressPath", __base__=EgressPathFields, **fields_of(EGRESS_PATH_TYPES)
)


class ShrinkPolicy(StrictModel):
    section = "queue shrink_policy entry"
    interval: typed("duration", optional=False)  # type: ignore[valid-type]
    policy: typed("enum(ShrinkDataAndMeta|ShrinkData|NoShrink)", optional=False)  # type: ignore[valid-type]


QUEUE_CONFIG_TYPES: dict[str, str] = {
    "retry_interval": "duration",
    "max_retry_interval": "duration",
    "max_age": "duration",
    "egress_pool": "string",
    "max_message_rate": "rate",
    "protocol": "table",
    "reap_interval": "duration",
    "refresh_interval": "duration",
    "timerwheel_tick_interval": "duration",
    "strategy": "enum(TimerWheel|SkipList|SingletonTimerWheel|SingletonTimerWheelV2)",
    "refresh_strategy": "enum(Ttl|Epoch)",
    "provider_name": "string",
}


def queue_fields() -> dict[str, Any]:
    """Every `kumo.make_queue_config` option as a field definition."""
    return {**fields_of(QUEUE_CONFIG_TYPES), "shrink_policy": (list[ShrinkPolicy] | None, None)}


class SuspendOnFailure(StrictModel):
    section = "egress source suspension"
    trigger: checked(check_trigger) = None  # type: ignore[valid-type]
    duration: typed("duration", optional=False)  # type: ignore[valid-type]


EGRESS_SOURCE_TYPES: dict[str, str] = {
    "name": "string",
    "ehlo_domain": "string",
    "source_address": "ip",
    "remote_port": "port",
    "ha_proxy_server": "socket_address",
    "ha_proxy_source_address": "ip",
    "socks5_proxy_server": "socket_address",
    "socks5_proxy_source_address": "ip",
    "socks5_proxy_username": "string",
    "socks5_proxy_password": "key_source",
    "ttl": "duration",
}


def egress_source_fields() -> dict[str, Any]:
    """Every `kumo.make_egress_source` field as a field definition."""
    return {
        **fields_of(EGRESS_SOURCE_TYPES),
        "suspend_when_unplumbed": (SuspendOnFailure | None, None),
        "suspend_when_proxy_unhealthy": (SuspendOnFailure | None, None),
    }
