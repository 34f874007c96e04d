"""Dxxx: delivery and data safety. Spools, deferred spooling, retry schedules, and shaping values
outside the organisation's bounds."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import Any

from auditor.config.settings import Bound
from auditor.core.findings import Finding, Span
from auditor.core.record import dataclass
from auditor.kumo.model import PolicyModel
from auditor.kumo.values import parse_duration, parse_limit, parse_rate
from auditor.lua.literal import Lit
from auditor.rules.query import (
    data_files,
    listener_scopes,
    literal_str,
    literal_tables,
    literal_true,
    shaping_sections,
    sites_of,
)
from auditor.rules.registry import rule

SPOOLS = ("data", "meta")
SPOOL_CONTEXTS = ("init", "pre_init")
LISTENERS = ("kumo.start_esmtp_listener", "kumo.start_http_listener")

# make_queue_config defaults (docs/reference/kumo/make_queue_config): seconds.
DEFAULT_RETRY_INTERVAL = 20 * 60.0
DEFAULT_MAX_AGE = 7 * 86400.0
QUEUE_KEYS = ("retry_interval", "max_retry_interval", "max_age")


# ----- D101 missing-spool ------------------------------------------------------------------------------------


def _check_missing_spool(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    if model.mode != "policy":
        return  # a module or snippet alone: the policy that requires it may define the spools
    listeners = [s for s in sites_of(model, *LISTENERS) if s.contexts]
    if not listeners:
        return
    defined: set[str] = set()
    elsewhere: set[str] = set()
    for site in sites_of(model, "kumo.define_spool"):
        if not site.contexts:
            continue
        table = site.table_arg(0)
        name = literal_str(table, "name") if table is not None else None
        if name is None:
            if any(c in SPOOL_CONTEXTS for c in site.contexts):
                return  # a spool whose name is not literal: cannot tell which one
            continue
        if any(c in SPOOL_CONTEXTS for c in site.contexts):
            defined.add(name)
        else:
            elsewhere.add(name)
    missing = [name for name in SPOOLS if name not in defined]
    if not missing:
        return
    first = min(listeners, key=lambda s: (s.module != model.entry, s.module, s.span.line))
    outside = [name for name in missing if name in elsewhere]
    detail = f" ({', '.join(outside)} is defined, but not in init)" if outside else ""
    yield MISSING_SPOOL.finding(
        first.module,
        first.call.name_span,
        f"the policy starts listeners but does not define the {' and '.join(missing)} "
        f"spool{'s' if len(missing) > 1 else ''} in init{detail}: kumod stops at startup with "
        "'No spools have been defined' (or cannot store the messages it accepts)",
        key=f"missing spools {','.join(missing)}",
    )


MISSING_SPOOL = rule(
    "D101",
    "missing-spool",
    "error",
    "Listeners are started but the data and meta spools are not both defined in init",
    doc="""
KumoMTA stores every accepted message in two spools, named exactly `data` (message bodies) and
`meta` (metadata), defined with `kumo.define_spool` in the `init` handler. Without them kumod does
not start ("No spools have been defined"); a spool defined at file level or in a realtime handler is
defined again for every Lua context and its lock is already held. Reported at the first listener
(`kumo.start_esmtp_listener` / `kumo.start_http_listener`) when either spool is missing from
`init` (or `pre_init`). A `define_spool` whose name is not a literal disables the check.
""",
    bad="""
kumo.on('init', function()
  kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data' }
  kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
end)
""",
    good="""
kumo.on('init', function()
  kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data', kind = 'RocksDB' }
  kumo.define_spool { name = 'meta', path = '/var/spool/kumomta/meta', kind = 'RocksDB' }
  kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
end)
""",
    fix="Define both spools, `data` and `meta`, in the init handler before starting listeners.",
)(_check_missing_spool)


# ----- D102 deferred-spool -----------------------------------------------------------------------------------


def _check_deferred_spool(ctx: Any) -> Iterator[Finding]:
    for scope in listener_scopes(ctx.model):
        entry = scope.table.entry("deferred_spool")
        if entry is None or not literal_true(entry.value):
            continue
        yield DEFERRED_SPOOL.finding(
            scope.module,
            entry.key_span or entry.value.span,
            f"deferred_spool = true on {scope.where}: accepted messages stay only in memory until "
            "their first transient failure, so a crash or restart loses mail that was already "
            "acknowledged with 250",
            key=f"{scope.listener} {scope.block} deferred_spool",
        )


DEFERRED_SPOOL = rule(
    "D102",
    "deferred-spool",
    "warning",
    "deferred_spool = true: accepted messages live only in memory",
    doc="""
