"""Rxxx: hot-reload safety. What runs again for every new Lua context, what a reload never applies,
and what KumoMTA does not notice changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor.core.findings import Finding, Severity
from auditor.kumo.api import KumoApi
from auditor.kumo.model import DATA_LOADERS, FILE, CallSite, PolicyModel
from auditor.kumo.monitor import DEFAULT_GLOBS as DEFAULT_MONITOR_GLOBS
from auditor.kumo.monitor import MonitorGlobs, glob_list
from auditor.lua.literal import Lit, Table, Unknown
from auditor.rules.api_use import (
    LoadOrder,
    describe_contexts,
    function_key,
    realtime_contexts,
    setup_label,
    where,
)
from auditor.rules.registry import rule

# What repeating an init-only call does, by the function's restart scope (api.toml restart_scope).
_REPEAT_EFFECT = {
    "listener": "binds the listener again (the second bind of the address fails: 'failed to bind')",
    "spool": "defines the spool again (its lock is already held: kumod logs 'Error in spool' and "
    "shuts down)",
    "logging": "adds another logger each time (duplicate log records, leaked writers)",
    "classifier": "configures the bounce classifier again ('classifier already initialized')",
    "throttle": "configures redis throttles again ('redis already configured for throttles')",
    "task": "starts another background task each time",
    "monitor": "replaces the config-monitor globs each time",
}
_DEFAULT_EFFECT = "repeats a process-wide setting that is meant to be made once"


def _ident(site: CallSite) -> str:
    """A literal that tells calls of one function apart (listen address, spool or hook name)."""
    table = site.table_arg(0)
    if table is not None:
        for key in ("listen", "name", "log_dir", "event_name"):
            value = table.get(key)
            if isinstance(value, Lit) and isinstance(value.value, str):
                return value.value
    return site.str_arg(0) or ""


# ----- R101 init-only-outside-init ------------------------------------------------------------------------


def _check_init_only_outside_init(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    api: KumoApi = ctx.api
    for name, site in model.kumo_calls():
        spec = api.function(name)
        if spec is None or spec.where != "init":
            continue
        bad = ([FILE] if FILE in site.contexts else []) + realtime_contexts(api, site.contexts)
        if not bad:
            continue
        effect = _REPEAT_EFFECT.get(spec.restart_scope, _DEFAULT_EFFECT)
        if bad == [FILE] and model.mode == "module":
            # a module audited alone: its top level (and that of the modules it requires at its
            # top level) runs wherever the policy requires it
            yield INIT_ONLY_OUTSIDE_INIT.finding(
                site.module,
                site.call.name_span,
                f"{name} is meant to run once, in init, and runs at the top level of this module: "
                "that depends on where the policy requires it (inside init it runs once; at the "
                f"policy's top level it runs for every new Lua context, and {effect})",
                key=f"{name} {_ident(site)} module",
                severity=Severity.WARNING,
            )
            continue
        runs = (
            "the policy's top level runs again for every new Lua context"
            if FILE in bad
            else "realtime handlers run for every message or session"
        )
        yield INIT_ONLY_OUTSIDE_INIT.finding(
            site.module,
            site.call.name_span,
            f"{name} is meant to run once, in init, but runs {describe_contexts(bad)}: {runs}, so "
            f"it {effect}",
            key=f"{name} {_ident(site)} {','.join(bad)}",
        )


INIT_ONLY_OUTSIDE_INIT = rule(
    "R101",
    "init-only-outside-init",
    "error",
    "An init-only function called at file level or in a realtime handler",
    doc="""
