"""The rules' query library: questions rule families ask of the policy model and the parsed data files
(literal values, call sites by callee, data files by helper format, shaping sections, handler
bodies, listener scopes, networks). Pure functions of their arguments: nothing is kept between
calls except what the model caches about itself."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from tree_sitter import Node, Tree

from auditor.core.findings import Span
from auditor.core.record import dataclass
from auditor.kumo.model import CallSite, Handler, PolicyModel
from auditor.kumo.values import IPNetwork, parse_cidr, parse_socket_address
from auditor.lua.literal import Evaluator, Lit, Table, Unknown, Value
from auditor.lua.syntax import LineIndex, captures, parse

DataPath = tuple[str | int, ...]

ESMTP_DEFAULT_LISTEN = "127.0.0.1:2025"
HTTP_DEFAULT_LISTEN = "127.0.0.1:8000"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
# make_egress_path's default prohibited_hosts: loopback and the unspecified addresses.
PROHIBITED_DEFAULTS = ("127.0.0.0/8", "::1", "0.0.0.0", "::")
INSECURE_TLS = ("OpportunisticInsecure", "RequiredInsecure", "Disabled")


def literal_str(table: Table | None, key: str) -> str | None:
    value = table.get(key) if table is not None else None
    return value.value if isinstance(value, Lit) and isinstance(value.value, str) else None


def literal_value(table: Table | None, key: str) -> Any:
    """The literal value of `key` in a table (any type), or None."""
    value = table.get(key) if table is not None else None
    return value.value if isinstance(value, Lit) else None


def literal_true(value: Value | None) -> bool:
    return isinstance(value, Lit) and value.value is True


def cidr(text: object) -> IPNetwork | None:
    """The network KumoMTA reads from a relay/trusted-hosts entry; None if it is not valid (E207)."""
    try:
        return parse_cidr(text)
    except ValueError:
        return None


def min_prefix(ctx: Any, net: IPNetwork) -> int:
    thresholds = ctx.config.thresholds
    return (
        thresholds.relay_ipv4_min_prefix if net.version == 4 else thresholds.relay_ipv6_min_prefix
    )


def is_everything(text: str, net: IPNetwork) -> bool:
    return net.prefixlen == 0 or text == "any"


def width_problem(ctx: Any, text: str, net: IPNetwork) -> str | None:
    """Why a network is too wide to be trusted, or None."""
    if is_everything(text, net):
        return "matches every address on the internet"
    limit = min_prefix(ctx, net)
    if net.prefixlen < limit:
        return (
            f"is wider than the configured limit (/{net.prefixlen} is wider than /{limit}, "
            f"{net.num_addresses:,} addresses)"
        )
    return None


def is_loopback_net(net: IPNetwork) -> bool:
    return any(net.version == lo.version and net.subnet_of(lo) for lo in LOOPBACK)  # type: ignore[arg-type]


def listen_is_loopback(listen: str) -> bool | None:
    """True for a loopback listen address, False beyond loopback, None if it cannot be told."""
    try:
        host, _port = parse_socket_address(listen.replace(COMPUTED_PORT, "1"))
    except ValueError:
        return None
    if host.startswith("/"):
        return True  # a unix socket is local
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name that resolves to a routable address


def data_formats(model: PolicyModel) -> dict[str, str]:
    """tree path -> helper data format of every data file the policy loads through a helper."""
    out: dict[str, str] = {}
    for ref in model.data_refs:
        if ref.tree_path and ref.data_format:
            out.setdefault(ref.tree_path, ref.data_format)
    return out


def data_files(ctx: Any, data_format: str) -> Iterator[tuple[str, Any, Any]]:
    """(tree path, parsed value, located) of the loaded data files of one helper format."""
    for path, fmt in sorted(data_formats(ctx.model).items()):
        if fmt != data_format:
            continue
        result = ctx.data.get(path)
        value = getattr(result, "value", None)
        located = getattr(result, "located", None)
        if isinstance(value, dict) and located is not None:
            yield path, value, located


def shaping_sections(value: dict[str, Any]) -> Iterator[tuple[DataPath, dict[str, Any], str]]:
    """Every table of egress-path settings in a shaping file: (key path, table, readable label).

    Labels: ``default``, ``domain gmail.com``, ``provider yahoo``, plus `` source ip-1`` for the
    per-source tables inside them.
    """
    for key, section in value.items():
        if not isinstance(section, dict):
            continue
        if key == "provider":
            for name, provider in section.items():
                if isinstance(provider, dict):
                    yield from _with_sources(("provider", name), provider, f"provider {name}")
            continue
        label = "default" if key == "default" else f"domain {key}"
        yield from _with_sources((key,), section, label)


def _with_sources(
    path: DataPath, section: dict[str, Any], label: str
) -> Iterator[tuple[DataPath, dict[str, Any], str]]:
    yield path, section, label
    sources = section.get("sources")
    if isinstance(sources, dict):
        for name, table in sources.items():
            if isinstance(table, dict):
                yield (*path, "sources", name), table, f"{label} source {name}"


def sites_of(model: PolicyModel, *names: str) -> list[CallSite]:
    """Calls of the dotted names (the model indexes its calls by callee once)."""
    return model.sites_of(*names)


def literal_tables(model: PolicyModel, *names: str) -> Iterator[tuple[CallSite, Table]]:
    for site in sites_of(model, *names):
        table = site.table_arg(0)
        if table is not None:
            yield site, table


# ----- function bodies (return tables, comparisons) -------------------------------------------------------

_CONDITIONAL_NODES = {
    "if_statement",
    "elseif_statement",
    "else_statement",
    "while_statement",
    "for_statement",
    "repeat_statement",
}
_FUNCTION_NODES = {"function_definition", "function_declaration"}


_FUNCTIONS_QUERY = "(function_definition) @f (function_declaration) @f"


@lru_cache(maxsize=64)
def parsed(source: bytes) -> tuple[Tree, LineIndex, dict[tuple[int, int], Node]]:
    tree = parse(source)
    bodies: dict[tuple[int, int], Node] = {}
    for node in captures(tree.root_node, _FUNCTIONS_QUERY):
        body = node.child_by_field_name("body")
        if body is not None:
            bodies[(body.start_byte, body.end_byte)] = body
    return tree, LineIndex(source), bodies


@dataclass(slots=True)
class FunctionBody:
    """A handler's function body, with its tree and an evaluator for its values."""

    module: str
    body: Node
    tree: Tree
    evaluator: Evaluator
    params: list[str]


