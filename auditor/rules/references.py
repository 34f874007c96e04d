"""E4xx: names in one helper data file (or a literal queue config) that no definition answers.

A reference is only checked when the policy loads the definitions through the helper that owns
them (for pools and sources: `sources:setup`), every file of that helper is named literally, and
every one of them parsed. When a file list is computed, holds inline Lua tables, or a file failed
to parse, the set of definitions is not known, and nothing is reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor.core.findings import Finding, Span
from auditor.core.record import dataclass
from auditor.kumo.model import DataRef, HelperSetup, PolicyModel
from auditor.lua.literal import Lit, Table, Value
from auditor.rules.registry import rule


@dataclass(frozen=True, slots=True)
class LoadedFile:
    """One data file of a helper setup, parsed: its tree path, value and positions."""

    path: str
    value: dict[str, Any]
    located: Any  # auditor.data.locate.Located


def _literal_file_list(setup: HelperSetup) -> bool:
    """True when every file the setup loads is written as a literal path (no variables, no inline tables)."""
    value: Value | None = setup.site.arg(0)
    source = setup.helper.files_from
    if source.startswith("option:") and isinstance(value, Table):
        listed = value.get(source.removeprefix("option:"))
        if listed is None and value.array():
            listed = value
        value = listed
    if isinstance(value, Lit):
        return isinstance(value.value, str)
    if not isinstance(value, Table) or value.has_unknown_keys:
        return False
    items = value.array()
    if len([e for e in value.entries if not isinstance(e.key, str)]) != len(items):
        return False  # holes or non-sequence keys: ipairs would not see everything
    return all(isinstance(item, Lit) and isinstance(item.value, str) for item in items)


def loaded_helper_data(ctx: Any, helper_key: str) -> list[LoadedFile] | None:
    """Every data file the policy's `helper_key` setups load, in load order; None when any file is
    unknown (non-literal list, inline table, outside the tree, missing, unparsed) or the helper is
    not set up at all."""
    model: PolicyModel = ctx.model
    setups = [s for s in model.setups_of(helper_key) if s.site.contexts]
    if not setups:
        return None
    out: list[LoadedFile] = []
    for setup in setups:
        if not _literal_file_list(setup):
            return None
        refs: list[DataRef] = [r for r in setup.data if not r.implicit]
        for ref in refs:
            if ref.tree_path is None:
                return None
            result = ctx.data.get(ref.tree_path)
            value = getattr(result, "value", None)
            located = getattr(result, "located", None)
            if not isinstance(value, dict) or located is None:
                return None
            out.append(LoadedFile(ref.tree_path, value, located))
    return out


def _files_label(files: list[LoadedFile]) -> str:
    names = list(dict.fromkeys(f.path for f in files))
    if not names:
        return "no data file"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _tables(value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(value, dict):
        for name, body in value.items():
            if isinstance(body, dict):
                yield name, body


def _span(file: LoadedFile, path: tuple[str | int, ...], *, key: bool) -> Span:
    return file.located.key_span(path) if key else file.located.value_span(path)


# ----- E401 undefined-source ------------------------------------------------------------------------------


def _check_undefined_source(ctx: Any) -> Iterator[Finding]:
    files = loaded_helper_data(ctx, "sources")
    if not files:
        return
    defined = {name for f in files for name, _ in _tables(f.value.get("source"))}
    label = _files_label(files)
    for file in files:
        for pool, entries in _tables(file.value.get("pool")):
            for source in entries:
                if source in defined:
                    continue
                yield UNDEFINED_SOURCE.finding(
                    file.path,
                    _span(file, ("pool", pool, source), key=True),
                    f"pool '{pool}' lists source '{source}', but no [source.\"{source}\"] block "
                    f"defines it in {label}: when KumoMTA picks this source, get_egress_source has "
                    "nothing to build it from and the messages assigned to it are delayed",
                    key=f"pool {pool} source {source}",
                )


UNDEFINED_SOURCE = rule(
    "E401",
    "undefined-source",
    "error",
    "A pool entry that names a source not defined in the sources data.",
    doc="""
