"""Value checks of the helper data schemas that are plain functions (no pydantic), so the fast
validator (auditor.data.fast) and the pydantic models (auditor.data.schemas) share them."""

from __future__ import annotations

from typing import Any

from auditor.kumo.values import describe, find_type_error

Problem = tuple[tuple[str | int, ...], str]

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


def check_trigger(value: Any) -> Problem | None:
    """Automation/suspension trigger: "Immediate" or {Threshold = "N/period"}."""
    if value == "Immediate":
        return None
    if isinstance(value, dict) and set(value) == {"Threshold"}:
        problem = find_type_error("rate", value["Threshold"])
        return None if problem is None else (("Threshold", *problem[0]), problem[1])
    return (), 'expected "Immediate" or {Threshold = "<count>/<period>"}'


SIMPLE_ACTIONS = (
    "Suspend",
    "SuspendTenant",
    "SuspendCampaign",
    "Bounce",
    "BounceTenant",
    "BounceCampaign",
)
CONFIG_ACTIONS = ("SetConfig", "SetDomainConfig")


def _check_one_action(value: Any) -> Problem | None:
    if isinstance(value, str):
        if value in SIMPLE_ACTIONS:
            return None
        if value in CONFIG_ACTIONS:
            return (), f'{value} needs a table: {{{value} = {{name = "...", value = ...}}}}'
        return (
            (),
            f"unknown automation action {value!r} (expected one of {', '.join(SIMPLE_ACTIONS)}, or {{SetConfig = {{...}}}} / {{SetDomainConfig = {{...}}}})",
        )
    if isinstance(value, dict):
        if len(value) != 1:
            return (), "an action table must have exactly one key: SetConfig or SetDomainConfig"
        ((kind, body),) = value.items()
        if kind not in CONFIG_ACTIONS:
            return (
                kind,
            ), f"unknown automation action {kind!r} (expected SetConfig or SetDomainConfig)"
        if not isinstance(body, dict) or set(body) != {"name", "value"}:
            return (kind,), f"{kind} expects a table with exactly the keys name and value"
        name = body["name"]
        expr = EGRESS_PATH_TYPES.get(name) if isinstance(name, str) else None
        if expr is None:
            return (kind, "name"), f"{kind} name {name!r} is not an egress path setting"
        problem = find_type_error(expr, body["value"])
        if problem is not None:
            return (kind, "value", *problem[0]), f"{kind} value for {name}: {problem[1]}"
        return None
    return (
        (),
        f'expected an action (e.g. "Suspend" or {{SetConfig = {{...}}}}), got {describe(value)}',
    )


def check_action(value: Any) -> Problem | None:
    """A single action or a list of actions (serde OneOrMany)."""
    if isinstance(value, list):
        if not value:
            return (), "at least one action is needed"
        for index, item in enumerate(value):
            problem = _check_one_action(item)
            if problem is not None:
                return (index, *problem[0]), problem[1]
        return None
    return _check_one_action(value)
