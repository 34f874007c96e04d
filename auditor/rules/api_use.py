"""E2xx: the policy loads, but registers handlers or calls KumoMTA's API in ways that fail or never run."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from typing import Any

from auditor.core.findings import Finding, Span
from auditor.kumo.api import HelperSpec, KumoApi, ParamSpec
from auditor.kumo.model import FILE, CallSite, Handler, HelperSetup, PolicyModel
from auditor.kumo.values import find_type_error
from auditor.lua.literal import Lit, Table, Value
from auditor.rules.query import literal_str
from auditor.rules.registry import rule

# ----- shared helpers (also used by auditor.rules.reload) ------------------------------------------------

OrderKey = tuple[int, ...]
_UNREACHED: OrderKey = (10**9,)


class LoadOrder:
    """Execution order of file-level code across modules.

    A required module's top level runs at its first `require`, so a position inside it sorts as the
    require call's position followed by its own line and column. Code in functions is ordered by where
    it is written (an approximation: a function may be called later than it is defined).
    """

    def __init__(self, model: PolicyModel) -> None:
        self.model = model
        self._module_keys: dict[str, OrderKey] = {model.entry: ()}
        self._busy: set[str] = set()

    def module_key(self, module: str) -> OrderKey:
        known = self._module_keys.get(module)
        if known is not None:
            return known
        if module in self._busy:
            return _UNREACHED
        self._busy.add(module)
        best: OrderKey | None = None
        for edge in self.model.requires:
            if edge.target != module or edge.module == module or not edge.contexts:
                continue
            key = (*self.module_key(edge.module), edge.span.line, edge.span.column)
            if key[:1] != _UNREACHED and (best is None or key < best):
                best = key
        self._busy.discard(module)
        result = best if best is not None else _UNREACHED
        self._module_keys[module] = result
        return result

    def key(self, module: str, span: Span) -> OrderKey:
        return (*self.module_key(module), span.line, span.column)


def handler_contexts(contexts: Iterable[str]) -> list[str]:
    """The event names among `contexts` (everything but the file level), sorted."""
    return sorted(c for c in contexts if c != FILE)


def realtime_contexts(api: KumoApi, contexts: Iterable[str]) -> list[str]:
    """The contexts that are events KumoMTA fires while traffic flows."""
    out = []
    for context in contexts:
        if context == FILE:
            continue
        spec = api.event(context)
        if spec is not None and spec.phase == "realtime" and not spec.obsolete:
            out.append(context)
    return sorted(out)


def describe_contexts(contexts: Iterable[str]) -> str:
    parts = []
    for context in sorted(contexts, key=lambda c: (c != FILE, c)):
        parts.append("at file level" if context == FILE else f"in the '{context}' handler")
    return " and ".join(parts)


def where(module: str, span: Span) -> str:
    return f"{module}:{span.line}"


def closest(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=cutoff)
    return match[0] if match else None


def function_key(model: PolicyModel, module: str, ref: object) -> tuple[str, int] | None:
    """The policy function a literal reference (`("fn", id)`, a global function name) denotes."""
    if not isinstance(ref, tuple) or not ref:
        return None
    if ref[0] == "fn" and len(ref) == 2 and isinstance(ref[1], int):
        return (module, ref[1])
    if ref[0] == "memoized":
        return function_key(model, module, ref[1:])
    if ref[0] == "global" and len(ref) == 2:
        for path, mod in model.modules.items():
            fid = mod.facts.global_functions.get(str(ref[1]))
            if fid is not None:
                return (path, fid)
    return None


def setup_label(setup: HelperSetup) -> str:
    """The setup call as written (`sources:setup`, `queue_module:setup_with_options`)."""
    return setup.site.call.text


def _conditional(model: PolicyModel, module: str, span: Span) -> bool:
    site = model.site_at(module, span)
    return site is not None and site.call.in_condition


# ----- E201 ----------------------------------------------------------------------------------------------


def _registrations(model: PolicyModel) -> list[tuple[Handler, str]]:
    """File-level handler registrations with a label of who registers them.

    A helper module's require-time registrations happen once per Lua context, however often the
    module is required (package.loaded caches it); dynamic helper registrations (`make.<name>.log_hook`)
    are expanded from literal setup options.
    """
    require_spans = {(e.module, e.span): e for e in model.requires}
    out: list[tuple[Handler, str]] = []
    seen_require: set[tuple[str, str]] = set()
    setups = {(s.site.module, s.site.call.span): s for s in model.helper_setups}
    for handler in model.handlers:
        if FILE not in handler.contexts:
            continue
        if handler.origin == "policy":
            out.append((handler, "kumo.on"))
            continue
        edge = require_spans.get((handler.module, handler.span))
        if edge is not None and edge.helper is not None:
            if (edge.helper.key, handler.event) in seen_require:
                continue
            seen_require.add((edge.helper.key, handler.event))
            out.append((handler, f"require '{edge.name}'"))
            continue
        setup = setups.get((handler.module, handler.span))
        out.append((handler, setup_label(setup) if setup else handler.origin))
    for setup in model.helper_setups:
        if FILE not in setup.site.contexts:
            continue
        for event in dynamic_events(setup):
            out.append(
                (
                    Handler(
                        event,
                        setup.site.module,
                        setup.site.call.span,
                        setup.site.call.name_span,
                        setup.site.contexts,
                        f"helper:{setup.helper.key}",
                    ),
                    setup_label(setup),
                )
            )
    return out


def dynamic_events(setup: HelperSetup) -> list[str]:
    """Event names a helper setup registers from its options (`make.{name}.log_hook`)."""
    options = setup.options
    if options is None:
        return []
    events: list[str] = []
    for template in setup.helper.dynamic_for(setup.method):
        holes = re.findall(r"\{(\w+)\}", template)
        if len(holes) != 1:
            continue
        value = options.get(holes[0])
        values: list[Value] = (
            value.array() if isinstance(value, Table) else [value] if value else []
        )
        for item in values:
            if isinstance(item, Lit) and isinstance(item.value, str):
                events.append(template.replace("{" + holes[0] + "}", item.value))
    return events


def _source_text(model: PolicyModel, module: str, span: Span) -> str:
    """The (first line of the) source text a span covers, for messages."""
    mod = model.modules.get(module)
    if mod is None:
        return ""
    lines = mod.text.splitlines()
    if not 0 < span.line <= len(lines):
        return ""
    line = lines[span.line - 1]
    end = span.end_column - 1 if span.end_line == span.line else len(line)
    return line[span.column - 1 : end].strip()


# ----- E201 duplicate-handler -----------------------------------------------------------------------------


def _check_duplicate_handler(ctx: Any) -> Iterator[Finding]:
    model, api = ctx.model, ctx.api
    order = LoadOrder(model)
    by_event: dict[str, list[tuple[OrderKey, Handler, str]]] = {}
    for handler, label in _registrations(model):
        if api.is_multi(handler.event):
            continue
        key = order.key(handler.module, handler.span)
        by_event.setdefault(handler.event, []).append((key, handler, label))
    for event, regs in sorted(by_event.items()):
        if len(regs) < 2:
            continue
        regs.sort(key=lambda r: r[0])
        _, first, first_label = regs[0]
        first_cond = _conditional(model, first.module, first.span)
        for _, handler, label in regs[1:]:
            if first_cond and _conditional(model, handler.module, handler.span):
                continue  # both in branches: possibly exclusive
            subject = (
                "a second handler is registered"
                if label == "kumo.on"
                else f"{label} registers a second handler"
            )
            yield DUPLICATE_HANDLER.finding(
                handler.module,
                handler.event_span,
                f"'{event}' accepts a single handler and {first_label} already registered one at "
                f"{where(first.module, first.span)}; {subject} here, so KumoMTA raises "
                f"'{event} event already has a handler defined' while loading the policy and no "
                "Lua context can be created",
                key=f"{event} {label} after {first_label}",
            )


DUPLICATE_HANDLER = rule(
    "E201",
    "duplicate-handler",
    "error",
    "A second handler for a single-handler event, counting the handlers helpers register",
    doc="""
