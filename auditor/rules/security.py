"""Sxxx: security. Open relaying, exposed admin API, plaintext credentials, weakened TLS and loop
protection, and policy code that controls the mail server process.

Literal Lua tables come from the policy model; helper data files (listener domains, shaping,
sources) from `ctx.data`. Values that are not literals are never guessed at.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any

from tree_sitter import Node

from auditor.core.findings import Finding, Severity, Span
from auditor.core.record import dataclass
from auditor.core.secrets import may_hold_secrets, secret_reason, secrets_in, secrets_in_text
from auditor.kumo.model import CallSite, Handler, PolicyModel
from auditor.kumo.values import IPNetwork
from auditor.lua.facts import FileFacts
from auditor.lua.literal import Lit, Table, Unknown
from auditor.rules.query import (
    INSECURE_TLS,
    PROHIBITED_DEFAULTS,
    DataPath,
    FunctionBody,
    ListenerScope,
    cidr,
    data_files,
    data_formats,
    esmtp_listen,
    handler_body,
    is_everything,
    is_loopback_net,
    listen_is_loopback,
    listen_text,
    listener_scopes,
    literal_tables,
    literal_true,
    peer_gated,
    shaping_sections,
    sites_of,
    walk_body,
    width_problem,
    written,
)
from auditor.rules.registry import rule


def _check_open_relay(ctx: Any) -> Iterator[Finding]:
    for scope in listener_scopes(ctx.model):
        hosts = scope.table.get("relay_hosts")
        if not isinstance(hosts, Table):
            continue
        for position, item in enumerate(hosts.array(), start=1):
            if isinstance(item, Unknown):
                yield _computed_relay_host(ctx.model, scope, position, item)
                continue
            if not (isinstance(item, Lit) and isinstance(item.value, str)):
                continue
            net = cidr(item.value)
            if net is None:
                continue
            text, effective = item.value, net
            if scope.peer is not None:
                # a peer block only applies to peers inside its own network
                if net.version != scope.peer.version or not net.overlaps(scope.peer):  # type: ignore[arg-type]
                    continue
                if net.subnet_of(scope.peer):  # type: ignore[arg-type]
                    effective = net
                else:
                    effective, text = scope.peer, scope.peer_key
            problem = width_problem(ctx, text, effective)
            if problem is None:
                continue
            consequence = (
                "this is an open relay: anyone can send mail through it, and the server's IPs "
                "end up on block lists"
                if is_everything(text, effective)
                else "every host in that network may relay mail through it without authenticating"
            )
            local = listen_is_loopback(scope.listener) is True
            if local:
                # reachability: only processes on this host can connect to a loopback listener
                consequence = (
                    f"the listener is bound to loopback only ({scope.listener}), so only "
                    "processes on this host can reach it; it becomes an open relay as soon as "
                    "it listens on another address"
                )
            yield OPEN_RELAY.finding(
                scope.module,
                item.span,
                f"relay_hosts of {scope.where} contains {item.value}, which {problem}: "
                f"{consequence}",
                key=f"{scope.listener} {scope.block} relay_hosts {item.value}",
                severity=Severity.WARNING if local else None,
            )


def computed_origin(model: Any, module: str, item: Unknown) -> str:
    """Where a value known only at run time comes from, for a message."""
    if item.env:
        return f"the environment variable {item.env}"
    text = written(model, module, item.span)
    if text is None or may_hold_secrets(text) or secrets_in_text(text):  # never quote a secret
        return "a value computed at run time"
    return f"`{text}`, a value computed at run time"


def _computed_relay_host(model: Any, scope: Any, position: int, item: Unknown) -> Finding:
    """An element of relay_hosts known only at run time: how wide a network it lets relay is out
    of sight, so it is named (info) rather than passed over in silence."""
    origin = computed_origin(model, scope.module, item)
    return OPEN_RELAY.finding(
        scope.module,
        item.span,
        f"relay_hosts of {scope.where} takes element {position} from {origin}: how wide a network "
        "it lets relay without authentication cannot be checked here; make sure it can never be "
        "0.0.0.0/0, ::/0 or a public network",
        key=f"{scope.listener} {scope.block} relay_hosts computed {item.env or position}",
        severity=Severity.INFO,
    )


OPEN_RELAY = rule(
    "S101",
    "open-relay",
    "error",
    "relay_hosts that lets the whole internet, or a very wide network, relay",
    doc="""
`relay_hosts` of `kumo.start_esmtp_listener` lists the peer networks that may relay: send mail to
any destination without SMTP AUTH (the default is `{'127.0.0.1', '::1'}`). `0.0.0.0/0`, `::/0`,
`0/0` (or `any`) make the listener an open relay: spammers find it within hours and the sending IPs
land on block lists. Networks wider than the configured limit (`thresholds.relay_ipv4_min_prefix`,
default /16; `relay_ipv6_min_prefix`, default /48) are reported too. Checked: the listener's own
table, its `peer` blocks (where the block's own network limits who matches: a `0.0.0.0/0` inside
`peer['10.1.2.0/24']` only opens relaying to 10.1.2.0/24), its `via` blocks, and literal tables
returned by an `smtp_server_get_dynamic_parameters` handler. The finding points at the list element.
An element known only at run time (`os.getenv('RELAY_NET')`, a concatenation, a variable) is an
info finding: how wide it is cannot be checked, so it is named rather than passed over.
""",
    bad="""