With `deferred_spool = true` a listener does not write a message to the spool when it accepts it;
the message is kept in memory until its first transient failure. KumoMTA warns that this "may
result in loss of accountability for messages": if kumod stops or crashes, mail that was already
acknowledged is gone. Checked in listener tables, their peer/via blocks and literal tables returned
by `smtp_server_get_dynamic_parameters`.
""",
    bad="""
kumo.start_esmtp_listener { listen = '0.0.0.0:25', deferred_spool = true }
""",
    good="""
kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
""",
    fix="Remove deferred_spool; size the spool for the load instead.",
)(_check_deferred_spool)


# ----- D103 retry-ladder -------------------------------------------------------------------------------------


@dataclass(slots=True)
class QueueSettings:
    """The retry settings of one queue configuration, with where each was written (if here)."""

    values: dict[str, float]  # effective seconds, inherited values included
    spans: dict[str, Span]  # keys written in this table


def ladder_problems(
    settings: QueueSettings, min_max_age: float | None
) -> Iterator[tuple[str, str, str]]:
    """(key to point at, problem id, message) for the retry settings of one table."""
    here = settings.spans
    ri = settings.values.get("retry_interval", DEFAULT_RETRY_INTERVAL)
    mri = settings.values.get("max_retry_interval")
    age = settings.values.get("max_age", DEFAULT_MAX_AGE)
    if mri is not None and mri < ri and ("max_retry_interval" in here or "retry_interval" in here):
        key = "max_retry_interval" if "max_retry_interval" in here else "retry_interval"
        yield (
            key,
            "max_retry_interval<retry_interval",
            f"max_retry_interval ({_human(mri)}) is below retry_interval ({_human(ri)}): the cap "
            "wins, so every retry waits only max_retry_interval and the exponential backoff "
            "never happens",
        )
    if age < ri and ("max_age" in here or "retry_interval" in here):
        key = "max_age" if "max_age" in here else "retry_interval"
        yield (
            key,
            "max_age<retry_interval",
            f"max_age ({_human(age)}) is below retry_interval ({_human(ri)}): a message that is "
            "deferred once expires before its first retry and bounces",
        )
    if min_max_age is not None and "max_age" in here and age < min_max_age:
        yield (
            "max_age",
            "max_age<minimum",
            f"max_age ({_human(age)}) is below the configured minimum ({_human(min_max_age)}): "
            "messages bounce after a short outage at the receiver instead of being retried",
        )


def _human(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit if count != 1 else unit[:-1]}"
    return f"{seconds:g} seconds"


def _seconds(value: object) -> float | None:
    try:
        return parse_duration(value)
    except ValueError:
        return None


def _min_max_age(ctx: Any) -> float | None:
    return _seconds(ctx.config.thresholds.min_max_age)


def _check_retry_ladder(ctx: Any) -> Iterator[Finding]:
    minimum = _min_max_age(ctx)
    for site, table in literal_tables(ctx.model, "kumo.make_queue_config"):
        settings = QueueSettings({}, {})
        for key in QUEUE_KEYS:
            entry = table.entry(key)
            if entry is None:
                continue
            if not isinstance(entry.value, Lit):
                settings = QueueSettings({}, {})
                break  # a computed value: the ladder cannot be judged
            seconds = _seconds(entry.value.value)
            if seconds is None:
                settings = QueueSettings({}, {})
                break
            settings.values[key] = seconds
            settings.spans[key] = entry.key_span or entry.value.span
        for key, problem, message in ladder_problems(settings, minimum):
            yield RETRY_LADDER.finding(
                site.module,
                settings.spans[key],
                f"kumo.make_queue_config: {message}",
                key=f"make_queue_config {problem}",
            )
    for path, value, located in data_files(ctx, "queues"):
        for key_path, label, section, inherited in _queue_sections(value):
            settings = QueueSettings(dict(inherited), {})
            for key in QUEUE_KEYS:
                if key in section:
                    seconds = _seconds(section[key])
                    if seconds is None:
                        continue  # invalid (E302)
                    settings.values[key] = seconds
                    settings.spans[key] = located.key_span((*key_path, key))
            for key, problem, message in ladder_problems(settings, minimum):
                yield RETRY_LADDER.finding(
                    path,
                    settings.spans[key],
                    f"{label}: {message}",
                    key=f"{label} {problem}",
                )


_QUEUE_OPTION_TABLES = {"protocol", "campaigns", "shrink_policy"}


def _own(section: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in QUEUE_KEYS:
        seconds = _seconds(section.get(key)) if key in section else None
        if seconds is not None:
            out[key] = seconds
    return out


def _queue_sections(
    value: dict[str, Any],
) -> Iterator[tuple[tuple[str, ...], str, dict[str, Any], dict[str, float]]]:
    """(key path, label, section, inherited values) in the helper's resolution order:
    queue.default -> queue.<domain> -> tenant.<t> -> queue.<domain>.<t> -> ...<campaign>."""
    queues = value.get("queue") if isinstance(value.get("queue"), dict) else {}
    tenants = value.get("tenant") if isinstance(value.get("tenant"), dict) else {}
    default = queues.get("default") if isinstance(queues.get("default"), dict) else {}
    base = _own(default)
    if default:
        yield ("queue", "default"), "[queue.default]", default, {}
    for name, tenant in tenants.items():
        if isinstance(tenant, dict):
            yield ("tenant", name), f"[tenant.'{name}']", tenant, base
    for domain, section in queues.items():
        if domain == "default" or not isinstance(section, dict):
            continue
        yield ("queue", domain), f"[queue.'{domain}']", section, base
        domain_values = {**base, **_own(section)}
        for tenant_name, tenant_section in section.items():
            if not isinstance(tenant_section, dict) or tenant_name in _QUEUE_OPTION_TABLES:
                continue
            own_tenant = tenants.get(tenant_name)
            tenant_base = {
                **domain_values,
                **(_own(own_tenant) if isinstance(own_tenant, dict) else {}),
            }
            label = f"[queue.'{domain}'.'{tenant_name}']"
            yield ("queue", domain, tenant_name), label, tenant_section, tenant_base
            tenant_values = {**tenant_base, **_own(tenant_section)}
            for campaign, campaign_section in tenant_section.items():
                if isinstance(campaign_section, dict) and campaign not in _QUEUE_OPTION_TABLES:
                    yield (
                        ("queue", domain, tenant_name, campaign),
                        f"[queue.'{domain}'.'{tenant_name}'.'{campaign}']",
                        campaign_section,
                        tenant_values,
                    )


RETRY_LADDER = rule(
    "D103",
    "retry-ladder",
    "warning",
    "A retry schedule that cannot work: cap below the interval, max_age too short",
    doc="""