KumoMTA runs the policy file again, top to bottom, every time it creates a Lua context (by default
a context lives at most 300 seconds or 1024 uses, and every configuration epoch discards them), and
realtime handlers run for every message or session. Functions that create process-wide things are
documented for the `init` handler, which runs once: listeners (`start_esmtp_listener`,
`start_http_listener`), spools (`define_spool`), local logs, the bounce classifier, redis throttles,
the accounting database path, DNS resolver configuration, `spawn_task`, `set_config_monitor_globs`.
KumoMTA does not check where they are called: outside `init` the side effect simply repeats (a
listener bind fails, a spool lock is already held and kumod shuts down, loggers pile up, "classifier
already initialized", another background task per context). The API table marks these functions
with `where = "init"`.
""",
    bad="""
kumo.configure_bounce_classifier {
  files = { '/opt/kumomta/share/bounce_classifier/iana.toml' },
}
""",
    good="""
kumo.on('init', function()
  kumo.configure_bounce_classifier {
    files = { '/opt/kumomta/share/bounce_classifier/iana.toml' },
  }
end)
""",
    fix="Move the call into the `kumo.on('init', function() ... end)` handler.",
)(_check_init_only_outside_init)


# ----- R102 pre-init-setting-late -------------------------------------------------------------------------

_POOL_CREATING_SCOPES = ("listener", "spool")


def _check_pre_init_setting_late(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    api: KumoApi = ctx.api
    # init-time calls that start listeners or spools: the runtimes they need exist afterwards
    starters: list[CallSite] = []
    for name, site in model.kumo_calls():
        spec = api.function(name)
        if (
            spec is not None
            and spec.restart_scope in _POOL_CREATING_SCOPES
            and ("init" in site.contexts)
        ):
            starters.append(site)
    for name, site in model.kumo_calls():
        spec = api.function(name)
        if spec is None or spec.where != "pre_init":
            continue
        realtime = realtime_contexts(api, site.contexts)
        reasons: list[str] = []
        if FILE in site.contexts and model.mode == "module":
            # a module audited alone: its top level runs wherever the policy requires it
            reasons.append(
                "it runs at the top level of this module, so that depends on where the policy "
                "requires it (inside pre_init it takes effect; at the policy's top level it runs "
                "again for every new Lua context and only the run before pre_init takes effect)"
            )
        elif FILE in site.contexts:
            reasons.append(
                "at file level it runs again for every new Lua context; only the run before "
                "pre_init can take effect, so a changed value is never applied without a restart"
            )
        if realtime:
            reasons.append(
                f"in {describe_contexts(realtime)} it runs while traffic flows, after the thread "
                "pools, caches and memory limits are in use"
            )
        if "init" in site.contexts:
            before = [
                s
                for s in starters
                if s.module == site.module
                and (s.call.span.line, s.call.span.column)
                < (site.call.span.line, site.call.span.column)
            ]
            if before:
                first = min(before, key=lambda s: (s.call.span.line, s.call.span.column))
                reasons.append(
                    f"in init it runs after {first.call.text} at {where(first.module, first.span)}, "
                    "which starts the runtimes this setting sizes"
                )
        if not reasons:
            continue
        yield PRE_INIT_SETTING_LATE.finding(
            site.module,
            site.call.name_span,
            f"{name} belongs in pre_init: " + "; ".join(reasons),
            key=f"{name} {','.join(sorted(site.contexts))}",
        )


PRE_INIT_SETTING_LATE = rule(
    "R102",
    "pre-init-setting-late",
    "warning",
    "A thread-pool, memory-limit or cache-capacity setting placed where it no longer takes effect",
    doc="""
Thread pools (`set_*_threads`, `spawn_thread_pool`), memory limits (`set_memory_*`), lruttl cache
capacities, the HTTP injection rate limit, DNS resolver tuning and log hooks are documented for the
`pre_init` event, which fires once, before `init`. Thread pools are created lazily, once; a
`set_*_threads` call after the pool exists has no effect.

"Late" means, for a function the API table marks `where = "pre_init"`:
* in a realtime handler: traffic is flowing, so the pools, caches and limits are already in use;
* at file level: the top level runs again for every new Lua context. Only the run that precedes
  `pre_init` (the first context) can take effect; later runs are no-ops, so editing the value and
  hot-reloading appears to work but changes nothing until a restart;
* in `init`, after a call in the same file that starts a listener or defines a spool: those start
  the runtimes these settings size. A call in `init` before them is not reported.
""",
    bad="""
kumo.on('init', function()
  kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
  kumo.set_smtpsrv_threads(16)
end)
""",
    good="""
kumo.on('pre_init', function()
  kumo.set_smtpsrv_threads(16)
end)
""",
    fix="Move the call into a `kumo.on('pre_init', function() ... end)` handler.",
)(_check_pre_init_setting_late)


# ----- R103 global-assignment -----------------------------------------------------------------------------


def _check_global_assignment(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    for site in model.globals:
        if not site.contexts:
            continue
        events = sorted(c for c in site.contexts if c != FILE)
        if not events and site.is_function:
            continue  # `function helper() ... end` at file level: defined alike in every context
        what = "function" if site.is_function else "variable"
        if events:
            detail = (
                f"assigned {describe_contexts(events)}: it exists only in the Lua context "
                "that ran the handler; other pooled contexts never see it, and it vanishes when the "
                "context is recycled"
            )
        else:
            detail = (
                "assigned at file level: every module of the policy shares it, so any of them can "
                "overwrite it"
            )
        yield GLOBAL_ASSIGNMENT.finding(
            site.module,
            site.span,
            f"global {what} '{site.name}' {detail}; declare it `local`",
            key=f"global {site.name} {'handler' if events else 'file'}",
        )


GLOBAL_ASSIGNMENT = rule(
    "R103",
    "global-assignment",
    "warning",
    "Assignment to a global variable at file level or inside a handler",
    doc="""
KumoMTA's documentation says variables should always be `local` unless they are constant for the
life of the program: globals can be shared in unpredictable ways. Each Lua context is a separate
Lua state from a pool, so a global assigned inside a handler (a counter, a lazily loaded table)
exists only in the context that ran it; other contexts see nil, and the value disappears when the
context is recycled (every 300 s / 1024 uses by default, and on every configuration epoch). At file
level a global is visible to every module the policy requires, which can overwrite it by accident.

Decision: a global *function* declared at file level (`function helper() ... end`) is common style
and is defined identically in every context, so it is not reported; a global function declared
inside a handler, and any global non-function value, is.
""",
    bad="""
kumo.on('smtp_server_message_received', function(msg)
  received = (received or 0) + 1
end)
""",
    good="""
-- keep counters in a metric or a shared store (sqlite, redis), not in a Lua global
local RELAY_HOSTS = { '10.0.0.0/8' }
""",
    fix="Declare the variable `local`; keep state that must survive contexts in sqlite, redis or "
    "a memoize cache.",
)(_check_global_assignment)


# ----- R104 blocking-call ---------------------------------------------------------------------------------


def _check_blocking_call(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    api: KumoApi = ctx.api
    stdlib = set(api.blocking_stdlib)
    for site in model.calls:
        callee = site.call.callee
        if not callee or not all(isinstance(p, str) for p in callee):
            continue
        realtime = realtime_contexts(api, site.contexts)
        if callee[0] == "global" and ".".join(callee[1:]) in stdlib:  # type: ignore[arg-type]
            name = ".".join(callee[1:])  # type: ignore[arg-type]
            if not realtime:
                continue
            yield BLOCKING_CALL.finding(
                site.module,
                site.call.name_span,
                f"{name} blocks the thread that runs {describe_contexts(realtime)}: every other "
                "session and delivery scheduled on that thread waits while it runs; use the "
                "kumo.fs.* / kumo.serde.* equivalents or load the data once through kumo.memoize",
                key=f"{name} {','.join(realtime)}",
            )
        elif callee[0] == "kumo":
            name = ".".join(callee)  # type: ignore[arg-type]
            spec = api.function(name)
            if spec is None or not spec.blocking:
                continue
            bad = ([FILE] if FILE in site.contexts else []) + realtime
            if not bad:
                continue
            yield BLOCKING_CALL.finding(
                site.module,
                site.call.name_span,
                f"{name} walks the file system on every call and runs {describe_contexts(bad)}: "
                "that is every new Lua context or every message; use the cached kumo.fs.glob",
                key=f"{name} {','.join(bad)}",
            )


BLOCKING_CALL = rule(
    "R104",
    "blocking-call",
    "warning",
    "Blocking I/O in realtime handlers; uncached globs at file level",
    doc="""
KumoMTA runs event handlers on async runtimes. Lua's own `io.*` (and `os.execute`, `os.remove`,
`os.rename`) block the OS thread while they run, stalling every other SMTP session or delivery
scheduled on it; KumoMTA documents `kumo.fs.*` as the non-blocking replacement, and
`kumo.serde.*_load` / memoized loaders for data. `kumo.uncached_glob` and `kumo.fs.uncached_glob`
walk the file system on every call; their reference pages say not to call them from the file-level
scope, which runs for every new Lua context (and realtime handlers run for every message). Only
calls in realtime handlers (and, for the uncached globs, at file level) are reported; blocking I/O
in `init` or `pre_init` runs once and is fine. The list of blocking functions is data
(`[lua_stdlib] blocking` and `blocking = true` in the API table).
""",
    bad="""