Most KumoMTA events accept exactly one handler; only `pre_init`, `validate_config`,
`get_queue_config`, `throttle_insert_ready_queue`, `requeue_message`, `should_enqueue_log_record`
and `get_acl_definition` accumulate several. A second `kumo.on` for any other event makes KumoMTA
raise "<event> event already has a handler defined at <file>:<line>" while it loads the policy, so
no Lua context can be created: kumod does not start, and a running kumod fails every new Lua
context once the edited policy is picked up. (The reference page for `kumo.on` still says the last
registration wins; the server code raises.)

Helpers count: `sources:setup` registers `get_egress_source` and `get_egress_pool` itself,
`log_hooks:new*` registers `make.<name>.log_hook`, and requiring `policy-extras.shaping`
registers its TSA task events. Both places are named. Two registrations that are both inside
conditional code (`if`/`else` branches) are not reported: they may be exclusive.
""",
    bad="""
local sources = require 'policy-extras.sources'
sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
kumo.on('get_egress_source', function(name)
  return kumo.make_egress_source { name = name }
end)
""",
    good="""
local sources = require 'policy-extras.sources'
-- the helper answers get_egress_source and get_egress_pool from sources.toml
sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
""",
    fix="Keep one handler for the event: delete the extra registration, merge both into one function, "
    "or describe the data in the helper's file instead of a hand-written handler.",
)(_check_duplicate_handler)


# ----- E202 register-inside-handler -----------------------------------------------------------------------

_SCRIPT_EVENT = "main"  # `kumod --script`: kumo.on is allowed inside `main`


def _inside(contexts: Iterable[str]) -> list[str]:
    return [c for c in handler_contexts(contexts) if c != _SCRIPT_EVENT]


def _check_register_inside_handler(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    consequence = (
        "KumoMTA raises 'Attempting to register an event handler via kumo.on(...) from within the "
        "event handler' every time {events} runs{init}"
    )

    def message(what: str, events: list[str], how: str) -> str:
        names = ", ".join(f"'{e}'" for e in events)
        init = (
            " (in init: kumod exits at startup)" if "init" in events or "pre_init" in events else ""
        )
        return (
            f"{what} runs inside the {names} handler{'s' if len(events) > 1 else ''}{how}; "
            + consequence.format(events=names, init=init)
        )

    for site in model.calls_to("kumo.on"):
        events = _inside(site.contexts)
        if events:
            yield REGISTER_INSIDE_HANDLER.finding(
                site.module,
                site.call.name_span,
                message("kumo.on", events, ""),
                key=f"kumo.on in {','.join(events)} {_event_arg(site)}",
            )
    for setup in model.helper_setups:
        events = _inside(setup.site.contexts)
        if events:
            label = setup_label(setup)
            yield REGISTER_INSIDE_HANDLER.finding(
                setup.site.module,
                setup.site.call.name_span,
                message(label, events, f" ({label} registers its handlers with kumo.on)"),
                key=f"{label} in {','.join(events)}",
            )
    file_level = {e.helper.key for e in model.requires if e.helper and FILE in e.contexts}
    for edge in model.requires:
        helper = edge.helper
        if helper is None or not helper.registers_on_require or helper.key in file_level:
            continue
        events = _inside(edge.contexts)
        if events:
            yield REGISTER_INSIDE_HANDLER.finding(
                edge.module,
                edge.span,
                message(
                    f"require '{edge.name}'",
                    events,
                    " (the module calls kumo.on when it is first loaded)",
                ),
                key=f"require {edge.name} in {','.join(events)}",
            )


def _event_arg(site: CallSite) -> str:
    return site.str_arg(0) or "?"


REGISTER_INSIDE_HANDLER = rule(
    "E202",
    "register-inside-handler",
    "error",
    "kumo.on, a helper setup, log_hooks:new* or require of a helper module inside an event handler",
    doc="""