The sources helper (`policy-extras.sources`) builds each egress pool from the `[pool."<pool>"]`
entries and each egress source from the `[source."<name>"]` blocks of all the files passed to
`sources:setup`. A pool entry whose source has no block is not rejected when the data loads
(`kumod --validate` only prints it), but when KumoMTA selects that source for the pool, the
helper's `get_egress_source` handler has no parameters to build it from and fails: the share of
traffic weighted to that source is delayed. Typical cause: a source retired from `[source]` but
left in a pool. Checked only when the policy loads the sources data through `sources:setup` with
literal file names.
""",
    bad="""
[source."ip-1"]
source_address = "192.0.2.1"

[pool."marketing"."ip-2"]
weight = 10
""",
    good="""
[source."ip-1"]
source_address = "192.0.2.1"

[pool."marketing"."ip-1"]
weight = 10
""",
    fix='Define the source in a [source."<name>"] block, or remove it from the pool.',
)(_check_undefined_source)


# ----- E402 undefined-pool --------------------------------------------------------------------------------


def _pool_refs(value: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(key path of `egress_pool`, pool name) for every queue/tenant/campaign section of queues data."""

    def section(path: tuple[str | int, ...], body: dict[str, Any]) -> Iterator[tuple[Any, str]]:
        pool = body.get("egress_pool")
        if isinstance(pool, str):
            yield (*path, "egress_pool"), pool

    for tenant, body in _tables(value.get("tenant")):
        yield from section(("tenant", tenant), body)
        for campaign, inner in _tables(body.get("campaigns")):
            yield from section(("tenant", tenant, "campaigns", campaign), inner)
    for domain, body in _tables(value.get("queue")):
        yield from section(("queue", domain), body)
        for tenant, inner in _tables(body):
            if tenant == "shrink_policy":
                continue
            yield from section(("queue", domain, tenant), inner)
            for campaign, deepest in _tables(inner):
                if campaign == "campaigns":
                    continue
                yield from section(("queue", domain, tenant, campaign), deepest)


def _check_undefined_pool(ctx: Any) -> Iterator[Finding]:
    from auditor.data.locate import render_path

    sources = loaded_helper_data(ctx, "sources")
    if sources is None:
        return
    pools = {name for f in sources for name in (f.value.get("pool") or {})}
    label = _files_label(sources)
    consequence = (
        "get_egress_pool has no definition for it, so the queue cannot pick an egress source "
        "and its messages are not delivered"
    )
    for file in loaded_helper_data(ctx, "queue") or []:
        for path, pool in _pool_refs(file.value):
            if pool in pools:
                continue
            yield UNDEFINED_POOL.finding(
                file.path,
                _span(file, path, key=False),
                f"{render_path(path)} names pool '{pool}', which is not defined in {label} "
                f'(no [pool."{pool}"]): {consequence}',
                key=f"{render_path(path)} {pool}",
            )
    for site in ctx.model.calls_to("kumo.make_queue_config"):
        if not site.contexts:
            continue
        table = site.table_arg(0)
        entry = table.entry("egress_pool") if table is not None else None
        if entry is None or not isinstance(entry.value, Lit):
            continue
        pool = entry.value.value
        if not isinstance(pool, str) or pool in pools:
            continue
        yield UNDEFINED_POOL.finding(
            site.module,
            entry.value.span,
            f"kumo.make_queue_config names egress_pool '{pool}', which is not defined in "
            f'{label} (no [pool."{pool}"]): {consequence}',
            key=f"make_queue_config egress_pool {pool}",
        )


UNDEFINED_POOL = rule(
    "E402",
    "undefined-pool",
    "error",
    "An egress_pool (queues data or a literal make_queue_config) naming a pool not defined in the sources data.",
    doc="""
A queue's `egress_pool` selects the pool of egress sources its messages leave from. When the
policy defines its pools with the sources helper, every pool name used by the queue helper data
(`[tenant.X]`, `[queue."<domain>"]` and their tenant and campaign sections) or by a literal
`kumo.make_queue_config{ egress_pool = ... }` must be a `[pool."<name>"]` of the sources data.
Otherwise the helper's `get_egress_pool` handler has nothing to build the pool from, the ready
queue cannot be set up, and the messages stay queued until they expire. Checked only when the
policy loads the sources data through `sources:setup` with literal file names.
""",
    bad="""
# queues.toml
[tenant.'acme']
egress_pool = "bulk"      # sources.toml defines only [pool."marketing"]
""",
    good="""
# queues.toml
[tenant.'acme']
egress_pool = "marketing"
""",
    fix='Use a pool defined in the sources data, or add the [pool."<name>"] block there.',
)(_check_undefined_pool)