kumo.start_esmtp_listener {
  listen = '0.0.0.0:25',
  relay_hosts = { '0.0.0.0/0' },
}
""",
    good="""
kumo.start_esmtp_listener {
  listen = '0.0.0.0:25',
  relay_hosts = { '127.0.0.1', '::1', '10.20.0.0/24' },
}
""",
    fix="List only the networks of your own injecting servers; let everyone else use SMTP AUTH.",
)(_check_open_relay)


# ----- S102 / S103 listener domains -------------------------------------------------------------------------


def listener_domain_sections(
    value: dict[str, Any],
) -> Iterator[tuple[DataPath, str, dict[str, Any]]]:
    """(key path, domain, section) of every listener-domain section, per-listener ones included."""
    for key, section in value.items():
        if not isinstance(section, dict):
            continue
        if key == "listener":
            for listen, domains in section.items():
                if isinstance(domains, dict):
                    for domain, table in domains.items():
                        if isinstance(table, dict):
                            yield ("listener", listen, domain), domain, table
            continue
        yield (key,), key, section


def _check_wildcard_relay_to(ctx: Any) -> Iterator[Finding]:
    for path, _value, located in data_files(ctx, "listener_domains"):
        for key_path, domain, section in listener_domain_sections(_value):
            if section.get("relay_to") is not True or "*" not in domain:
                continue
            what = (
                "every recipient domain"
                if domain == "*"
                else f"every domain matching {domain} (any subdomain, including ones nobody owns)"
            )
            yield WILDCARD_RELAY_TO.finding(
                path,
                located.key_span((*key_path, "relay_to")),
                f"relay_to = true on {domain!r} lets any client relay mail to {what}: the listener "
                "accepts and delivers mail for domains you do not host",
                key=f"{'/'.join(map(str, key_path))} relay_to",
            )
    for site, table in literal_tables(ctx.model, "kumo.make_listener_domain"):
        if not site.contexts or site.call.in_condition:
            continue
        entry = table.entry("relay_to")
        if entry is None or not literal_true(entry.value):
            continue
        local = loopback_only(ctx.model)
        reach = (
            f"any client may relay through the listener; every listener of the policy is bound "
            f"to loopback only ({local}), so only processes on this host can reach them"
            if local
            else "any client may relay through the listener"
        )
        yield WILDCARD_RELAY_TO.finding(
            site.module,
            entry.key_span or site.span,
            "kumo.make_listener_domain { relay_to = true } is returned without any condition on "
            f"the domain, so it applies to every recipient domain: {reach}",
            key=f"make_listener_domain relay_to {','.join(sorted(site.contexts))}",
            severity=Severity.WARNING if local else None,
        )


def loopback_only(model: PolicyModel) -> str | None:
    """The listen addresses when the policy starts ESMTP listeners and every one is bound to
    loopback (so relaying decisions only matter to local processes); else None."""
    addresses = []
    for site in sites_of(model, "kumo.start_esmtp_listener"):
        table = site.table_arg(0)
        if table is None or not site.contexts:
            return None
        listen = esmtp_listen(table)
        if listen_is_loopback(listen) is not True:
            return None
        addresses.append(listen)
    return ", ".join(dict.fromkeys(addresses)) or None


WILDCARD_RELAY_TO = rule(
    "S102",
    "wildcard-relay-to",
    "error",
    "A listener domain with relay_to = true for * or a wildcard domain",
    doc="""
`relay_to = true` in a listener domain lets *any* client relay mail to that recipient domain,
whatever `relay_hosts` says. In the listener-domains helper's data, a `["*"]` section applies to
every domain, so `relay_to = true` there turns every listener into an open relay; a wildcard such
as `["*.example.com"]` accepts mail for any name under it. In Lua, a `kumo.make_listener_domain`
with `relay_to = true` that a `get_listener_domain` handler returns without looking at the domain
(not inside an if/loop body) does the same.
""",
    bad="""
# listener_domains.toml
["*"]
relay_to = true
""",
    good="""
# listener_domains.toml
["support.example.com"]
relay_to = true
""",
    fix="Name each domain you accept mail for; never set relay_to on `*` or a wildcard.",
)(_check_wildcard_relay_to)


def _check_wide_relay_from(ctx: Any) -> Iterator[Finding]:
    for path, value, located in data_files(ctx, "listener_domains"):
        for key_path, domain, section in listener_domain_sections(value):
            nets = section.get("relay_from")
            if not isinstance(nets, list):
                continue
            for index, item in enumerate(nets):
                net = cidr(item)
                problem = width_problem(ctx, item, net) if net is not None else None
                if problem is None:
                    continue
                yield WIDE_RELAY_FROM.finding(
                    path,
                    located.value_span((*key_path, "relay_from", index)),
                    f"relay_from of {domain!r} contains {item}, which {problem}: any host there "
                    f"that claims a sender address in {domain} may relay (the sender domain is "
                    "not verified)",
                    key=f"{'/'.join(map(str, key_path))} relay_from {item}",
                )
    for site, table in literal_tables(ctx.model, "kumo.make_listener_domain"):
        nets = table.get("relay_from")
        if not isinstance(nets, Table):
            continue
        for item in nets.array():
            if not (isinstance(item, Lit) and isinstance(item.value, str)):
                continue
            net = cidr(item.value)
            problem = width_problem(ctx, item.value, net) if net is not None else None
            if problem is None:
                continue
            yield WIDE_RELAY_FROM.finding(
                site.module,
                item.span,
                f"relay_from of kumo.make_listener_domain contains {item.value}, which {problem}: "
                "any host there that claims the sender domain may relay",
                key=f"make_listener_domain relay_from {item.value}",
            )


WIDE_RELAY_FROM = rule(
    "S103",
    "wide-relay-from",
    "warning",
    "A listener domain relay_from network wider than the configured limit",
    doc="""