Event handlers must be registered while the policy file loads. `kumo.on` checks which event is
running and raises "Attempting to register an event handler via `kumo.on(...)` from within the event
handler ..." when called from any handler, `init` and `pre_init` included. The policy-extras
helpers call `kumo.on` in their `setup*` / `log_hooks:new*` methods and when their module is first
required, so those fail the same way. Inside `init` that stops kumod at startup; inside a realtime
handler every message or session that reaches it fails.

A `require 'policy-extras.X'` inside a handler is reported only when the same helper is not also
required at file level (a module required at file level is cached, and requiring it again does not
run its top level).
""",
    bad="""
kumo.on('init', function()
  local listener_domains = require 'policy-extras.listener_domains'
  kumo.on('get_listener_domain', listener_domains:setup { '/opt/kumomta/etc/policy/domains.toml' })
end)
""",
    good="""
local listener_domains = require 'policy-extras.listener_domains'
kumo.on('get_listener_domain', listener_domains:setup { '/opt/kumomta/etc/policy/domains.toml' })
""",
    fix="Move the registration, helper setup or require to the top level of the policy file.",
)(_check_register_inside_handler)


# ----- E203 helper-configured-twice -----------------------------------------------------------------------

# kumod keeps log hooks and disposition hooks in one list and refuses a name already in it
# (K:crates/kumod/src/logging/mod.rs Logger::init_hook, Logger::init_disp_hook); the log_hooks
# helper configures one of them for each of these methods, after its own check of the name.
_LOG_HOOK_FUNCTIONS = ("kumo.configure_log_hook", "kumo.configure_log_disposition_hook")
_LOG_HOOK_METHODS = ("new", "new_json", "new_disposition_hook")


def _check_helper_configured_twice(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    order = LoadOrder(model)
    reached = [s for s in model.helper_setups if s.site.contexts]
    reached.sort(key=lambda s: order.key(s.site.module, s.site.call.span))
    first_by_helper: dict[str, HelperSetup] = {}
    for setup in reached:
        if setup.helper.key == "log_hooks":
            continue
        first = first_by_helper.setdefault(setup.helper.key, setup)
        if first is setup or (first.site.call.in_condition and setup.site.call.in_condition):
            continue
        yield HELPER_CONFIGURED_TWICE.finding(
            setup.site.module,
            setup.site.call.name_span,
            f"{setup.helper.module} is already configured by {setup_label(first)} at "
            f"{where(first.site.module, first.site.call.span)}; this {setup_label(setup)} makes the "
            f"helper raise '{setup.helper.key} module has already been configured' while the policy "
            "loads, so no Lua context can be created",
            key=f"{setup.helper.key} {setup_label(setup)} after {setup_label(first)}",
        )
    yield from _duplicate_log_hooks(model, order, reached)


def _duplicate_log_hooks(
    model: PolicyModel, order: LoadOrder, setups: list[HelperSetup]
) -> Iterator[Finding]:
    # (order, name, by_helper, module, span, label, conditional)
    entries: list[tuple[OrderKey, str, bool, str, Span, str, bool]] = []
    for setup in setups:
        if setup.helper.key != "log_hooks" or setup.method not in _LOG_HOOK_METHODS:
            continue
        name = literal_str(setup.options, "name")
        if name:
            site = setup.site
            entries.append(
                (
                    order.key(site.module, site.call.span),
                    name,
                    True,
                    site.module,
                    site.call.name_span,
                    setup_label(setup),
                    site.call.in_condition,
                )
            )
    for function in _LOG_HOOK_FUNCTIONS:
        for site in model.calls_to(function):
            name = literal_str(site.table_arg(0), "name")
            if name and site.contexts:
                entries.append(
                    (
                        order.key(site.module, site.call.span),
                        name,
                        False,
                        site.module,
                        site.call.name_span,
                        function,
                        site.call.in_condition,
                    )
                )
    entries.sort(key=lambda e: e[0])
    for i, (_, name, helper, module, span, label, cond) in enumerate(entries):
        for _, name0, helper0, module0, span0, label0, cond0 in entries[:i]:
            if name0 != name or (cond and cond0):
                continue
            error = (
                f"log_hook with name '{name}' has already been configured"
                if helper and helper0
                else f"A logging hook with name `{name}` has already been registered"
            )
            yield HELPER_CONFIGURED_TWICE.finding(
                module,
                span,
                f"log hook '{name}' is already configured by {label0} at {where(module0, span0)}; "
                f"configuring it again here raises '{error}'",
                key=f"log hook {name} {label} after {label0}",
            )
            break


HELPER_CONFIGURED_TWICE = rule(
    "E203",
    "helper-configured-twice",
    "error",
    "A policy-extras helper configured more than once, or the same log hook name configured twice",
    doc="""
