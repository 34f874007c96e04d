"""Cxxx: rules about a change between two states (run by `diff`, `ci` and the hook, not by `check`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor.core.findings import Finding, Span
from auditor.core.impacts import RESTART
from auditor.kumo.model import CallSite, PolicyModel
from auditor.lua.literal import Lit
from auditor.rules.query import literal_value
from auditor.rules.registry import declare, rule

RATE_KEYS = {
    "max_message_rate",
    "max_connection_rate",
    "connection_limit",
    "provider_connection_limit",
    "provider_max_message_rate",
    "overall_max_message_rate",
    "source_selection_rate",
    "provider_source_selection_rate",
    "max_deliveries_per_connection",
}


def _spools(model: PolicyModel | None) -> dict[str, CallSite]:
    out: dict[str, CallSite] = {}
    for site in model.calls_to("kumo.define_spool") if model else []:
        table = site.table_arg()
        name = table.get("name") if table else None
        if isinstance(name, Lit) and isinstance(name.value, str):
            out[name.value] = site
    return out


@rule(
    "C101",
    "spool-relocated",
    "error",
    "A spool's path, kind or name changed: messages in the old spool are stranded",
    doc="""
At start-up kumod enumerates only the spools the policy defines now. When the `path` or `kind` of the
`data` or `meta` spool changes, or a spool is renamed, the messages in the old location are no longer
seen: they are not delivered, bounced or expired until they are moved (or transferred) by hand.
""",
    bad="""
-kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data', kind = 'RocksDB' }
+kumo.define_spool { name = 'data', path = '/data/spool/data', kind = 'RocksDB' }
""",
    good="""
-- keep the path; to move a spool, drain the node (or xfer its messages) first, then change it
kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data', kind = 'RocksDB' }
""",
    fix="Drain or transfer the node's messages before relocating its spool, then restart kumod.",
    change=True,
)
def spool_relocated(ctx: Any) -> Iterator[Finding]:
    if ctx.base is None:
        return
    old, new = _spools(ctx.base.context.model), _spools(ctx.head.context.model)
    for name, before in sorted(old.items()):
        after = new.get(name)
        if after is None:
            site = next(iter(new.values()), None)
            if site is None:
                continue
            yield SPOOL_RELOCATED.finding(
                site.module,
                site.span,
                f"spool '{name}' is no longer defined: messages spooled under that name are stranded",
                key=f"spool {name} removed",
            )
            continue
        for key in ("path", "kind"):
            was, now = literal_value(before.table_arg(), key), literal_value(after.table_arg(), key)
            if was is None and key == "kind":
                was = "LocalDisk"
            if now is None and key == "kind":
                now = "LocalDisk"
            if was is not None and now is not None and was != now:
                entry = after.table_arg().entry(key) if after.table_arg() else None  # type: ignore[union-attr]
                span = entry.value.span if entry else after.span
                yield SPOOL_RELOCATED.finding(
                    after.module,
                    span,
                    f"spool '{name}' {key} changes from {was!r} to {now!r}: messages in the old spool "
                    "are stranded until they are moved",
                    key=f"spool {name} {key}",
                )


SPOOL_RELOCATED = spool_relocated


def _log_dirs(model: PolicyModel | None) -> list[tuple[str, CallSite]]:
    out = []
    for site in model.calls_to("kumo.configure_local_logs") if model else []:
        value = literal_value(site.table_arg(), "log_dir")
        if isinstance(value, str):
            out.append((value, site))
    return out


@rule(
    "C102",
    "log-dir-changed",
    "warning",
    "configure_local_logs log_dir changed",
    doc="""
Local logs are configured in `init`; a new `log_dir` applies only after a restart, and the segments
already written stay in the old directory, where log shippers and retention jobs may no longer look.
""",
    bad="""
-kumo.configure_local_logs { log_dir = '/var/log/kumomta' }
+kumo.configure_local_logs { log_dir = '/srv/logs/kumomta' }
""",
    good="""
kumo.configure_local_logs { log_dir = '/var/log/kumomta' }
""",
    fix="Plan the move: restart kumod, and point log shipping and retention at the new directory.",
    change=True,
)
def log_dir_changed(ctx: Any) -> Iterator[Finding]:
    if ctx.base is None:
        return
    old = {v for v, _ in _log_dirs(ctx.base.context.model)}
    for value, site in _log_dirs(ctx.head.context.model):
        if old and value not in old:
            entry = site.table_arg().entry("log_dir")  # type: ignore[union-attr]
            yield LOG_DIR_CHANGED.finding(
                site.module,
                entry.value.span if entry else site.span,
                f"log_dir changes from {', '.join(sorted(repr(o) for o in old))} to {value!r}: "
                "it applies after a restart, and existing segments stay in the old directory",
                key=f"log_dir {value}",
            )


LOG_DIR_CHANGED = log_dir_changed


@rule(
    "C103",
    "restart-required",
    "warning",
    "The change touches what only a kumod restart applies",
    doc="""