`relay_from` lets peers in the listed networks relay when the MAIL FROM domain is the section's
domain. The sender domain is whatever the client claims, so a wide network (wider than
`thresholds.relay_ipv4_min_prefix` / `relay_ipv6_min_prefix`, or everything: `0/0`, `::/0`) lets
anyone there relay by forging a sender address. Checked in listener-domains data files (TOML and
JSON; the finding points at the list element) and in literal `kumo.make_listener_domain` tables.
""",
    bad="""
["news.example.com"]
relay_from = ["0.0.0.0/0"]
""",
    good="""
["news.example.com"]
relay_from = ["203.0.113.128/28"]
relay_from_authz = ["news-relay"]
""",
    fix="Narrow relay_from to the sending servers' addresses, or use SMTP AUTH (relay_from_authz).",
)(_check_wide_relay_from)


# ----- S104 / S105 HTTP listener ----------------------------------------------------------------------------


def _http_listeners(ctx: Any) -> Iterator[tuple[CallSite, Table, str, Span]]:
    """HTTP listeners bound beyond loopback: (site, table, listen, span of listen)."""
    for site, table in literal_tables(ctx.model, "kumo.start_http_listener"):
        entry = table.entry("listen")
        if entry is None:
            continue  # default 127.0.0.1:8000
        listen = listen_text(entry.value)
        if listen is None or listen_is_loopback(listen) is not False:
            continue
        yield site, table, listen, entry.value.span


def _check_exposed_admin_api(ctx: Any) -> Iterator[Finding]:
    for site, table, listen, _span in _http_listeners(ctx):
        hosts = table.get("trusted_hosts")
        if not isinstance(hosts, Table):
            continue  # default: loopback only
        for position, item in enumerate(hosts.array(), start=1):
            if isinstance(item, Unknown):
                origin = computed_origin(ctx.model, site.module, item)
                yield EXPOSED_ADMIN_API.finding(
                    site.module,
                    item.span,
                    f"HTTP listener {listen} takes trusted_hosts element {position} from {origin}: "
                    "whether it reaches beyond loopback (and so who may call the admin API without "
                    "credentials) cannot be checked here",
                    key=f"http {listen} trusted_hosts computed {item.env or position}",
                    severity=Severity.INFO,
                )
                continue
            if not (isinstance(item, Lit) and isinstance(item.value, str)):
                continue
            net = cidr(item.value)
            if net is None or is_loopback_net(net):
                continue
            yield EXPOSED_ADMIN_API.finding(
                site.module,
                item.span,
                f"HTTP listener {listen} trusts {item.value} beyond loopback: any host there may "
                "call the admin API without credentials (bounce or suspend queues, rebind, "
                "inject mail)",
                key=f"http {listen} trusted_hosts {item.value}",
            )


EXPOSED_ADMIN_API = rule(
    "S104",
    "exposed-admin-api",
    "error",
    "An HTTP listener beyond loopback whose trusted_hosts reach beyond loopback",
    doc="""
Peers in `trusted_hosts` of `kumo.start_http_listener` are in the built-in group
`kumomta:http-listener-trusted-ip`, which the default ACL allows to use `/api/admin/*` (bounce,
suspend, rebind, xfer, bump the configuration epoch), `/api/inject` and `/metrics` without any
authentication. The default is loopback only (`{'127.0.0.1', '::1'}`). On a listener bound beyond
loopback (`0.0.0.0:8000`, a routable address, a host name), each `trusted_hosts` entry outside
127.0.0.0/8 and ::1 is reported: whoever controls or spoofs a host there controls the MTA. An
entry known only at run time (an environment variable, a computed value) is an info finding.
""",
    bad="""
kumo.start_http_listener {
  listen = '0.0.0.0:8000',
  trusted_hosts = { '127.0.0.1', '0.0.0.0/0' },
}
""",
    good="""
kumo.start_http_listener {
  listen = '0.0.0.0:8000',
  use_tls = true,
  trusted_hosts = { '127.0.0.1', '::1' },
}
""",
    fix="Keep trusted_hosts to loopback and authenticate remote callers "
    "(http_server_validate_auth_basic with a credential store, or an ACL).",
)(_check_exposed_admin_api)


def _check_plaintext_http(ctx: Any) -> Iterator[Finding]:
    for site, table, listen, span in _http_listeners(ctx):
        entry = table.entry("use_tls")
        if entry is not None:
            if not isinstance(entry.value, Lit) or entry.value.value is True:
                continue  # TLS on, or not known
            span = entry.key_span or span
        yield PLAINTEXT_HTTP.finding(
            site.module,
            span,
            f"HTTP listener {listen} is reachable beyond loopback without TLS: HTTP basic-auth "
            "credentials, injected messages and admin requests cross the network in clear text",
            key=f"http {listen} use_tls",
        )


PLAINTEXT_HTTP = rule(
    "S105",
    "plaintext-http",
    "warning",
    "An HTTP listener beyond loopback without use_tls",
    doc="""