def handler_body(model: PolicyModel, handler: Handler) -> FunctionBody | None:
    """The syntax of a handler defined in the policy (None for helper handlers or unknown ones)."""
    if handler.function is None:
        return None
    module, fid = handler.function
    mod = model.modules.get(module)
    if mod is None or not 0 <= fid < len(mod.facts.functions):
        return None
    fn = mod.facts.functions[fid]
    tree, index, bodies = parsed(mod.text.encode("utf-8"))
    body = bodies.get(tuple(fn.body))  # type: ignore[arg-type]
    if body is None:
        return None
    return FunctionBody(module, body, tree, Evaluator(index), fn.params)


def walk_body(body: Node) -> Iterator[tuple[Node, bool]]:
    """Nodes of a function body (not of functions nested in it), with "inside an if/loop body"."""
    stack = [(child, False) for child in reversed(body.named_children)]
    while stack:
        node, conditional = stack.pop()
        if node.type in _FUNCTION_NODES:
            continue
        yield node, conditional
        inner = conditional or node.type in _CONDITIONAL_NODES
        stack.extend((child, inner) for child in reversed(node.named_children))


def returned_tables(model: PolicyModel, handler: Handler) -> Iterator[tuple[str, Table, bool]]:
    """(module, table, conditional) for each `return { ... }` of a policy-defined handler."""
    fb = handler_body(model, handler)
    if fb is None:
        return
    for node, conditional in walk_body(fb.body):
        if node.type != "return_statement":
            continue
        exprs = [c for c in node.named_children if c.type == "expression_list"]
        first = exprs[0].named_children[0] if exprs and exprs[0].named_children else None
        if first is not None and first.type == "table_constructor":
            value = fb.evaluator.eval(first)
            if isinstance(value, Table):
                yield fb.module, value, conditional