Whatever runs inside `init` or `pre_init` (listeners, spools, logging, thread pools, and any data file
read there) is applied once, at start-up. KumoMTA's hot reload will not apply such a change: the new
policy is live for realtime events, but the old listeners and spools keep running until kumod restarts.
""",
    bad="""
 kumo.on('init', function()
-  kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
+  kumo.start_esmtp_listener { listen = '0.0.0.0:25', max_connections = 5000 }
 end)
""",
    good="Deploy it with a planned restart, and record the restart in the runbook.",
    fix="Schedule a kumod restart for this change (and record it: `kumo-audit runbook record --decision restart-required`).",
    change=True,
)
def restart_required(ctx: Any) -> Iterator[Finding]:
    for element in ctx.change.elements:
        if element.impact == RESTART:
            yield RESTART_REQUIRED.finding(
                element.path,
                Span.point(element.line, 1),
                f"{element.reason} ({element.element})",
                key=f"restart {element.element}",
            )


RESTART_REQUIRED = restart_required


def _per_second(key: str, value: Any) -> float | None:
    from auditor.kumo.values import parse_limit, parse_rate

    try:
        if key in (
            "connection_limit",
            "provider_connection_limit",
            "max_deliveries_per_connection",
        ):
            return float(parse_limit(value))
        limit, period = parse_rate(value)
        return float(limit) / float(period)
    except (ValueError, TypeError, ZeroDivisionError):
        return None


@rule(
    "C104",
    "rate-jump",
    "warning",
    "A shaping or queue rate or limit raised by more than the configured factor",
    doc="""
Mailbox providers judge senders by their traffic pattern. Raising a message rate, connection rate or
connection limit several-fold at once (rather than warming up) invites deferrals and blocks, and a
typo (`1000/s` for `100/s`) looks exactly like this. The factor is `thresholds.rate_jump_factor`
(default 2).
""",
    bad="""
 ["gmail.com"]
-max_message_rate = "100/s"
+max_message_rate = "500/s"
""",
    good="""
 ["gmail.com"]
-max_message_rate = "100/s"
+max_message_rate = "150/s"
""",
    fix="Raise the value in steps, or confirm the jump and suppress it with a waiver giving the reason.",
    change=True,
)
def rate_jump(ctx: Any) -> Iterator[Finding]:
    factor = ctx.config.thresholds.rate_jump_factor
    for vc in ctx.change.value_changes:
        if not vc.key or vc.key[-1] not in RATE_KEYS or vc.before is None or vc.after is None:
            continue
        name = str(vc.key[-1])
        old, new = _per_second(name, vc.before), _per_second(name, vc.after)
        if old is None or new is None or old <= 0 or new / old <= factor:
            continue
        data = ctx.head.context.data.get(vc.path)
        span = _value_span(data, vc.key) or Span.point(vc.line, 1)
        yield RATE_JUMP.finding(
            vc.path,
            span,
            f"{vc.label()} rises {new / old:.1f}x ({vc.before!r} -> {vc.after!r}), more than the "
            f"allowed {factor:g}x: providers may defer or block the sudden increase",
            key=f"rate {vc.label()}",
        )


RATE_JUMP = rate_jump


def _value_span(data: Any, key: tuple[Any, ...]) -> Span | None:
    located = getattr(data, "located", None)
    if located is None:
        return None
    try:
        return located.value_span(key)
    except (KeyError, IndexError, ValueError, AttributeError):
        return None


_SECTION_KINDS = {
    ("shaping", 1): "shaping domain",
    ("shaping", 2): "shaping provider",
    ("sources", 2): "egress source",
    ("queues", 2): "tenant",
    ("dkim", 2): "DKIM domain",
}
_SECTION_PARENTS = {
    "shaping": {"provider"},
    "sources": {"source"},
    "queues": {"tenant"},
    "dkim": {"domain"},
}


@rule(
    "C105",
    "config-removed",
    "warning",
    "A domain, provider, source, tenant or DKIM section, or a handler, removed while still in use",
    doc="""
Removing a section from a helper data file does not remove the traffic it governed: mail for a domain
whose shaping section is gone falls back to the defaults, a pool that still names a removed source fails
to resolve, mail for a removed tenant is rejected by the queue helper, and a domain removed from the
DKIM data is sent unsigned. A removed event handler silently returns KumoMTA to its default behaviour.
""",
    bad="""
-["example.com"]
-max_message_rate = "20/s"
 # queues.toml still has [queue."example.com"]