`kumo.start_http_listener` serves plain HTTP unless `use_tls = true` (a self-signed certificate is
generated when `tls_certificate`/`tls_private_key` are not set). Beyond loopback, the injection API
and basic-auth credentials then travel unencrypted. A listener without `listen` binds
127.0.0.1:8000 and is not reported.
""",
    bad="""
kumo.start_http_listener {
  listen = '0.0.0.0:8000',
}
""",
    good="""
kumo.start_http_listener {
  listen = '0.0.0.0:8001',
  use_tls = true,
  tls_certificate = '/opt/kumomta/etc/tls/api.crt',
  tls_private_key = '/opt/kumomta/etc/tls/api.key',
}
""",
    fix="Set use_tls = true (with a real certificate), or bind the listener to 127.0.0.1.",
)(_check_plaintext_http)


# ----- S106 hardcoded-secret --------------------------------------------------------------------------------

_SECRET_PARAMS = ("password", "token")
_AUTH_EVENTS = (
    "smtp_server_auth_plain",
    "http_server_validate_auth_basic",
    "http_server_validate_auth_bearer",
)


def _lua_secrets(
    table: Table, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], Span, str, Lit]]:
    stack: list[tuple[Table, tuple[str, ...]]] = [(table, path)]
    while stack:
        current, where = stack.pop()
        for entry in current.entries:
            key = entry.key
            label = key if isinstance(key, str) else f"[{key}]"
            if isinstance(entry.value, Table):
                stack.append((entry.value, (*where, str(label))))
            elif isinstance(entry.value, Lit) and not isinstance(key, Unknown):
                reason = secret_reason(key, entry.value.value)
                if reason:
                    yield (
                        (*where, str(label)),
                        entry.key_span or entry.value.span,
                        reason,
                        entry.value,
                    )


def _data_secrets(value: Any, path: DataPath = ()) -> Iterator[DataPath]:
    stack: list[tuple[Any, DataPath]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                if isinstance(item, dict | list):
                    stack.append((item, (*where, key)))
                elif secret_reason(key, item):
                    yield (*where, key)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, dict | list):
                    stack.append((item, (*where, index)))
                elif secret_reason(where[-1] if where else None, item):
                    yield (*where, index)


@dataclass(frozen=True, slots=True)
class LuaSecret:
    """A string literal of a Lua file that holds a secret: by the name it is bound to, or its shape."""

    module: str
    span: Span  # the literal
    name: str | None  # the variable or field it is bound to
    reason: str
    raw: str  # the literal as written, without its quotes
    value: str


def lua_string_secrets(module: str, facts: FileFacts) -> list[LuaSecret]:
    """Every string literal of a Lua file that is a secret by the name it is bound to or its shape
    (found while its facts were extracted: last literal first)."""
    return [
        LuaSecret(module, found.span, found.name, found.reason, found.raw, found.value)
        for found in facts.secret_strings
    ]


def secret_values(model: PolicyModel, data: dict[str, Any], api: Any) -> set[str]:
    """Every secret value of an audited state, as written and as read (for redaction)."""
    out: set[str] = set()
    for path, mod in model.modules.items():
        for found in lua_string_secrets(path, mod.facts):
            out.update((found.value, found.raw))
    for handler in model.handlers:
        if handler.event in _AUTH_EVENTS:
            for _module, _span, _what, values in _auth_comparisons(api, model, handler):
                out.update(values)
    for result in data.values():
        out.update(secrets_in(getattr(result, "value", None)))
    out.discard("")
    return out


def _auth_comparisons(
    api: Any, model: PolicyModel, handler: Handler
) -> Iterator[tuple[str, Span, str, list[str]]]:
    """(module, span, what, values) for comparisons of a handler's password/token parameter to
    literals."""
    spec = api.event(handler.event)
    names = list(getattr(spec, "params", None) or [])
    fb = handler_body(model, handler)
    if fb is None:
        return
    secret_params = {
        fb.params[i]
        for i, name in enumerate(names)
        if name in _SECRET_PARAMS and i < len(fb.params)
    }
    if not secret_params:
        return
    constants = _local_literals(fb)
    for node, _conditional in walk_body(fb.body):
        if node.type != "binary_expression":
            continue
        operator = node.child_by_field_name("operator")
        if operator is None or operator.type not in ("==", "~="):
            continue
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        if left is None or right is None:
            continue
        for mine, other in ((left, right), (right, left)):
            if not (mine.type == "identifier" and _text(mine) in secret_params):
                continue
            found = _literal_secret(fb, other, constants)
            if found is not None:
                span, what, values = found
                yield fb.module, span, f"{_text(mine)} is compared with {what}", values


def _literal_secret(
    fb: FunctionBody, node: Node, constants: dict[str, Node]
) -> tuple[Span, str, list[str]] | None:
    if node.type == "string":
        value = fb.evaluator.eval(node)
        if isinstance(value, Lit) and value.value:
            return value.span, "a string literal", [str(value.value), _inner(node)]
        return None
    if node.type == "identifier" and _text(node) in constants:
        return _literal_secret(fb, constants[_text(node)], {})
    if node.type == "bracket_index_expression":
        table = node.child_by_field_name("table")
        if table is not None and table.type == "identifier" and _text(table) in constants:
            constant = constants[_text(table)]
            value = fb.evaluator.eval(constant)
            if isinstance(value, Table):
                strings = [
                    e.value.value
                    for e in value.entries
                    if isinstance(e.value, Lit) and isinstance(e.value.value, str) and e.value.value
                ]
                if strings:
                    raw = [_inner(n) for n in _strings_under(constant)]
                    return value.span, f"entries of the literal table {_text(table)}", strings + raw
    return None


def _inner(node: Node) -> str:
    """A string literal as written, without its quotes."""
    content = next((c for c in node.named_children if c.type == "string_content"), None)
    return _text(content) if content is not None else ""


def _strings_under(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "string":
            yield current
        else:
            stack.extend(current.named_children)


def _local_literals(fb: FunctionBody) -> dict[str, Node]:
    """Locals bound to a string or table literal in the handler body or at its file's top level."""
    out: dict[str, Node] = {}
    scopes: list[Iterable[Node]] = [fb.tree.root_node.named_children]
    scopes.append(node for node, _ in walk_body(fb.body))
    for nodes in scopes:
        for node in nodes:
            if node.type != "variable_declaration":
                continue
            for assign in node.named_children:
                if assign.type != "assignment_statement":
                    continue
                names = next((c for c in assign.named_children if c.type == "variable_list"), None)
                values = next(
                    (c for c in assign.named_children if c.type == "expression_list"), None
                )
                if names is None or values is None:
                    continue
                # the names, without the Lua 5.4 attributes between them (`local a <const>, b`)
                targets = [c for c in names.named_children if c.type != "attribute"]
                for name, value in zip(targets, values.named_children, strict=False):
                    if name.type == "identifier" and value.type in ("string", "table_constructor"):
                        out[_text(name)] = value
    return out