# ----- listener scopes ------------------------------------------------------------------------------------


@dataclass(slots=True)
class ListenerScope:
    """One table of ESMTP listener parameters: the listener itself, a peer/via block, or a table
    returned by smtp_server_get_dynamic_parameters."""

    module: str
    table: Table
    listener: str  # listen address, or "dynamic parameters"
    block: str  # "" for the listener table itself, else "peer <cidr>" / "via <addr>"
    peer: IPNetwork | None  # the peer block's network
    peer_key: str
    conditional: bool  # a dynamic-parameters table returned inside an if/loop body

    @property
    def where(self) -> str:
        base = (
            "the table returned by smtp_server_get_dynamic_parameters"
            if self.listener == "dynamic parameters"
            else f"listener {self.listener}"
        )
        return f"{base} ({self.block} block)" if self.block else base


COMPUTED_PORT = "<port>"


def written(model: PolicyModel, module: str, span: Span, limit: int = 60) -> str | None:
    """The source text at a one-line `span` of a module (how a computed value is written), or None
    when it spans lines, is longer than `limit` or the module is not loaded."""
    mod = model.modules.get(module)
    if mod is None or span.line != span.end_line:
        return None
    lines = mod.text.split("\n", span.line)
    if len(lines) < span.line:
        return None
    text = lines[span.line - 1][span.column - 1 : span.end_column - 1].strip()
    return text if 0 < len(text) <= limit else None


def listen_text(value: Value | None) -> str | None:
    """A listen address as far as it is known: the literal, or a computed one whose host is known
    (`'0.0.0.0:' .. port` gives '0.0.0.0:<port>'); None when the host is not known."""
    if isinstance(value, Lit) and isinstance(value.value, str):
        return value.value
    if isinstance(value, Unknown) and value.prefix:
        host, sep, port = value.prefix.rpartition(":")
        if sep and host and (not port or port.isdigit()):
            return f"{host}:{port or COMPUTED_PORT}"
    return None


def esmtp_listen(table: Table) -> str:
    if table.get("listen") is None:
        return ESMTP_DEFAULT_LISTEN
    return listen_text(table.get("listen")) or "(computed address)"


def listener_scopes(model: PolicyModel) -> Iterator[ListenerScope]:
    for site, table in literal_tables(model, "kumo.start_esmtp_listener"):
        yield from _scopes(site.module, table, esmtp_listen(table), False)
    for handler in model.handlers_for("smtp_server_get_dynamic_parameters"):
        for module, table, conditional in returned_tables(model, handler):
            yield from _scopes(module, table, "dynamic parameters", conditional)


def _scopes(module: str, table: Table, listen: str, conditional: bool) -> Iterator[ListenerScope]:
    yield ListenerScope(module, table, listen, "", None, "", conditional)
    for block in ("peer", "via"):
        blocks = table.get(block)
        if not isinstance(blocks, Table):
            continue
        for key, entry in blocks.fields():
            if isinstance(entry.value, Table):
                net = cidr(key) if block == "peer" else None
                yield ListenerScope(
                    module, entry.value, listen, f"{block} {key}", net, key, conditional
                )


def peer_gated(ctx: Any, scope: ListenerScope) -> bool:
    """True if the scope only applies to some peers: a peer block no wider than the relay limit,
    or a dynamic-parameters table returned conditionally."""
    if scope.block.startswith("peer "):
        if scope.peer is None:
            return True  # an invalid key (E207) matches nobody
        return width_problem(ctx, scope.peer_key, scope.peer) is None
    return scope.conditional


# ----- S101 open-relay --------------------------------------------------------------------------------------