kumo.on('smtp_server_mail_from', function(sender)
  local f = io.open('/opt/kumomta/etc/policy/blocked.txt')
  local text = f:read('*a')
  f:close()
end)
""",
    good="""
local load_blocked = kumo.memoize(function()
  return kumo.serde.json_load('/opt/kumomta/etc/policy/blocked.json')
end, { name = 'user.blocked_senders', ttl = '5 minutes', capacity = 1, invalidate_with_epoch = true })
""",
    fix="Use kumo.fs.* or kumo.serde.*_load, cache the result with kumo.memoize, and use "
    "kumo.fs.glob instead of the uncached variant.",
)(_check_blocking_call)


# ----- R105 unmonitored-config ----------------------------------------------------------------------------


def _monitor_globs(model: PolicyModel) -> tuple[CallSite | None, MonitorGlobs]:
    """The globs in force: those of the last `set_config_monitor_globs` call in load order (each
    element literal or computed), or KumoMTA's default."""
    order = LoadOrder(model)
    sites = [s for s in model.calls_to("kumo.set_config_monitor_globs") if s.contexts]
    if not sites:
        return None, MonitorGlobs(DEFAULT_MONITOR_GLOBS, explicit=False, complete=True)
    site = max(sites, key=lambda s: order.key(s.module, s.call.span))
    globs, computed, complete = glob_list(site.arg(0))
    state = MonitorGlobs(tuple(globs), True, complete, site.module, site.span, tuple(computed))
    return site, state


