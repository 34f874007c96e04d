"""Field types of the Rust structs that helper data feeds: egress paths, queues, egress sources.

Mirrors crates/kumo-api-types/src/egress_path.rs (EgressPathConfig, with the flattened
SmtpClientTimeouts), crates/kumod/src/queue/config.rs (QueueConfig) and
crates/kumod/src/egress_source.rs (EgressSource); all of them deny unknown fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import create_model

from auditor.data.schemas.base import StrictModel, check_trigger, checked, typed

_TIMEOUTS = (
    "connect_timeout",
    "banner_timeout",
    "ehlo_timeout",
    "mail_from_timeout",
    "rcpt_to_timeout",
    "data_timeout",
    "data_dot_timeout",
    "rset_timeout",
    "idle_timeout",
    "starttls_timeout",
    "auth_timeout",
)

EGRESS_PATH_TYPES: dict[str, str] = {
    "connection_limit": "limit",
    "additional_connection_limits": "map(limit)",
    "enable_tls": "enum(Opportunistic|OpportunisticInsecure|Required|RequiredInsecure|Disabled)",
    "enable_mta_sts": "boolean",
    "enable_dane": "boolean",
    "enable_pipelining": "boolean",
    "enable_rset": "boolean",
    "tls_prefer_openssl": "boolean",
    "tls_certificate": "key_source",
    "tls_private_key": "key_source",
    "openssl_cipher_list": "string",
    "openssl_cipher_suites": "string",
    "openssl_options": "string",
    "rustls_cipher_suites": "list(string)",
    **{name: "duration" for name in _TIMEOUTS},
    "system_shutdown_timeout": "duration",
    "max_ready": "unsigned",
    "consecutive_connection_failures_before_delay": "unsigned",
    "smtp_port": "port",
    "smtp_auth_plain_username": "string",
    "smtp_auth_plain_password": "key_source",
    "allow_smtp_auth_plain_without_tls": "boolean",
    "allow_smtp_auth_plain_without_valid_certificate": "boolean",
    "max_message_rate": "rate",
    "additional_message_rate_throttles": "map(rate)",
    "source_selection_rate": "rate",
    "additional_source_selection_rates": "map(rate)",
    "max_connection_rate": "rate",
    "max_deliveries_per_connection": "unsigned",
    "max_recipients_per_batch": "unsigned",
    "prohibited_hosts": "cidr_list",
    "skip_hosts": "cidr_list",
    "ip_lookup_strategy": "enum(Ipv4Only|Ipv6Only|Ipv4AndIpv6|Ipv6ThenIpv4|Ipv4ThenIpv6)",
    "ehlo_domain": "string",
    "aggressive_connection_opening": "boolean",
    "refresh_interval": "duration",
    "refresh_strategy": "enum(Ttl|Epoch)",
    "dispatcher_wakeup_strategy": "enum(Aggressive|Relaxed)",
    "maintainer_wakeup_strategy": "enum(Aggressive|Relaxed)",
    "provider_name": "string",
    "remember_broken_tls": "duration",
    "opportunistic_tls_reconnect_on_failed_handshake": "boolean",
    "use_lmtp": "boolean",
    "reconnect_strategy": "enum(TerminateSession|ReconnectSameHost|ConnectNextHost)",
    "readyq_pool_name": "string",
    "low_memory_reduction_policy": "enum(ShrinkDataAndMeta|ShrinkData|NoShrink)",
    "no_memory_reduction_policy": "enum(ShrinkDataAndMeta|ShrinkData|NoShrink)",
    "try_next_host_on_transport_error": "boolean",
    "ignore_8bit_checks": "boolean",
    "dispatcher_progress_watchdog_timeout": "duration",
}

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