A queue retries a deferred message after `retry_interval` (default 20 minutes), doubling the wait
each time up to `max_retry_interval` (default: no cap), and bounces it once it is older than
`max_age` (default 7 days). Reported:
- `max_retry_interval` below `retry_interval`: the cap wins and the backoff is flat;
- `max_age` below `retry_interval`: a message deferred once expires before its first retry;
- `max_age` below the configured minimum (`thresholds.min_max_age`, default "1 day"): mail bounces
  after a short outage at the receiver.
Checked in literal `kumo.make_queue_config` tables and in the queue helper's data: `[queue.default]`,
`[queue.'<domain>']`, `[tenant.'<name>']`, `[queue.'<domain>'.'<tenant>']` and campaign tables. A
data section inherits unset values in the helper's order (queue.default, then the domain, the
tenant, the domain's tenant table); a finding is reported at the section that writes one of the
values involved, at that key, so an inherited mistake is reported once where it is written.
""",
    bad="""
[queue.'example.com']
retry_interval = "30 minutes"
max_retry_interval = "20 minutes"
""",
    good="""
[queue.'example.com']
retry_interval = "20 minutes"
max_retry_interval = "4 hours"
max_age = "5 days"
""",
    fix="Keep retry_interval <= max_retry_interval and retry_interval < max_age, and max_age at "
    "least the configured minimum.",
)(_check_retry_ladder)


# ----- D104 shaping-bounds -----------------------------------------------------------------------------------

_EXTRA_TYPES = {
    "provider_connection_limit": "limit",
    "provider_max_message_rate": "rate",
    "provider_source_selection_rate": "rate",
}


def _per_second(value: object) -> float:
    limit, period = parse_rate(value)
    return limit / period


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a number")
    return float(value)


_PARSERS: dict[str, Callable[[object], float]] = {
    "limit": lambda v: float(parse_limit(v)),
    "rate": _per_second,
    "duration": parse_duration,
}


def _parser_for(key: str) -> Callable[[object], float]:
    from auditor.data.schemas.egress import (
        EGRESS_PATH_TYPES,
    )  # pydantic: only when bounds are checked

    kind = _EXTRA_TYPES.get(key) or EGRESS_PATH_TYPES.get(key, "")
    return _PARSERS.get(kind, _number)


def _bound_value(parser: Callable[[object], float], value: object) -> float | None:
    """A bound's min/max as the same unit as the value: numbers are taken as they are (a number
    for a rate is messages per second, for a duration seconds); strings are parsed like the value."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return parser(value)
    except ValueError:
        return None