def _text(node: Node) -> str:
    return node.text.decode("utf-8", "replace") if node.text is not None else ""


def _check_hardcoded_secret(ctx: Any) -> Iterator[Finding]:
    model: PolicyModel = ctx.model
    reported: set[tuple[str, Span]] = set()
    for handler in model.handlers:
        if handler.event not in _AUTH_EVENTS:
            continue
        for module, span, what, _values in _auth_comparisons(ctx.api, model, handler):
            reported.add((module, span))
            yield HARDCODED_SECRET.finding(
                module,
                span,
                f"the {handler.event} handler checks credentials against a literal: {what}, so "
                "the credential is readable by anyone with access to the policy (and its Git "
                "history); look it up in a credential store instead",
                key=f"{handler.event} literal credential",
            )
    for site in model.calls:
        for index, arg in enumerate(site.call.args):
            if not isinstance(arg, Table):
                continue
            for path, span, reason, literal in _lua_secrets(arg, ()):
                where = ".".join(path)
                reported.add((site.module, literal.span))
                yield HARDCODED_SECRET.finding(
                    site.module,
                    span,
                    f"{where} in the arguments of {site.call.text} is a secret {reason}: anyone "
                    "who can read the policy repository has it; load it from a key source "
                    "(vault, or a file readable only by kumod)",
                    key=f"{site.call.text} arg{index} {where}",
                )
    for path in sorted(model.modules):
        for found in lua_string_secrets(path, model.modules[path].facts):
            if (path, found.span) in reported:
                continue
            what = f"the value of {found.name}" if found.name else "a string literal"
            yield HARDCODED_SECRET.finding(
                path,
                found.span,
                f"{what} is a secret {found.reason}: anyone who can read the policy repository "
                "has it; load it from a key source (vault, or a file readable only by kumod)",
                key=f"{found.name or 'literal'} secret",
            )
    formats = data_formats(model)
    for path in sorted(formats):
        result = ctx.data.get(path)
        value = getattr(result, "value", None)
        located = getattr(result, "located", None)
        if value is None or located is None:
            continue
        for key_path in sorted(_data_secrets(value)):  # one container per prefix: comparable
            where = ".".join(str(p) for p in key_path)
            yield HARDCODED_SECRET.finding(
                path,
                located.key_span(key_path),
                f"{where} is a secret written into the {formats[path]} data file: anyone who can "
                "read the policy repository has it; use a key source (vault, or a file readable "
                "only by kumod)",
                key=f"{where}",
            )