Each policy-extras helper (shaping, queue, sources, listener_domains, dkim_sign) may be set up
once per Lua context: a second `setup`, `setup_with_automation` or `setup_with_options` raises
"<helper> module has already been configured" while the policy loads, so no Lua context can be
created (kumod does not start, or a running kumod fails every new context). A common case is
`shaping:setup{...}` used for `get_egress_path_config` after `shaping:setup_with_automation{...}`.
`log_hooks:new`, `new_json` and `new_disposition_hook` raise "log_hook with name '<n>' has already been
configured" for a repeated name, and `kumo.configure_log_hook` / `kumo.configure_log_disposition_hook`
raise "A logging hook with name `<n>` has already been registered" when a log hook or disposition
hook of that name exists (kumod keeps both in one list; the helper's methods configure one each). Two setups that are both
inside conditional code are not reported.
""",
    bad="""
local shaper = shaping:setup_with_automation { extra_files = { '/opt/kumomta/etc/policy/shaping.toml' } }
kumo.on('get_egress_path_config', shaping:setup { '/opt/kumomta/etc/policy/shaping.toml' })
""",
    good="""
local shaper = shaping:setup_with_automation { extra_files = { '/opt/kumomta/etc/policy/shaping.toml' } }
kumo.on('get_egress_path_config', shaper.get_egress_path_config)
""",
    fix="Configure each helper once and reuse the object or handler it returns; give every log hook "
    "a distinct name.",
)(_check_helper_configured_twice)


# ----- E204 unknown-api -----------------------------------------------------------------------------------

_KUMO_ASSIGN = re.compile(r"\bkumo((?:\s*\.\s*[A-Za-z_]\w*)+)\s*=(?!=)")


def _user_kumo_members(model: PolicyModel) -> set[str]:
    """`kumo.x` names the policy defines itself (`kumo.x = ...`, `function kumo.x()`)."""
    names: set[str] = set()
    for mod in model.modules.values():
        for match in _KUMO_ASSIGN.finditer(mod.text):
            names.add("kumo" + re.sub(r"\s+", "", match.group(1)))
        for fn in mod.facts.functions:
            if fn.name and fn.name.startswith("kumo."):
                names.add(fn.name)
    return names


class _KumoNames:
    def __init__(self, api: KumoApi, user: set[str]) -> None:
        self.functions = set(api.functions)
        self.namespaces = {
            ".".join(parts[:i])
            for name in api.functions
            for parts in [name.split(".")]
            for i in range(1, len(parts))
        }
        self.user = user

    def unknown_prefix(self, path: tuple[object, ...]) -> str | None:
        """The shortest `kumo.*` prefix of `path` that KumoMTA does not define, or None."""
        for i in range(2, len(path) + 1):
            part = path[i - 1]
            if not isinstance(part, str) or part == "()":
                return None
            name = ".".join(str(p) for p in path[:i])
            if name in self.functions or any(
                name == u or name.startswith(u + ".") for u in self.user
            ):
                return None
            if name in self.namespaces:
                continue
            return name
        return None


def _helper_member_problem(helper: HelperSpec, path: tuple[object, ...]) -> tuple[int, str] | None:
    """(path length of the bad member, what is wrong) for a use of a helper module's member."""
    member = path[2]
    if not isinstance(member, str) or member == "()":
        return None
    if member in helper.removed_members:
        return 3, f"was {helper.removed_members[member]}"
    if member not in helper.module_members:
        return 3, f"is not a member of {helper.module}"
    if (
        len(path) >= 5
        and path[3] == "()"
        and member in helper.setup_methods
        and helper.returns_for(member) == "object"
        and isinstance(path[4], str)
        and path[4] != "()"
    ):
        obj = path[4]
        if obj in helper.removed_members:
            return 5, f"was {helper.removed_members[obj]}"
        if obj not in helper.object_members:
            return 5, f"is not a member of the object {helper.module}:{member}() returns"
    return None


def _api_uses(model: PolicyModel) -> Iterator[tuple[str, tuple[object, ...], Span, bool]]:
    """(module, path, span, called) for every call and member read rooted in kumo or a helper."""
    for site in model.calls:
        callee = site.call.callee
        if callee and callee[0] in ("kumo", "require"):
            yield site.module, callee, site.call.name_span, True
    for path, mod in model.modules.items():
        if path not in model.modules:
            continue
        for use in mod.facts.members:
            yield path, use.path, use.span, False


def _suggest_function(api: KumoApi, name: str) -> str | None:
    """A same-named function in another namespace, else a similar name in the same namespace."""
    namespace, _, last = name.rpartition(".")
    current = [n for n, f in api.functions.items() if not f.deprecated]
    for candidate in sorted(current):
        if candidate.rpartition(".")[2] == last:
            return candidate
    siblings = {n.rpartition(".")[2]: n for n in current if n.rpartition(".")[0] == namespace}
    _, sep, tail = last.partition("_")
    if sep and tail:  # define_egress_pool -> make_egress_pool: same object, other verb
        same_object = sorted(s for s in siblings if s.partition("_")[2] == tail)
        if same_object:
            return siblings[same_object[0]]
    match = closest(last, siblings, cutoff=0.7)
    return siblings[match] if match else None


def _check_unknown_api(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    api: KumoApi = ctx.api
    names = _KumoNames(api, _user_kumo_members(model))
    seen: set[tuple[str, int, int, str]] = set()
    for module, path, span, called in _api_uses(model):
        if path[0] == "kumo":
            bad = names.unknown_prefix(path)
            if bad is None or (module, span.line, span.column, bad) in seen:
                continue
            seen.add((module, span.line, span.column, bad))
            suggestion = _suggest_function(api, bad)
            hint = f"; did you mean {suggestion}?" if suggestion else ""
            yield UNKNOWN_API.finding(
                module,
                span,
                f"{bad} does not exist in KumoMTA: it is nil, so "
                f"{'this call' if called else 'using it'} raises an error when this code runs{hint}",
                key=f"unknown {bad}",
                fix=f"Use {suggestion}." if suggestion else None,
            )
            continue
        if len(path) < 3:
            continue
        helper = api.helper_for_module(str(path[1]))
        if helper is None:
            continue
        problem = _helper_member_problem(helper, path)
        if problem is None:
            continue
        length, what = problem
        shown = _source_text(model, module, span) or ".".join(map(str, path[1:length]))
        shown_key = ".".join(str(p) for p in path[1:length])
        if (module, span.line, span.column, shown_key) in seen:
            continue
        seen.add((module, span.line, span.column, shown_key))
        yield UNKNOWN_API.finding(
            module,
            span,
            f"{shown}: '{path[length - 1]}' {what}; it is nil, so "
            f"{'this call raises an error' if called else 'this registers or uses nothing'} "
            "when the code runs",
            key=f"helper {shown_key}",
        )


UNKNOWN_API = rule(
    "E204",
    "unknown-api",
    "error",
    "A kumo.* function that does not exist, or a helper member that does not exist or was removed",
    doc="""
Lua resolves names only when the code runs, so a call to a function KumoMTA does not provide (for
example `kumo.define_egress_source`, `kumo.get_signer`) fails only when that line executes: at file
level every new Lua context fails; inside a handler the event fails each time. A removed helper
member is nil: `shaper.get_queue_config` (removed in 2025.03.19; the shaping helper registers that
handler itself since 2023.11.28) makes `kumo.on('get_queue_config', shaper.get_queue_config)` pass
nil as the handler. Names the policy assigns into the `kumo` table itself are accepted. The closest
existing function is suggested.
""",
    bad="""
kumo.on('get_egress_source', function(name)
  return kumo.define_egress_source { name = name, source_address = '10.0.0.1' }
end)
""",
    good="""
kumo.on('get_egress_source', function(name)
  return kumo.make_egress_source { name = name, source_address = '10.0.0.1' }
end)
""",
    fix="Call the function KumoMTA provides (see the suggestion), or drop the removed helper member.",
)(_check_unknown_api)


# ----- E205 unknown-event ---------------------------------------------------------------------------------

# Keys whose string value names an event KumoMTA fires for the policy: spawn_task and key-source
# `event_name`, custom protocol `constructor`, and configure_local_logs `filter_event`
# (K:docs/reference/kumo/configure_local_logs/filter_event.md: "specifies the name of an event that
# should be triggered to decide whether logs for a given message should be included").
_CUSTOM_EVENT_KEYS = ("event_name", "constructor", "filter_event")


def _custom_events(ctx: Any) -> set[str]:
    """Event names the policy defines itself: spawn_task / key-source `event_name`, custom protocol
    `constructor`s (in Lua tables or helper data), and names helpers register for it."""
    names: set[str] = set()

    def walk_lua(value: Value | None) -> None:
        if not isinstance(value, Table):
            return
        for entry in value.entries:
            if (
                entry.key in _CUSTOM_EVENT_KEYS
                and isinstance(entry.value, Lit)
                and isinstance(entry.value.value, str)
            ):
                names.add(entry.value.value)
            walk_lua(entry.value)

    def walk_data(value: object, depth: int = 0) -> None:
        if depth > 64:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                if key in _CUSTOM_EVENT_KEYS and isinstance(item, str):
                    names.add(item)
                walk_data(item, depth + 1)
        elif isinstance(value, list):
            for item in value:
                walk_data(item, depth + 1)

    for site in ctx.model.calls:
        for arg in site.call.args:
            walk_lua(arg)
    for result in ctx.data.values():
        walk_data(getattr(result, "value", None))
    for setup in ctx.model.helper_setups:
        names.update(dynamic_events(setup))
    return names


def _check_unknown_event(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    api: KumoApi = ctx.api
    custom = _custom_events(ctx)
    for handler in model.handlers:
        if handler.origin != "policy":
            continue
        name = handler.event
        spec = api.event(name)
        if spec is not None and not spec.obsolete:
            continue
        if spec is None and name in custom:
            continue
        suggestion = api.closest_event(name)
        if spec is not None:
            message = (
                f"KumoMTA no longer fires '{name}' (an obsolete name"
                + (f"; the event is '{suggestion}'" if suggestion else "")
                + "): kumo.on accepts any name, so this handler silently never runs"
            )
        else:
            message = (
                f"KumoMTA never fires an event named '{name}', and the policy does not define it "
                "(spawn_task, key source or custom protocol): kumo.on accepts any name, so this "
                "handler silently never runs"
                + (f"; did you mean '{suggestion}'?" if suggestion else "")
            )
        yield UNKNOWN_EVENT.finding(
            handler.module,
            handler.event_span,
            message,
            key=f"event {name}",
            fix=f"Register the handler for '{suggestion}'." if suggestion else None,
        )


UNKNOWN_EVENT = rule(
    "E205",
    "unknown-event",
    "error",
    "kumo.on with an event name KumoMTA never fires",
    doc="""
`kumo.on` accepts any string and never complains, so a typo (`smtp_server_mail_rcpt_to`), an
obsolete name (`message_requeued`, now `requeue_message`) or an invented one registers a handler
that never runs: the check, routing or rewrite it implements silently does not happen. Events the
policy defines itself are recognised: `event_name` of `kumo.spawn_task` and of key sources
(`{ event_name = ..., event_args = ... }`), custom protocol `constructor` names (in Lua or in helper
data files), `make.*` constructors, `log_disposition_*` hooks and the names helpers register. The
closest real event is suggested.
""",
    bad="""
kumo.on('smtp_server_mail_rcpt_to', function(recipient, conn_meta)
  -- never called
end)
""",
    good="""
kumo.on('smtp_server_rcpt_to', function(recipient, conn_meta)
end)
""",
    fix="Use the event name KumoMTA fires (see the suggestion), or define the custom event where the "
    "policy starts it.",
)(_check_unknown_event)


# ----- E206 / E207 parameter tables -----------------------------------------------------------------------

# (kind, span, owner function, dotted label of the key, detail, known keys)
_ParamIssue = tuple[str, Span, str, str, str, tuple[str, ...]]


def _param_issues(ctx: Any) -> Iterator[tuple[str, str, Span, str, str, str, tuple[str, ...]]]:
    """(module, kind, span, owner, label, detail, known keys) for every literal parameter problem."""
    api: KumoApi = ctx.api
    for name, site in ctx.model.kumo_calls():
        spec = api.function(name)
        if spec is None or not spec.params:
            continue
        table = site.table_arg(spec.table_arg - 1)
        if table is None:
            continue
        for issue in _walk_params(api, name, table, spec.params, spec.strict, ""):
            yield (site.module, *issue)


def _walk_params(
    api: KumoApi, owner: str, table: Table, params: Any, strict: bool, prefix: str
) -> Iterator[_ParamIssue]:
    for key, entry in table.fields():
        label = f"{prefix}.{key}" if prefix else key
        spec: ParamSpec | None = params.get(key)
        if spec is None:
            if strict:
                yield (
                    "unknown",
                    entry.key_span or entry.value.span,
                    owner,
                    label,
                    key,
                    tuple(params),
                )
            continue
        yield from _walk_value(api, owner, entry.value, spec, label)


def _walk_value(
    api: KumoApi, owner: str, value: Value, spec: ParamSpec, label: str
) -> Iterator[_ParamIssue]:
    if value.is_unknown:
        return
    try:
        error = find_type_error(spec.type, value.py())
    except ValueError:  # a type the validator does not know: nothing to check
        return
    if error is not None:
        sub, message = error
        yield ("invalid", _locate(value, sub), owner, label + _sub_label(sub), message, ())
        return
    struct = api.struct(spec.struct) if spec.struct else None
    if struct is None or not isinstance(value, Table):
        return
    head = spec.type.split("(", 1)[0]
    if head == "table":
        targets = [(label, value)]
    elif head == "list":
        targets = [(f"{label}[{i + 1}]", v) for i, v in enumerate(value.array())]
    elif head == "map":
        targets = [(f"{label}[{k!r}]", e.value) for k, e in value.fields()]
    else:
        targets = []
    for sub_label, sub in targets:
        if isinstance(sub, Table):
            yield from _walk_params(api, owner, sub, struct.params, struct.strict, sub_label)


def _locate(value: Value, path: tuple[object, ...]) -> Span:
    """Span of the element `path` (from find_type_error) points at inside a literal table."""
    current: Value = value
    for part in path:
        if not isinstance(current, Table):
            break
        if isinstance(part, int) and not isinstance(part, bool):
            items = current.array()
            if part >= len(items):
                break
            current = items[part]
        else:
            found = current.get(part)  # type: ignore[arg-type]
            if found is None:
                break
            current = found
    return current.span


def _sub_label(path: tuple[object, ...]) -> str:
    return "".join(
        f"[{p + 1}]" if isinstance(p, int) and not isinstance(p, bool) else f"[{p!r}]" for p in path
    )


def _check_unknown_parameter(ctx: Any) -> Iterator[Finding]:
    for module, kind, span, owner, label, key, known in _param_issues(ctx):
        if kind != "unknown":
            continue
        suggestion = closest(key, known)
        hint = f"; did you mean '{suggestion}'?" if suggestion else ""
        yield UNKNOWN_PARAMETER.finding(
            module,
            span,
            f"{owner} has no parameter '{label}': KumoMTA rejects the whole parameter table "
            f"(unknown field `{key}`) when this call runs{hint}",
            key=f"{owner} {label}",
            fix=f"Rename it to '{suggestion}'." if suggestion else None,
        )


def _check_invalid_parameter(ctx: Any) -> Iterator[Finding]:
    for module, kind, span, owner, label, message, _ in _param_issues(ctx):
        if kind != "invalid":
            continue
        yield INVALID_PARAMETER.finding(
            module,
            span,
            f"{owner} {label}: {message.rstrip('.')} (KumoMTA fails to deserialize the "
            "parameters and raises an error when this call runs)",
            key=f"{owner} {label}",
        )


UNKNOWN_PARAMETER = rule(
    "E206",
    "unknown-parameter",
    "error",
    "An unknown key in a literal parameter table of a KumoMTA function with strict parameters",
    doc="""
The parameter tables of `kumo.start_esmtp_listener`, `start_http_listener`, `define_spool`,
`configure_local_logs`, `configure_log_hook`, `configure_bounce_classifier`, `make_queue_config`,
`make_egress_path`, `make_egress_source`, `make_egress_pool`, `make_listener_domain`, the options of
`kumo.memoize` and a few others are deserialized with unknown fields denied: one misspelled key
makes the whole call raise ("unknown field `relay_host`, expected one of ..."). In `init` kumod
then exits at startup; in a realtime handler (`get_queue_config`, `get_egress_path_config`, ...)
every message that needs the object fails or is requeued. Nested tables with fixed keys (listener
`peer`/`via` overrides, `trace_headers`, pool `entries`, queue `shrink_policy`) are checked too.
Only literal keys are checked; the closest valid key is suggested.
""",
    bad="""
kumo.start_esmtp_listener {
  listen = '0.0.0.0:25',
  relay_host = { '10.0.0.0/8' },
}
""",
    good="""
kumo.start_esmtp_listener {
  listen = '0.0.0.0:25',
  relay_hosts = { '10.0.0.0/8' },
}
""",
    fix="Rename the key to the parameter KumoMTA documents for this function, or remove it.",
)(_check_unknown_parameter)


INVALID_PARAMETER = rule(
    "E207",
    "invalid-parameter",
    "error",
    "A literal parameter value of the wrong type, outside its enum, or malformed",
    doc="""
KumoMTA deserializes parameter tables into typed Rust structures: an enum value it does not know
(`enable_tls = 'Sometimes'`, `kind = 'Disk'`), a string where a boolean or number is expected, a
malformed CIDR in `relay_hosts` or `trusted_hosts`, a duration humantime cannot parse (`'5 minuts'`,
`'60'`), a throttle that is not `N/period`, or an address that is not `ip:port` makes the call
raise. In `init` kumod exits at startup; in realtime handlers the event fails. Only literal values
are checked; values computed at run time are skipped. The finding points at the offending element.
""",
    bad="""
kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data', kind = 'Disk' }
""",
    good="""
kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data', kind = 'RocksDB' }
""",
    fix="Use a value of the documented type (for enums, one of the listed names, spelled exactly).",
)(_check_invalid_parameter)