def _applies(bound: Bound, key_path: tuple[Any, ...]) -> bool:
    if bound.provider is not None:
        return key_path[0] == "provider" and key_path[1] == bound.provider
    if bound.domain is not None:
        return key_path[0] != "provider" and fnmatch.fnmatchcase(
            str(key_path[0]).lower(), bound.domain.lower()
        )
    return True


def _check_shaping_bounds(ctx: Any) -> Iterator[Finding]:
    bounds: list[Bound] = list(ctx.config.bounds)
    if not bounds:
        return
    for path, value, located in data_files(ctx, "shaping"):
        for key_path, section, label in shaping_sections(value):
            for bound in bounds:
                if bound.key not in section or not _applies(bound, key_path):
                    continue
                parser = _parser_for(bound.key)
                raw = section[bound.key]
                try:
                    actual = parser(raw)
                except ValueError:
                    continue  # invalid (E302)
                low, high = _bound_value(parser, bound.min), _bound_value(parser, bound.max)
                if low is not None and actual < low:
                    side, limit = "below the minimum", bound.min
                elif high is not None and actual > high:
                    side, limit = "above the maximum", bound.max
                else:
                    continue
                reason = f" ({bound.reason})" if bound.reason else ""
                yield SHAPING_BOUNDS.finding(
                    path,
                    located.key_span((*key_path, bound.key)),
                    f"{bound.key} = {raw} in the shaping {label} section is {side} of {limit} "
                    f"set by the organisation's bounds{reason}",
                    key=f"{label} {bound.key}",
                )


SHAPING_BOUNDS = rule(
    "D104",
    "shaping-bounds",
    "warning",
    "A shaping value outside the organisation's configured bounds",
    doc="""
Receivers throttle or block senders that open too many connections or send too fast, and values
set too low leave mail queued. The organisation's limits are configured as `[[bounds]]` in
kumo-audit.toml: `key` (a shaping setting such as `connection_limit`, `max_message_rate`,
`max_deliveries_per_connection`, `provider_connection_limit`), an optional `domain` (a shaping
section name; shell-style wildcards allowed) or `provider` (a `[provider."<name>"]` section), and
`min` / `max` (with an optional `reason`). A bound without domain or provider applies to every
section, including `["default"]`; per-source tables inside a section are checked with it.
Values compare in one unit: rates (`"100/min"`) by messages per second (a numeric bound is per
second; a string bound such as `"600/min"` is parsed like the value), limits (`"1,000"`,
`"local:20"`) by their number, durations by seconds.
""",
    bad="""
# kumo-audit.toml: [[bounds]] key = "connection_limit", provider = "yahoo", max = 20
[provider."yahoo"]
match = [{ MXSuffix = ".yahoodns.net" }]
connection_limit = 200
""",
    good="""
[provider."yahoo"]
match = [{ MXSuffix = ".yahoodns.net" }]
connection_limit = 10
""",
    fix="Bring the value inside the bounds, or change the bound in kumo-audit.toml after review.",
)(_check_shaping_bounds)