HARDCODED_SECRET = rule(
    "S106",
    "hardcoded-secret",
    "warning",
    "A password, token or key written as a literal in the policy or its data",
    doc="""
Policy files live in Git and are copied to every MTA host; KumoMTA's security guide asks to keep
secrets out of `/opt/kumomta/etc/policy`. Reported (the finding names the location, never the
value): `smtp_server_auth_plain`, `http_server_validate_auth_basic` and
`http_server_validate_auth_bearer` handlers that compare their password/token parameter with a
string literal, a local string, or a local literal table of passwords; `key_data` (inline key
material, e.g. a DKIM or TLS private key) and `vault_token` in any literal table; literal
`smtp_auth_plain_password` strings (a plain string is read as a file path, so one that is not a
path is most likely the password itself) and `socks5_proxy_password`, in Lua tables and in
shaping/sources data files; any other string bound to a secret's name (`password`, `token`,
`client_secret`, `api_key`, ... but not `password_file` or a path), and any string shaped like a
secret (inline private key material, a URL with a password). The same notion decides what the change
set and the runbook redact.
""",
    bad="""
kumo.on('http_server_validate_auth_basic', function(user, password)
  return user == 'api' and password == 'tiger'
end)
""",
    good="""
kumo.on('http_server_validate_auth_basic', function(user, password)
  return credentials.check(user, password) -- salted hashes in a database
end)
""",
    fix="Keep credentials in a key source (HashiCorp Vault, a file readable only by kumod) or a "
    "credential database with hashed passwords.",
)(_check_hardcoded_secret)


# ----- S107 unsafe-listener-option --------------------------------------------------------------------------


def _check_unsafe_listener_option(ctx: Any) -> Iterator[Finding]:
    for scope in listener_scopes(ctx.model):
        for option in ("allow_xclient", "require_proxy_protocol"):
            entry = scope.table.entry(option)
            if entry is None or not literal_true(entry.value) or peer_gated(ctx, scope):
                continue
            local = listen_is_loopback(scope.listener) is True
            reach = (
                f"; the listener is bound to loopback only ({scope.listener}), so only "
                "processes on this host can do that"
                if local
                else ""
            )
            yield UNSAFE_LISTENER_OPTION.finding(
                scope.module,
                entry.key_span or entry.value.span,
                f"{option} = true on {scope.where} applies to every connecting client: any "
                "client can claim another peer address (and with it relay_hosts trust or a "
                f"different identity), bypassing relay and authentication checks{reach}",
                key=f"{scope.listener} {scope.block} {option}",
                severity=Severity.WARNING if local else None,
            )
        entry = scope.table.entry("deferred_queue")
        if entry is not None and literal_true(entry.value):
            yield _deferred_queue_finding(ctx, scope, entry)


def _deferred_queue_finding(ctx: Any, scope: ListenerScope, entry: Any) -> Finding:
    """deferred_queue = true (K:docs/reference/kumo/start_esmtp_listener/deferred_queue.md): every
    message gets 250 before policy runs; smtp_server_message_received is not triggered; signing and
    queue assignment belong in smtp_server_message_deferred_inject
    (K:docs/reference/events/smtp_server_message_deferred_inject.md). Only for trusted injectors."""
    has_handler = any(True for _ in ctx.model.handlers_for("smtp_server_message_deferred_inject"))
    later = (
        "the policy handles smtp_server_message_deferred_inject, where signing and queue "
        "assignment run later"
        if has_handler
        else "the policy has no smtp_server_message_deferred_inject handler, so DKIM signing and "
        "queue/tenant/campaign assignment done in smtp_server_message_received never happen"
    )
    local = listen_is_loopback(scope.listener) is True
    reach = (
        f"the listener is bound to loopback only ({scope.listener}), so only local injectors "
        "reach it"
        if local
        else "KumoMTA says to enable it only where every incoming connection is trusted, never on "
        "the public internet"
    )
    return UNSAFE_LISTENER_OPTION.finding(
        scope.module,
        entry.key_span or entry.value.span,
        f"deferred_queue = true on {scope.where}: every message gets 250 OK before any policy "
        f"check, and smtp_server_message_received is not triggered; {later}; {reach}",
        key=f"{scope.listener} {scope.block} deferred_queue",
        fix="Use deferred_queue only on listeners for trusted injectors, and move signing and "
        "queue assignment into smtp_server_message_deferred_inject.",
        severity=Severity.INFO if local and has_handler else Severity.WARNING,
    )


UNSAFE_LISTENER_OPTION = rule(
    "S107",
    "unsafe-listener-option",
    "error",
    "allow_xclient or require_proxy_protocol outside a peer block; deferred_queue = true",
    doc="""
`allow_xclient` and `require_proxy_protocol` make the listener believe the client about who it is
(XCLIENT attributes, a PROXY header). KumoMTA's documentation: use them only in an appropriate
`peer` block, otherwise you risk authentication-related bypasses. Reported when they are true in
the listener's own table, in a `via` block, in a `peer` block whose network is `0/0` or wider than
the relay limit, or in a table that `smtp_server_get_dynamic_parameters` returns without a
condition. `deferred_queue = true` accepts every message with 250 and does not run
`smtp_server_message_received` (signing and queue assignment belong in
`smtp_server_message_deferred_inject`); it "should NOT be used on the public internet": a warning,
an info on a loopback-only listener of a policy that handles the deferred-inject event. On a
listener bound to loopback only, `allow_xclient` and `require_proxy_protocol` are warnings: only
processes on the host can reach it.
""",
    bad="""
kumo.start_esmtp_listener {
  listen = '0.0.0.0:25',
  allow_xclient = true,
}
""",
    good="""
kumo.start_esmtp_listener {
  listen = '0.0.0.0:25',
  peer = {
    ['10.0.5.10'] = { allow_xclient = true }, -- the load balancer
  },
}
""",
    fix="Move allow_xclient / require_proxy_protocol into a peer block for your proxy's address; "
    "remove deferred_queue.",
)(_check_unsafe_listener_option)


