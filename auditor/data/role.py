"""Which helper reads a data file given on its own: from its name, else from its content.

Names follow the helpers' documented defaults and common variants (`shaping.toml`, `shaping-custom.toml`,
`queues.toml`, `sources.toml`, `egress_sources.toml`, `listener_domains.toml`, `dkim_data.toml`, and the
JSON forms). Content is recognised by the top-level keys each helper's schema allows.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

KINDS = ("shaping", "queues", "sources", "listener_domains", "dkim")
DATA_SUFFIXES = (".toml", ".json")

_NAMES = (
    (re.compile(r"shaping"), "shaping"),
    (re.compile(r"listener[_-]?domains?"), "listener_domains"),
    (re.compile(r"dkim"), "dkim"),
    (re.compile(r"(^|[_-])sources?($|[_-])|egress[_-]?sources?"), "sources"),
    (re.compile(r"(^|[_-])queues?($|[_-])"), "queues"),
)
_QUEUES_KEYS = {
    "scheduling_header",
    "tenant_header",
    "remove_tenant_header",
    "campaign_header",
    "remove_campaign_header",
    "default_tenant",
    "tenant",
    "queue",
}
_LISTENER_KEYS = {"relay_to", "relay_from", "relay_from_authz", "log_oob", "log_arf"}


def is_data_file(path: str) -> bool:
    return path.lower().endswith(DATA_SUFFIXES)


def role_from_name(path: str) -> str | None:
    stem = PurePosixPath(path).name.lower().rsplit(".", 1)[0]
    for pattern, kind in _NAMES:
        if pattern.search(stem):
            return kind
    return None


def role_from_content(value: Any) -> str | None:
    """The helper whose schema the parsed document fits by its top-level keys, or None."""
    if not isinstance(value, dict) or not value:
        return None
    keys = set(value)
    if keys & {"source", "pool"} and keys <= {"source", "pool"}:
        return "sources"
    if keys & {"base", "domain", "signature"} and keys <= {"base", "domain", "signature"}:
        return "dkim"
    if keys <= _QUEUES_KEYS and keys & _QUEUES_KEYS:
        return "queues"
    tables = [v for v in value.values() if isinstance(v, dict)]
    if keys & {"default", "provider"} or any(
        {"connection_limit", "max_message_rate", "mx_rollup", "automation", "enable_tls"} & set(t)
        for t in tables
    ):
        return "shaping"
    if tables and all(set(t) <= _LISTENER_KEYS | {"ttl"} for t in tables):
        return "listener_domains"
    return None


def infer_role(path: str, text: str) -> str | None:
    """The helper data format of `path`: by name, else by content (None when neither tells)."""
    by_name = role_from_name(path)
    if by_name is not None:
        return by_name
    from auditor.data.locate import DataSyntaxError, load_located

    try:
        located = load_located(text, "toml" if path.lower().endswith(".toml") else "json")
    except DataSyntaxError:
        return None
    return role_from_content(located.value)