def _check_unmonitored_config(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    api: KumoApi = ctx.api
    site, state = _monitor_globs(model)
    if site is not None and not state.complete and not state.globs:
        return  # nothing of the list is known: whether it covers anything cannot be told

    shown = ", ".join(repr(g) for g in state.globs)
    if state.computed:
        shown += (", " if shown else "") + ", ".join(c.describe() for c in state.computed)
    source = (
        f"the globs set at {where(site.module, site.span)} ({shown})"
        if site is not None
        else f"the default config-monitor glob ({shown})"
    )

    def report(module: str, span: Any, path: str, effect: str) -> Iterator[Finding]:
        covered = state.covers(path)
        if covered is True:
            return
        if covered is None:
            maybe = state.unknown_for(path)
            unknown = (
                " and ".join(c.describe() for c in maybe)
                if maybe
                else "the part of the list computed at run time"
            )
            yield UNMONITORED_CONFIG.finding(
                module,
                span,
                f"none of the literal globs among {source} covers {path}, and whether "
                f"{unknown} does is known only at run time: make sure it does, or edits to it "
                "may never start a new configuration epoch",
                key=f"unmonitored {path}",
                severity=Severity.INFO,
            )
            return
        yield UNMONITORED_CONFIG.finding(
            module,
            span,
            f"{source} do not cover {path}{effect}",
            key=f"unmonitored {path}",
        )

    entry = model.path_map.to_deployed(model.entry) if model.mode == "policy" else None
    if entry is not None and site is not None:
        yield from report(
            site.module,
            site.call.name_span,
            entry,
            ": edits to it never start a new configuration epoch, so pooled Lua contexts keep "
            "running the old policy until they expire",
        )
    seen: set[str] = set()
    for ref in model.data_refs:
        if ref.implicit or ref.tree_path is None:
            continue
        if FILE not in ref.contexts and not realtime_contexts(api, ref.contexts):
            continue  # read only in init/pre_init: a restart applies it, monitoring cannot
        deployed = ref.written if ref.written.startswith("/") else None
        deployed = deployed or model.path_map.to_deployed(ref.tree_path)
        if deployed is None or deployed in seen:
            continue
        seen.add(deployed)
        yield from report(
            ref.module,
            ref.span,
            deployed,
            f" ({ref.loader}): edits to it never start a new configuration epoch, so caches "
            "refreshed per epoch keep the old data",
        )
    yield from _computed_data_paths(model, api, state, source)


def _computed_data_paths(
    model: PolicyModel, api: KumoApi, state: MonitorGlobs, source: str
) -> Iterator[Finding]:
    """Data files read by a computed path with a known directory and extension
    (`'/opt/kumomta/etc/policy/' .. name .. '.toml'`): covered, never covered, or unknown."""
    for site in model.sites_of(*(".".join(name) for name in sorted(DATA_LOADERS))):
        value = site.arg(0)
        if not isinstance(value, Unknown) or not value.prefix.startswith("/"):
            continue
        if FILE not in site.contexts and not realtime_contexts(api, site.contexts):
            continue
        covered = state.covers_computed(value.prefix, value.suffix)
        if covered is True:
            continue
        shown = f"{value.prefix}...{value.suffix}"
        loader = site.call.text
        if covered is None:
            yield UNMONITORED_CONFIG.finding(
                site.module,
                value.span,
                f"whether {source} cover the files {loader} reads from {shown} depends on the "
                f"part of the path computed at run time ({value.source}): make sure they do, or "
                "edits to those files may never start a new configuration epoch",
                key=f"unmonitored {shown}",
                severity=Severity.INFO,
            )
            continue
        yield UNMONITORED_CONFIG.finding(
            site.module,
            value.span,
            f"{source} cover no file {loader} can read from {shown} (the path is computed, but "
            "its directory and extension are known): edits to those files never start a new "
            "configuration epoch, so caches refreshed per epoch keep the old data",
            key=f"unmonitored {shown}",
        )


UNMONITORED_CONFIG = rule(
    "R105",
    "unmonitored-config",
    "warning",
    "Config-monitor globs that leave the policy entry file or a loaded data file unwatched",
    doc="""
Since 2024.11.08 KumoMTA polls the files matched by its config-monitor globs every 10 seconds and
starts a new configuration epoch when their contents change; the epoch discards pooled Lua
contexts and refreshes everything cached "per epoch" (helper data with `invalidate_with_epoch`,
queue and egress-path configs with `refresh_strategy = 'Epoch'`). The default glob is
`/opt/kumomta/etc/**/*.{lua,json,toml,yaml}`; `kumo.set_config_monitor_globs` replaces it
entirely. A file outside the globs (a `.yml`/`.json5`/`.csv` file, a file outside
`/opt/kumomta/etc`, or anything a narrower glob list forgets, such as `init.lua` itself) is never
noticed: edits take effect only when contexts or caches expire, or not at all. The queue helper's
`--validate` check reports the same for its own files.

Paths in the audited tree are translated to their deployed location with the path map; globs are
matched with KumoMTA's semantics (`*` and `?` within one path component, `**` for any number of
directories, `{a,b}` alternatives, `[...]` classes). Data read only in `init`/`pre_init` is not
reported (monitoring cannot apply it; a restart does). Lists computed by the policy are followed
element by element (locals, concatenation, `table.insert`, `t[#t + 1] = v`, loops over literal
lists, tables built field by field); when a file is not covered by the known globs and a glob
computed at run time might cover it (its known prefix and suffix allow it), the finding is an info
that names that glob.
""",
    bad="""
kumo.on('init', function()
  kumo.set_config_monitor_globs { '/opt/kumomta/etc/policy/*.toml' } -- init.lua is not watched
end)
""",
    good="""
kumo.on('init', function()
  kumo.set_config_monitor_globs {
    '/opt/kumomta/etc/**/*.{lua,json,toml,yaml}',
    '/opt/kumomta/etc/dkim/**/*.key',
  }
end)
""",
    fix="Add a glob that covers the file (keep the default glob in the list when replacing it), "
    "or move the file under /opt/kumomta/etc with a watched extension.",
)(_check_unmonitored_config)


# ----- R106 dead-handler ----------------------------------------------------------------------------------


def _check_dead_handler(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    order = LoadOrder(model)
    queue_setups = [
        s
        for s in model.setups_of("queue")
        if FILE in s.site.contexts
        and any(
            h.event == "get_queue_config" and h.module == s.site.module and h.span == s.site.span
            for h in model.handlers
        )
    ]
    if not queue_setups:
        return
    queue = min(queue_setups, key=lambda s: order.key(s.site.module, s.site.call.span))
    queue_key = order.key(queue.site.module, queue.site.call.span)
    label = setup_label(queue)
    setups = {(s.site.module, s.site.span): s for s in model.helper_setups}
    for handler in model.handlers_for("get_queue_config"):
        if FILE not in handler.contexts or order.key(handler.module, handler.span) <= queue_key:
            continue
        if handler.origin == "policy":
            what = "this get_queue_config handler"
            span = handler.event_span
        else:
            setup = setups.get((handler.module, handler.span))
            if setup is None or setup.helper.key == "queue" or not _answers_queues(setup):
                continue
            what = f"the get_queue_config handler {setup_label(setup)} registers"
            span = setup.site.call.name_span
        yield DEAD_HANDLER.finding(
            handler.module,
            span,
            f"{what} is registered after {label} at {where(queue.site.module, queue.site.span)}: "
            "the queue helper's handler answers every get_queue_config call, so this one never runs",
            key=f"get_queue_config after {label} {handler.origin}",
        )


def _answers_queues(setup: Any) -> bool:
    """Whether a helper's get_queue_config handler matters: log hooks always (their queues), shaping
    only when it publishes to TSA (its handler serves only the TSA queue domains)."""
    if setup.helper.key == "log_hooks":
        return True
    if setup.helper.key == "shaping":
        options = setup.options
        publish = options.get("publish") if isinstance(options, Table) else None
        return publish is not None and not (isinstance(publish, Table) and not publish.entries)
    return True


DEAD_HANDLER = rule(
    "R106",
    "dead-handler",
    "warning",
    "A get_queue_config handler registered after the queue helper's, which always answers",
    doc="""
`get_queue_config` accepts several handlers and calls them in registration order until one returns
a value. The queue helper's handler always returns a queue configuration (it starts from
`refresh_strategy = 'Epoch'`, so it is never empty), so every handler registered after
`queue_module:setup*` never runs: its retry, pool or protocol settings are silently ignored. The
same applies to the handlers helpers register for their own queues: `log_hooks:new*` (the hook's
delivery queue) and shaping with `publish` (the TSA queue). KumoMTA's example policy says: ensure
that webhooks and shaping are set up before the queue helper. Registration order follows load
order: a required module's top level runs at its `require`.
""",
    bad="""
local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
  if domain == 'smarthost.example' then
    return kumo.make_queue_config { protocol = { smtp = { mx_list = { 'relay.example' } } } }
  end
end)
""",
    good="""
kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
  if domain == 'smarthost.example' then
    return kumo.make_queue_config { protocol = { smtp = { mx_list = { 'relay.example' } } } }
  end
end)
local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
""",
    fix="Register the handler (and set up log hooks and shaping) before the queue helper, or "
    "express the settings in the queue helper's data file.",
)(_check_dead_handler)


# ----- R107 memoize-name-clash ----------------------------------------------------------------------------


def _check_memoize_name_clash(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    api: KumoApi = ctx.api
    order = LoadOrder(model)
    builtin = set(api.builtin_caches)
    helper_owner = {
        name: helper.module for helper in api.helpers.values() for name in helper.memoize_names
    }
    helper_caches = set(api.helper_caches) | set(helper_owner)
    sites = sorted(
        (s for s in model.calls_to("kumo.memoize") if s.contexts),
        key=lambda s: order.key(s.module, s.call.span),
    )
    first_by_name: dict[str, CallSite] = {}
    for site in sites:
        table = site.table_arg(1)
        value = table.get("name") if table is not None else None
        if not (isinstance(value, Lit) and isinstance(value.value, str)):
            continue
        name = value.value
        if name in builtin:
            problem = (
                f"is the name of KumoMTA's built-in '{name}' cache: kumo.memoize raises an error "
                "(built-in names are reserved; prefix your cache names with 'user.')"
            )
        elif name in helper_caches:
            owner = helper_owner.get(name, "a policy-extras helper")
            if _is_module(model, site.module, owner):
                continue  # the helper's own cache, in the helper module itself
            problem = (
                f"is the cache {owner} uses: memoize caches are process-wide and keyed by name, so "
                "the two replace each other's cache and return each other's values"
            )
        else:
            first = first_by_name.setdefault(name, site)
            if first is site:
                continue
            problem = (
                f"is also used by the kumo.memoize at {where(first.module, first.span)}: memoize "
                "caches are process-wide and keyed by name, so the two functions share one cache "
                "and return each other's values"
            )
        yield MEMOIZE_NAME_CLASH.finding(
            site.module,
            value.span,
            f"memoize cache name '{name}' {problem}",
            key=f"memoize {name}",
        )


def _is_module(model: PolicyModel, path: str, module_name: str) -> bool:
    """True when the tree file `path` is the helper module `module_name` (e.g. policy-extras.queue):
    laid out as its package path, or audited alone under its file name. (A policy's `require` of a
    helper never loads a tree file: it resolves to KumoMTA's own copy.)"""
    relative = module_name.replace(".", "/") + ".lua"
    if path == relative or path.endswith("/" + relative):
        return True
    return path == model.entry and path.rsplit("/", 1)[-1] == relative.rsplit("/", 1)[-1]


MEMOIZE_NAME_CLASH = rule(
    "R107",
    "memoize-name-clash",
    "error",
    "A kumo.memoize cache name that collides with a built-in cache, a helper's cache, or another memoize",
    doc="""
`kumo.memoize` caches are process-wide (shared by every Lua context) and identified only by their
`name`. A name that is one of KumoMTA's built-in lruttl caches (`dns_resolver_mx`,
`egress_source_pools`, ...) makes `kumo.memoize` raise; a name a policy-extras helper uses
(`sources_data`, `queue_helper_data`, `shaping_data`, `listener_domains_data`, `dkim_signing_data`,
...) or that two different memoize calls in the policy both use makes the functions share one cache:
each can return values the other computed, keyed by the same arguments, and redefining the cache
with other parameters replaces it. Prefix your own cache names, e.g. `user.relay_users`.
""",
    bad="""
local lookup = kumo.memoize(load_sources, { name = 'sources_data', ttl = '5 minutes', capacity = 10 })
""",
    good="""
local lookup = kumo.memoize(load_sources, { name = 'user.sources_lookup', ttl = '5 minutes', capacity = 10 })
""",
    fix="Give each memoized function its own name, prefixed with `user.`.",
)(_check_memoize_name_clash)


# ----- R108 ttl-only-reload -------------------------------------------------------------------------------

_DATA_READERS = {"io.open", "io.lines", "kumo.fs.open", "kumo.fs.read_dir"}


def _reads_data(callee: tuple[object, ...]) -> bool:
    if not callee or not all(isinstance(p, str) for p in callee):
        return False
    if callee[0] == "global":
        return ".".join(callee[1:]) in _DATA_READERS  # type: ignore[arg-type]
    if callee[0] != "kumo":
        return False
    name = ".".join(callee)  # type: ignore[arg-type]
    return name.endswith("_load") or name in _DATA_READERS


def _check_ttl_only_reload(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    for setup in model.helper_setups:
        helper = setup.helper
        if (
            not setup.site.contexts
            or not helper.data_format
            or helper.invalidate_with_epoch
            or "invalidate_with_epoch" not in helper.options
        ):
            continue
        if not isinstance(setup.site.arg(0), Table):
            continue  # options computed at run time
        options = setup.options
        flag = options.get("invalidate_with_epoch") if options is not None else None
        if isinstance(flag, Lit) and flag.value is True:
            continue
        if flag is not None and not isinstance(flag, Lit):
            continue  # computed at run time
        cache = helper.memoize_names[0] if helper.memoize_names else "its data cache"
        yield TTL_ONLY_RELOAD.finding(
            setup.site.module,
            setup.site.call.name_span,
            f"{setup_label(setup)} caches its data files in '{cache}' without "
            "invalidate_with_epoch = true: edited files are re-read only when that cache's TTL "
            "expires, not when KumoMTA starts a new configuration epoch",
            key=f"ttl-only {helper.key}",
            fix=f"Use {helper.key} setup_with_options{{ ..., invalidate_with_epoch = true }}."
            if "setup_with_options" in helper.setup_methods
            else None,
        )
    yield from _ttl_only_memoize(model)


def _ttl_only_memoize(model: PolicyModel) -> Iterator[Finding]:
    readers: set[tuple[str, int]] = {
        (site.module, site.call.func) for site in model.calls if _reads_data(site.call.callee)
    }
    for site in model.calls_to("kumo.memoize"):
        if not site.contexts:
            continue
        target = function_key(
            model, site.module, site.call.arg_refs[0] if site.call.arg_refs else None
        )
        if target is None or target not in readers:
            continue
        options = site.table_arg(1)
        if options is None:
            continue
        flag = options.get("invalidate_with_epoch")
        if isinstance(flag, Lit) and flag.value is True:
            continue
        if flag is not None and not isinstance(flag, Lit):
            continue
        name = options.get("name")
        label = name.value if isinstance(name, Lit) and isinstance(name.value, str) else "?"
        yield TTL_ONLY_RELOAD.finding(
            site.module,
            site.call.name_span,
            f"kumo.memoize '{label}' caches a function that reads files, without "
            "invalidate_with_epoch = true: edits to those files are seen only when the cache TTL "
            "expires, not when KumoMTA starts a new configuration epoch",
            key=f"ttl-only memoize {label}",
            fix="Add invalidate_with_epoch = true to the memoize options.",
        )


TTL_ONLY_RELOAD = rule(
    "R108",
    "ttl-only-reload",
    "info",
    "Data re-read only when a cache TTL expires, not on a new configuration epoch",
    doc="""
A configuration epoch (a monitored file changed, or `kumo.bump_config_epoch()` / the
`bump-config-epoch` admin endpoint) is KumoMTA's signal that configuration changed. Caches created
with `invalidate_with_epoch = true` are emptied then; others keep serving the old data until their
TTL expires. The queue helper caches its data files (`queue_helper_data`, 1 minute) without epoch
invalidation unless `setup_with_options{ ..., invalidate_with_epoch = true }` is used (option added
in 2026.04.09); meanwhile the queue configs it produces refresh per epoch, so a bump shortly after an
edit can re-read up to a minute old data and then not refresh again until the next bump.

Other TTL-only data reported: a `kumo.memoize` whose memoized function reads files (`*_load`,
`kumo.fs.open`, `io.open`/`io.lines`) without `invalidate_with_epoch = true`. Data whose helper
invalidates per epoch by itself (sources, listener_domains, dkim_sign, shaping) is not reported.
This is informational: the data does reload, just later than an epoch bump suggests.
""",
    bad="""
local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
""",
    good="""
local queue_helper = queue_module:setup_with_options {
  file_names = { '/opt/kumomta/etc/policy/queues.toml' },
  invalidate_with_epoch = true,
}
""",
    fix="Set invalidate_with_epoch = true (queue helper: use setup_with_options).",
)(_check_ttl_only_reload)