# ----- E403 undefined-tenant ------------------------------------------------------------------------------


def _check_undefined_tenant(ctx: Any) -> Iterator[Finding]:
    files = loaded_helper_data(ctx, "queue")
    if not files:
        return
    tenants = {name for f in files for name, _ in _tables(f.value.get("tenant"))}
    label = _files_label(files)
    for file in files:
        tenant = file.value.get("default_tenant")
        if not isinstance(tenant, str) or tenant in tenants:
            continue
        yield UNDEFINED_TENANT.finding(
            file.path,
            _span(file, ("default_tenant",), key=False),
            f"default_tenant '{tenant}' is not defined as a [tenant.'{tenant}'] section in "
            f"{label}: queue_helper:apply rejects every message without a tenant header "
            "(500 'tenant ... is not defined in your queue config')",
            key=f"default_tenant {tenant}",
        )


UNDEFINED_TENANT = rule(
    "E403",
    "undefined-tenant",
    "error",
    "A default_tenant in the queues data that is not a defined tenant.",
    doc="""
The queue helper assigns `default_tenant` to every message that carries no tenant header, then
looks the tenant up among the `[tenant.'<name>']` sections of its data files. If the tenant is not
defined there, `queue_helper:apply(msg)` rejects the message with a 500 ("tenant '<name>'
specified by default_tenant option is not defined in your queue config"), so all mail without the
header is refused at reception.
""",
    bad="""
default_tenant = "system"

[tenant.'customers']
egress_pool = "marketing"
""",
    good="""
default_tenant = "system"

[tenant.'system']
egress_pool = "transactional"
""",
    fix="Add a [tenant.'<name>'] section for the default tenant, or name an existing tenant.",
)(_check_undefined_tenant)


# ----- E404 undefined-signature ---------------------------------------------------------------------------


def _check_undefined_signature(ctx: Any) -> Iterator[Finding]:
    files = loaded_helper_data(ctx, "dkim_sign")
    if not files:
        return
    signatures = {name for f in files for name, _ in _tables(f.value.get("signature"))}
    label = _files_label(files)
    for file in files:
        base = file.value.get("base")
        listed = base.get("additional_signatures") if isinstance(base, dict) else None
        if not isinstance(listed, list):
            continue
        for index, name in enumerate(listed):
            if not isinstance(name, str) or name in signatures:
                continue
            yield UNDEFINED_SIGNATURE.finding(
                file.path,
                _span(file, ("base", "additional_signatures", index), key=False),
                f"additional_signatures lists '{name}', but no [signature.\"{name}\"] block "
                f"defines it in {label}: the dkim_sign helper refuses to load its data, so no "
                "message is signed",
                key=f"additional_signatures {name}",
            )


UNDEFINED_SIGNATURE = rule(
    "E404",
    "undefined-signature",
    "error",
    "A dkim additional_signatures entry without its [signature.NAME] block.",
    doc="""
`[base] additional_signatures` names signatures that the dkim_sign helper adds to every message;
each name must have a `[signature."<name>"]` block (with its `domain`) in one of the dkim data
files. When one is missing, the helper raises "dkim policy lists base.additional_signature '<name>'
but that signature is not defined in any signature block" while loading its data, and the signer
fails for every message.
""",
    bad="""
[base]
selector = "s1"
additional_signatures = ["esp"]
""",
    good="""
[base]
selector = "s1"
additional_signatures = ["esp"]

[signature."esp"]
domain = "esp.example"
""",
    fix='Add the [signature."<name>"] block (with its domain), or remove the name from additional_signatures.',
)(_check_undefined_signature)