""",
    good="Remove the references in the same change, or keep the section.",
    fix="Remove every reference to the section in the same change, or restore it.",
    change=True,
)
def config_removed(ctx: Any) -> Iterator[Finding]:
    if ctx.base is None:
        return
    head = ctx.head.context
    formats = _formats(head.model) | _formats(ctx.base.context.model)
    for vc in ctx.change.value_changes:
        if vc.after is not None or not isinstance(vc.before, dict):
            continue
        fmt = formats.get(vc.path)
        removed: list[tuple[tuple[Any, ...], Any]] = [(vc.key, vc.before)]
        if len(vc.key) == 1 and vc.key[0] in _SECTION_PARENTS.get(fmt or "", set()):
            # the whole table went (`provider`, `source`, ...): each of its sections is removed
            removed = [((*vc.key, name), value) for name, value in vc.before.items()]
        for key, before in removed:
            kind = _section_kind(fmt, key)
            if kind is None or not isinstance(before, dict):
                continue
            name = str(key[-1])
            users = _referrers(head.texts, name, exclude=vc.path)
            if not users:
                continue
            yield CONFIG_REMOVED.finding(
                vc.path,
                Span.point(max(vc.line, 1), 1),
                f"{kind} '{name}' is removed from {vc.path} but {', '.join(users)} still refer"
                f"{'s' if len(users) == 1 else ''} to it",
                key=f"removed {vc.path} {name}",
            )
    old_events = {h.event: h for h in ctx.base.context.model.handlers if h.origin == "policy"}
    new_events = {h.event for h in head.model.handlers}
    for event, handler in sorted(old_events.items()):
        if event not in new_events:
            yield CONFIG_REMOVED.finding(
                head.model.entry,
                Span.point(1, 1),
                f"the {event} handler (was at {handler.module}:{handler.span.line}) is removed: KumoMTA "
                "falls back to its default behaviour for this event",
                key=f"handler {event} removed",
            )


CONFIG_REMOVED = config_removed


def _formats(model: PolicyModel | None) -> dict[str, str]:
    return {r.tree_path: r.data_format for r in (model.data_refs if model else []) if r.tree_path}


def _section_kind(fmt: str | None, key: tuple[Any, ...]) -> str | None:
    if fmt is None:
        return None
    kind = _SECTION_KINDS.get((fmt, len(key)))
    if kind is None:
        return None
    if len(key) == 1:
        return kind if key[0] not in ("default", "provider") else None
    return kind if key[0] in _SECTION_PARENTS.get(fmt, set()) else None


def _referrers(texts: dict[str, str], name: str, exclude: str) -> list[str]:
    needles = (f'"{name}"', f"'{name}'")
    return sorted(
        p for p, t in texts.items() if p != exclude and t and any(n in t for n in needles)
    )


@rule(
    "C106",
    "data-file-unreferenced",
    "warning",
    "A data file changed that the policy does not load: the change has no effect",
    doc="""
Editing a TOML or JSON file that no helper setup, `kumo.toml_load` or `kumo.serde.*_load` names changes
nothing in KumoMTA. Usually the file was renamed, or the policy stopped loading it, and the edit was meant
for the file that is loaded now.
""",
    bad="""
# policy/shaping-old.toml edited, but init.lua loads policy/shaping.toml
""",
    good="Edit the file the policy loads, or add the file to the helper's setup list.",
    fix="Make the edit in the loaded file, add this file to the policy, or delete it.",
    change=True,
)
def data_file_unreferenced(ctx: Any) -> Iterator[Finding]:
    for element in ctx.change.elements:
        if element.reason.startswith("not loaded by the policy") and element.path.endswith(
            (".toml", ".json")
        ):
            yield DATA_FILE_UNREFERENCED.finding(
                element.path,
                Span.point(1, 1),
                f"{element.path} changed, but the policy does not load it: the change has no effect",
                key=f"unreferenced {element.path}",
            )


DATA_FILE_UNREFERENCED = data_file_unreferenced


CONFIG_RELAXED = declare(
    "C107",
    "config-relaxed",
    "warning",
    "The change relaxes the kumo-audit configuration (a new ignore, a lowered severity or fail_on, a waiver)",
    doc="""
The configuration is read from the state being audited, so it is part of the change: a commit can
carry a new `ignore`, a lowered `fail_on` or severity, a narrower `select`, a new per-path ignore or
waiver, a removed bound, or a wider threshold together with the policy edit it lets through. Both
states are judged with the new configuration; this finding names what it stops reporting, so the
relaxation is reviewed with the change. The configuration cannot hide it.
""",
    bad="""
+ignore = ["E104"]   # in the same commit that adds a require of a module that does not exist
""",
    good="""
-- fix the finding, or suppress it inline with a reason and a ticket
-- kumo-audit: allow(E104) reason="module ships with the next release" ticket=OPS-12
""",
    fix="Review the configuration change with the policy change; prefer a reasoned inline "
    "suppression or waiver with a ticket to a blanket ignore.",
    suppressible=False,
    change=True,
)