# ----- S108 insecure-tls ------------------------------------------------------------------------------------


def egress_path_tables(model: PolicyModel) -> Iterator[tuple[CallSite, Table]]:
    return literal_tables(model, "kumo.make_egress_path")


def default_scope(site: CallSite) -> bool:
    """A make_egress_path call that runs (it is reached) and is not inside an if/loop body."""
    return bool(site.contexts) and not site.call.in_condition


def _check_insecure_tls(ctx: Any) -> Iterator[Finding]:
    for site, table in egress_path_tables(ctx.model):
        entry = table.entry("enable_tls")
        if (
            entry is not None
            and isinstance(entry.value, Lit)
            and entry.value.value in INSECURE_TLS
            and default_scope(site)
        ):
            yield _tls_finding(
                site.module,
                entry.key_span or entry.value.span,
                str(entry.value.value),
                "a kumo.make_egress_path that applies to every destination (not inside an if/loop body)",
                f"lua enable_tls {entry.value.value}",
            )
        entry = table.entry("allow_smtp_auth_plain_without_tls")
        if entry is not None and literal_true(entry.value):
            yield _auth_finding(
                site.module, entry.key_span or entry.value.span, "kumo.make_egress_path", "lua"
            )
    for path, value, located in data_files(ctx, "shaping"):
        for key_path, section, label in shaping_sections(value):
            mode = section.get("enable_tls")
            if key_path[0] == "default" and mode in INSECURE_TLS:
                yield _tls_finding(
                    path,
                    located.key_span((*key_path, "enable_tls")),
                    str(mode),
                    f"the shaping {label} section, which applies to every destination",
                    f"{label} enable_tls {mode}",
                )
            if section.get("allow_smtp_auth_plain_without_tls") is True:
                yield _auth_finding(
                    path,
                    located.key_span((*key_path, "allow_smtp_auth_plain_without_tls")),
                    f"the shaping {label} section",
                    label,
                )


def _tls_finding(module: str, span: Span, mode: str, where: str, key: str) -> Finding:
    effect = {
        "Disabled": "mail is delivered in clear text to every destination",
        "OpportunisticInsecure": "certificates are not verified, so anyone on the path can "
        "intercept the connection",
        "RequiredInsecure": "certificates are not verified, so anyone on the path can intercept "
        "the connection",
    }[mode]
    return INSECURE_TLS_RULE.finding(
        module,
        span,
        f"enable_tls = '{mode}' in {where}: {effect}; KumoMTA does not recommend it for sending "
        "to the public internet",
        key=key,
    )


def _auth_finding(module: str, span: Span, where: str, key: str) -> Finding:
    return INSECURE_TLS_RULE.finding(
        module,
        span,
        f"allow_smtp_auth_plain_without_tls = true in {where}: the SMTP AUTH password is sent in "
        "clear text when the server offers no STARTTLS",
        key=f"{key} allow_smtp_auth_plain_without_tls",
    )


INSECURE_TLS_RULE = rule(
    "S108",
    "insecure-tls",
    "warning",
    "Outbound TLS weakened by default, or SMTP AUTH allowed without TLS",
    doc="""
`enable_tls` of an egress path defaults to `Opportunistic` (TLS when offered, certificates
verified). `OpportunisticInsecure` and `RequiredInsecure` skip certificate verification and
`Disabled` never uses TLS: "not recommended for sending to the public internet". They have uses
for a specific smart host or test sink, so they are reported only in a *default scope*:
- in Lua, a literal `kumo.make_egress_path` call that runs (it is reached from an event handler or
  the file level) and is not itself inside an if/elseif/else or loop body of the function that
  contains it: typically the table a `get_egress_path_config` handler returns when no condition
  on the domain or site guards it, which is used for every destination;
- in shaping data, the `["default"]` section (and its `sources` tables), which applies to every
  destination.
`allow_smtp_auth_plain_without_tls = true` sends the AUTH PLAIN password in clear text when
STARTTLS is not offered; it is reported in every scope (Lua and shaping data).
""",
    bad="""
kumo.on('get_egress_path_config', function(domain, site_name)
  return kumo.make_egress_path { enable_tls = 'OpportunisticInsecure' }
end)
""",
    good="""
kumo.on('get_egress_path_config', function(domain, site_name)
  if domain == 'smarthost.internal' then
    return kumo.make_egress_path { enable_tls = 'RequiredInsecure' }
  end
  return kumo.make_egress_path { enable_tls = 'Opportunistic' }
end)
""",
    fix="Keep the default (Opportunistic or Required) for the internet; scope insecure modes to "
    "the specific domain or site that needs them; never allow AUTH without TLS.",
)(_check_insecure_tls)


# ----- S109 process-control ---------------------------------------------------------------------------------

_PROCESS_CONTROL = {
    ("global", "os", "exit"): "terminates the whole kumod process (every queue and connection)",
    ("global", "os", "execute"): "runs a shell command inside the mail server process, blocking "
    "a worker thread until it ends",
    ("global", "io", "popen"): "starts a shell command inside the mail server process, blocking "
    "a worker thread while it reads",
}


def _check_process_control(ctx: Any) -> Iterator[Finding]:
    for site in ctx.model.calls:
        call = site.call
        uses = []
        if call.callee in _PROCESS_CONTROL:
            uses.append((call.callee, call.name_span))
        if any(call.arg_refs):
            for ref, arg in zip(call.arg_refs, call.args, strict=False):
                if ref is not None and ref in _PROCESS_CONTROL:
                    uses.append((ref, arg.span))
        for path, span in uses:
            effect = _PROCESS_CONTROL[path]
            name = ".".join(str(p) for p in path[1:])
            yield PROCESS_CONTROL.finding(
                site.module,
                span,
                f"{name} {effect}; policy code runs in every Lua context of the MTA",
                key=f"{name}",
            )


PROCESS_CONTROL = rule(
    "S109",
    "process-control",
    "error",
    "os.exit, os.execute or io.popen in the policy",
    doc="""
The policy runs inside kumod, in pooled Lua contexts on its worker threads. `os.exit` ends the
whole process (every queue, connection and in-flight message), and `os.execute` / `io.popen` start
shell commands that block a worker thread and run with the MTA's privileges, often with values that
come from messages. They are reported wherever they appear (called, or passed as a value, e.g.
`pcall(os.execute, cmd)`), reached or not: code that is not called today is one edit away from
running.
""",
    bad="""
kumo.on('smtp_server_message_received', function(msg)
  os.execute('/usr/local/bin/notify ' .. msg:sender().domain)
end)
""",
    good="""
kumo.on('smtp_server_message_received', function(msg)
  msg:set_meta('notify', true) -- handled by a log hook, outside the MTA process
end)
""",
    fix="Remove it: report through log hooks, webhooks or kumo.http; stop kumod through the "
    "service manager.",
)(_check_process_control)


# ----- S110 loop-protection-removed -------------------------------------------------------------------------


def missing_loop_protection(items: list[object]) -> list[str] | None:
    """Default prohibited networks that a prohibited_hosts list no longer covers (None: unknown)."""
    nets: list[IPNetwork] = []
    for item in items:
        net = cidr(item)
        if net is None:
            return None  # not literal or invalid (E207/E302): cannot tell
        nets.append(net)
    missing = []
    for default in PROHIBITED_DEFAULTS:
        wanted = ipaddress.ip_network(default)
        if not any(n.version == wanted.version and wanted.subnet_of(n) for n in nets):  # type: ignore[arg-type]
            missing.append(default)
    return missing


def _loop_finding(module: str, span: Span, where: str, missing: list[str], key: str) -> Finding:
    return LOOP_PROTECTION_REMOVED.finding(
        module,
        span,
        f"prohibited_hosts in {where} replaces KumoMTA's defaults and no longer blocks "
        f"{', '.join(missing)}: a domain whose MX points at this host (or at 0.0.0.0) makes the "
        "MTA deliver to itself in a loop",
        key=key,
    )


def _check_loop_protection_removed(ctx: Any) -> Iterator[Finding]:
    for site, table in egress_path_tables(ctx.model):
        entry = table.entry("prohibited_hosts")
        if entry is None or not isinstance(entry.value, Table):
            continue
        items = [v.value if isinstance(v, Lit) else None for v in entry.value.array()]
        missing = missing_loop_protection(items)
        if missing:
            yield _loop_finding(
                site.module,
                entry.key_span or entry.value.span,
                "kumo.make_egress_path",
                missing,
                f"lua prohibited_hosts {','.join(missing)}",
            )
    for path, value, located in data_files(ctx, "shaping"):
        for key_path, section, label in shaping_sections(value):
            items = section.get("prohibited_hosts")
            if not isinstance(items, list):
                continue
            missing = missing_loop_protection(items)
            if missing:
                yield _loop_finding(
                    path,
                    located.key_span((*key_path, "prohibited_hosts")),
                    f"the shaping {label} section",
                    missing,
                    f"{label} prohibited_hosts",
                )


LOOP_PROTECTION_REMOVED = rule(
    "S110",
    "loop-protection-removed",
    "warning",
    "A prohibited_hosts override that drops the loopback/unspecified defaults",
    doc="""
`prohibited_hosts` of an egress path defaults to `{'127.0.0.0/8', '::1', '0.0.0.0', '::'}`:
KumoMTA refuses to connect to those addresses so that a destination whose MX resolves to loopback
(or to 0.0.0.0, a common "null" record) cannot make the MTA deliver to itself. Setting the key
replaces the defaults instead of adding to them. Reported when a literal list (in a
`kumo.make_egress_path` table, or in any shaping data section) no longer covers each default
network; the message names the missing ones.
""",
    bad="""
["default"]
prohibited_hosts = ["192.0.2.0/24"]
""",
    good="""
["default"]
prohibited_hosts = ["127.0.0.0/8", "::1", "0.0.0.0", "::", "192.0.2.0/24"]
""",
    fix="Include the defaults in the list: 127.0.0.0/8, ::1, 0.0.0.0 and ::.",
)(_check_loop_protection_removed)
