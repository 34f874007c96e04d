"""Effective shaping: the egress-path settings that apply to one destination, and where each came from.

Mirrors how KumoMTA merges shaping data (crates/kumo-api-types/src/shaping.rs, `merge_files` and
`get_egress_path_config`), over parsed data only:

1. files are merged in load order: the helper's bundled defaults first (unless `no_default_files`),
   then `extra_files`; a later section for the same name merges into the earlier one (a section with
   `replace_base = true` replaces what earlier files said for that name);
2. for a destination: `["default"]`, then every matching `[provider]` (and the matching provider's
   `sources.<source>`), then the domain's section (through its MX site when `mx_rollup` is true, the
   default, or by name when it is false), then the domain's `sources.<source>` override. A section
   with `replace_base = true` drops everything merged before it. Only the throttle tables
   (`additional_connection_limits`, `additional_message_rate_throttles`,
   `additional_source_selection_rates`) merge key by key; every other key is replaced.

Static limits (reported as notes): provider `MXSuffix` / `HostName` rules need the destination's MX
hosts, so only `DomainSuffix` rules are evaluated; an `mx_rollup` section applies through the MX site
name, so sections of *other* domains that share the site cannot be seen, and a domain whose MX lookup
fails would have its section ignored by KumoMTA.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

BUNDLED_DEFAULTS_PATH = "/opt/kumomta/share/policy-extras/shaping.toml"
BUNDLED_ORIGIN = f"bundled defaults ({BUNDLED_DEFAULTS_PATH})"
HELPER_ORIGIN = "policy-extras.shaping helper (used when no file sets it)"

# Facts about KumoMTA's bundled shaping defaults (KUMOMTA.md §4.1; K:assets/policy-extras/shaping.toml):
# its ["default"] values, and the internal domains it sets to mx_rollup = false. Its provider and
# per-domain sections are not reproduced (providers there match by MX host, which needs DNS).
BUNDLED_DEFAULT_SECTION: dict[str, Any] = {
    "connection_limit": 10,
    "max_connection_rate": "100/min",
    "max_deliveries_per_connection": 100,
    "max_message_rate": "100/s",
    "idle_timeout": "60s",
    "data_timeout": "30s",
    "data_dot_timeout": "60s",
    "enable_tls": "Opportunistic",
    "consecutive_connection_failures_before_delay": 100,
    "remember_broken_tls": "3 days",
}
BUNDLED_NO_ROLLUP_DOMAINS = ("generator.kumomta.internal", "deferred_smtp_inject.kumomta.internal")

# Tables merged key by key rather than replaced (shaping.rs, toml_table_merge_from).
MERGEABLE = frozenset(
    {
        "additional_connection_limits",
        "additional_message_rate_throttles",
        "additional_source_selection_rates",
    }
)
# Section keys that are not egress-path parameters.
_PARTIAL_FIELDS = frozenset({"mx_rollup", "replace_base", "automation", "sources"})
_PROVIDER_FIELDS = frozenset(
    {
        "provider_connection_limit",
        "provider_max_message_rate",
        "match",
        "replace_base",
        "automation",
        "sources",
    }
)
NO_SOURCE = "<source>"


class Setting(NamedTuple):
    """One effective setting: its key, its value and where it came from ("file:line")."""

    key: str
    value: Any
    origin: str


@dataclass(frozen=True)
class ShapingLayer:
    """One shaping file in load order: its parsed value and, when known, its positions."""

    path: str
    value: Any
    located: Any = None  # auditor.data.locate.Located
    bundled: bool = False

    def origin(self, keypath: tuple[str | int, ...], *, element: bool = False) -> str:
        if self.bundled or self.located is None:
            return BUNDLED_ORIGIN if self.bundled else self.path
        span = self.located.value_span(keypath) if element else self.located.key_span(keypath)
        return f"{self.path}:{span.line}"


BUNDLED_LAYER = ShapingLayer(
    BUNDLED_DEFAULTS_PATH,
    {
        "default": dict(BUNDLED_DEFAULT_SECTION),
        **{name: {"mx_rollup": False} for name in BUNDLED_NO_ROLLUP_DOMAINS},
    },
    bundled=True,
)


@dataclass
class ShapingReport:
    """The merged settings for one destination plus what could not be evaluated statically."""

    domain: str
    source: str | None
    settings: list[Setting]
    files: list[str]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "source": self.source,
            "settings": [
                {"key": s.key, "value": s.value, "origin": s.origin} for s in self.settings
            ],
            "files": self.files,
            "notes": self.notes,
        }


# ---------------------------------------------------------------------------------------------
# merge model (values carry their origin)


@dataclass
class _Val:
    value: Any
    origin: str


Params = dict[str, Any]  # key -> _Val, or (for MERGEABLE keys holding a table) dict[str, _Val]


def _merge_params(target: Params, source: Params) -> None:
    for key, value in source.items():
        existing = target.get(key)
        if key in MERGEABLE and isinstance(existing, dict) and isinstance(value, dict):
            existing.update(copy.deepcopy(value))
        else:
            target[key] = copy.deepcopy(value)


@dataclass
class _Partial:
    params: Params = field(default_factory=dict)
    replace_base: bool = False
    automation: list[_Val] = field(default_factory=list)
    sources: dict[str, Params] = field(default_factory=dict)

    def merge_from(self, other: _Partial) -> None:
        # as in shaping.rs: the receiving entry keeps its own replace_base flag
        if other.replace_base:
            self.params = copy.deepcopy(other.params)
            self.automation = copy.deepcopy(other.automation)
            self.sources = copy.deepcopy(other.sources)
            return
        _merge_params(self.params, other.params)
        for name, params in other.sources.items():
            if name in self.sources:
                _merge_params(self.sources[name], params)
            else:
                self.sources[name] = copy.deepcopy(params)
        self.automation.extend(copy.deepcopy(other.automation))


@dataclass
class _Provider:
    name: str
    origin: str
    connection_limit: _Val | None = None
    max_message_rate: _Val | None = None
    matches: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, text, origin)
    replace_base: bool = False
    params: Params = field(default_factory=dict)
    sources: dict[str, Params] = field(default_factory=dict)

    def merge_from(self, other: _Provider) -> None:
        # as in shaping.rs: provider_max_message_rate is kept from the first definition
        if other.replace_base:
            self.connection_limit = other.connection_limit
            self.matches = list(other.matches)
            self.params = copy.deepcopy(other.params)
            self.sources = copy.deepcopy(other.sources)
            return
        if other.connection_limit is not None:
            self.connection_limit = other.connection_limit
        _merge_params(self.params, other.params)
        for name, params in other.sources.items():
            if name in self.sources:
                _merge_params(self.sources[name], params)
            else:
                self.sources[name] = copy.deepcopy(params)
        self.matches.extend(other.matches)

    def match(self, domain: str) -> str:
        """ "yes" (a DomainSuffix matches), "dns" (only MX rules could match) or "no"."""
        need_mx = False
        for kind, text, _origin in self.matches:
            if kind == "DomainSuffix" and domain.endswith(text):
                return "yes"
            if kind in ("MXSuffix", "HostName"):
                need_mx = True
        return "dns" if need_mx else "no"

    def apply_to(self, source: str, target: Params) -> None:
        """The settings a provider implies (provider_name and its shared throttles)."""
        implied: Params = {"provider_name": _Val(self.name, self.origin)}
        if self.connection_limit is not None:
            implied["additional_connection_limits"] = {
                f"shaping-provider-{self.name}-{source}-limit": self.connection_limit
            }
        if self.max_message_rate is not None:
            implied["additional_message_rate_throttles"] = {
                f"shaping-provider-{self.name}-{source}-rate": self.max_message_rate
            }
        rate = target.pop("provider_source_selection_rate", None)
        if isinstance(rate, _Val):
            implied["additional_source_selection_rates"] = {
                f"shaping-provider-{self.name}-{source}-selection-rate": rate
            }
        _merge_params(target, implied)


def _params(
    layer: ShapingLayer, path: tuple[str, ...], body: dict[str, Any], skip: frozenset[str]
) -> Params:
    out: Params = {}
    for key, value in body.items():
        if key in skip:
            continue
        if key in MERGEABLE and isinstance(value, dict):
            out[key] = {
                inner: _Val(item, layer.origin((*path, key, inner)))
                for inner, item in value.items()
            }
        else:
            out[key] = _Val(value, layer.origin((*path, key)))
    return out


def _sources(layer: ShapingLayer, path: tuple[str, ...], body: dict[str, Any]) -> dict[str, Params]:
    found = body.get("sources")
    if not isinstance(found, dict):
        return {}
    return {
        name: _params(layer, (*path, "sources", name), params, frozenset())
        for name, params in found.items()
        if isinstance(params, dict)
    }


def _partial(layer: ShapingLayer, name: str, body: dict[str, Any]) -> _Partial:
    rules = body.get("automation")
    automation = (
        [
            _Val(rule, layer.origin((name, "automation", index), element=True))
            for index, rule in enumerate(rules)
        ]
        if isinstance(rules, list)
        else []
    )
    return _Partial(
        params=_params(layer, (name,), body, _PARTIAL_FIELDS),
        replace_base=body.get("replace_base") is True,
        automation=automation,
        sources=_sources(layer, (name,), body),
    )


def _provider(layer: ShapingLayer, name: str, body: dict[str, Any]) -> _Provider:
    path = ("provider", name)
    matches = []
    rules = body.get("match")
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if isinstance(rule, dict) and len(rule) == 1:
            ((kind, text),) = rule.items()
            if isinstance(text, str):
                matches.append((kind, text, layer.origin((*path, "match", index), element=True)))
    limit = body.get("provider_connection_limit")
    rate = body.get("provider_max_message_rate")
    return _Provider(
        name=name,
        origin=layer.origin(path),
        connection_limit=_Val(limit, layer.origin((*path, "provider_connection_limit")))
        if limit is not None
        else None,
        max_message_rate=_Val(rate, layer.origin((*path, "provider_max_message_rate")))
        if rate is not None
        else None,
        matches=matches,
        replace_base=body.get("replace_base") is True,
        params=_params(layer, path, body, _PROVIDER_FIELDS),
        sources=_sources(layer, path, body),
    )


@dataclass
class _Merged:
    by_site: dict[str, _Partial] = field(default_factory=dict)  # keyed by domain: see module doc
    by_domain: dict[str, _Partial] = field(default_factory=dict)
    by_provider: dict[str, _Provider] = field(default_factory=dict)


def _merge_layers(layers: Sequence[ShapingLayer]) -> _Merged:
    merged = _Merged()

    def put(table: dict[str, Any], name: str, entry: Any) -> None:
        if name in table:
            table[name].merge_from(entry)
        else:
            table[name] = entry

    for layer in layers:
        if not isinstance(layer.value, dict):
            continue
        default = layer.value.get("default")
        if isinstance(default, dict):
            put(merged.by_domain, "default", _partial(layer, "default", default))
        for name, body in layer.value.items():
            if name in ("default", "provider") or not isinstance(body, dict):
                continue
            rollup = body.get("mx_rollup", True) is not False
            put(merged.by_site if rollup else merged.by_domain, name, _partial(layer, name, body))
        providers = layer.value.get("provider")
        if isinstance(providers, dict):
            for name, body in providers.items():
                if isinstance(body, dict):
                    put(merged.by_provider, name, _provider(layer, name, body))
    return merged


_NOT_DNS = re.compile(r"[/:\s]")


def _resolve(merged: _Merged, domain: str, source: str | None, notes: list[str]) -> _Partial:
    """shaping.rs get_egress_path_config, with the MX-dependent parts reported as notes."""
    source_name = source or NO_SOURCE
    params = _Partial()
    if "default" in merged.by_domain:
        params.merge_from(copy.deepcopy(merged.by_domain["default"]))
    if not _NOT_DNS.search(domain):
        with_sources = []
        for provider in merged.by_provider.values():
            verdict = provider.match(domain)
            if verdict == "dns":
                rules = ", ".join(f"{kind} {text!r}" for kind, text, _ in provider.matches)
                notes.append(
                    f"provider '{provider.name}' ({provider.origin}) matches by MX host ({rules}): "
                    f"its settings apply only if the MX hosts of {domain} match, which needs a DNS "
                    "lookup; they are not included"
                )
                continue
            if verdict != "yes":
                continue
            _merge_params(params.params, provider.params)
            provider.apply_to(source_name, params.params)
            if provider.sources:
                with_sources.append(provider)
        for provider in with_sources:
            if source is not None and source in provider.sources:
                _merge_params(params.params, provider.sources[source])
                provider.apply_to(source_name, params.params)
    site = merged.by_site.get(domain)
    if site is not None:
        params.merge_from(copy.deepcopy(site))
        notes.append(
            f'the ["{domain}"] section has mx_rollup = true (the default): KumoMTA applies it to '
            f"the MX site of {domain}, together with any other domain's section on the same site "
            "(not knowable without DNS), and ignores it if the MX lookup fails or is a null MX"
        )
    entry = merged.by_domain.get(domain) if domain != "default" else None
    if entry is not None:
        params.merge_from(copy.deepcopy(entry))
    for section in (site, entry):
        if section is None:
            continue
        if source is not None and source in section.sources:
            _merge_params(params.params, section.sources[source])
    if source is None:
        overridden = sorted(
            {name for section in (site, entry) if section for name in section.sources}
            | {
                name
                for p in merged.by_provider.values()
                if p.match(domain) == "yes"
                for name in p.sources
            }
        )
        if overridden:
            notes.append(
                f"sources with their own overrides for {domain}: {', '.join(overridden)} "
                "(pass --source NAME to include one)"
            )
    return params


def _render_key(table: str, inner: str) -> str:
    bare = re.fullmatch(r"[A-Za-z0-9_-]+", inner)
    return f"{table}.{inner}" if bare else f"{table}.{json.dumps(inner)}"


def _settings(params: _Partial) -> list[Setting]:
    out: list[Setting] = []
    for key in sorted(params.params):
        value = params.params[key]
        if isinstance(value, dict):
            for inner in sorted(value):
                item = value[inner]
                out.append(Setting(_render_key(key, inner), item.value, item.origin))
        else:
            out.append(Setting(key, value.value, value.origin))
    if "refresh_strategy" not in params.params:
        out.append(Setting("refresh_strategy", "Epoch", HELPER_ORIGIN))
        out.sort(key=lambda s: s.key)
    for index, rule in enumerate(params.automation):
        out.append(Setting(f"automation[{index}]", rule.value, rule.origin))
    return out


# ---------------------------------------------------------------------------------------------
# inputs


def _as_layer(item: Any) -> ShapingLayer:
    if isinstance(item, ShapingLayer):
        return item
    if isinstance(item, tuple) and len(item) == 3:
        return ShapingLayer(str(item[0]), item[1], item[2])
    if isinstance(item, tuple) and len(item) == 2:
        result = item[1]
        return ShapingLayer(
            str(item[0]), getattr(result, "value", None), getattr(result, "located", None)
        )
    raise TypeError(f"not a shaping layer: {type(item).__name__}")


def _shaping_files_literal(setup: Any) -> bool:
    """True when the setup's extra_files are all written as literal paths (or there are none)."""
    from auditor.lua.literal import Lit, Table

    value = setup.site.arg(0)
    if isinstance(value, Table) and value.get("extra_files") is None:
        return not value.has_unknown_keys and all(
            isinstance(item, Lit) and isinstance(item.value, str) for item in value.array()
        )
    if isinstance(value, Table):
        value = value.get("extra_files")
    if isinstance(value, Lit):
        return isinstance(value.value, str)
    if not isinstance(value, Table) or value.has_unknown_keys:
        return False
    return all(isinstance(item, Lit) and isinstance(item.value, str) for item in value.array())


def shaping_layers(ctx: Any) -> tuple[list[ShapingLayer], list[str]]:
    """The shaping files the policy's shaping helper loads, in KumoMTA's load order, plus notes
    about what is missing. `ctx` is an AuditContext (model + validated data files)."""
    notes: list[str] = []
    setups = [s for s in ctx.model.setups_of("shaping") if s.site.contexts]
    if not setups:
        notes.append(
            "the policy does not set up policy-extras.shaping, so no shaping data applies: egress "
            "paths come from the policy's own get_egress_path_config handler (if any)"
        )
        return [], notes
    layers: list[ShapingLayer] = []
    for setup in setups:
        refs = [r for r in setup.data if r.implicit] + [r for r in setup.data if not r.implicit]
        for ref in refs:
            result = ctx.data.get(ref.tree_path) if ref.tree_path else None
            value = getattr(result, "value", None)
            if ref.implicit and not isinstance(value, dict):
                layers.append(BUNDLED_LAYER)
                notes.append(
                    f'of {BUNDLED_DEFAULTS_PATH} (not in the audited tree) only its ["default"] '
                    "values are known here; its provider rules (matched by MX host) and "
                    "per-domain sections are not included"
                )
                continue
            if not isinstance(value, dict):
                where = ref.tree_path or ref.written
                notes.append(f"{where} could not be read or parsed: its settings are not included")
                continue
            errors = [f for f in getattr(result, "findings", []) if f.severity.value == "error"]
            if errors:
                codes = ", ".join(sorted({f.code for f in errors}))
                notes.append(
                    f"{ref.tree_path} has errors ({codes}; see kumo-audit check): KumoMTA refuses "
                    "to load the shaping data until they are fixed; shown is what the files say"
                )
            layers.append(ShapingLayer(ref.tree_path or ref.written, value, result.located))
        if not _shaping_files_literal(setup):
            notes.append(
                f"{setup.site.module}:{setup.site.span.line}: some shaping files are not named "
                "literally; their settings are not included"
            )
        options = setup.options
        if options is not None and options.get("subscribe") is not None:
            notes.append(
                "shaping data published by the Traffic Shaping Automation service (subscribe) "
                "is loaded at run time and is not included"
            )
    return layers, notes


def explain_shaping(context_or_data: Any, domain: str, source: str | None = None) -> ShapingReport:
    """The effective settings for `domain` (and egress `source`) with notes on what static analysis
    cannot see. `context_or_data` is an AuditContext, or a sequence of ShapingLayer /
    (path, DataResult) / (path, value, located) in load order."""
    domain = domain.strip().lower().rstrip(".")
    if hasattr(context_or_data, "model") and hasattr(context_or_data, "data"):
        layers, notes = shaping_layers(context_or_data)
    else:
        layers, notes = [_as_layer(item) for item in context_or_data], []
    merged = _merge_layers(layers)
    resolved = _resolve(merged, domain, source, notes)
    files = [BUNDLED_ORIGIN if layer.bundled else layer.path for layer in layers]
    settings = _settings(resolved) if layers else []
    return ShapingReport(domain, source, settings, files, notes)


def effective_shaping(
    context_or_data: Any, domain: str, source: str | None = None
) -> list[Setting]:
    """Merged egress-path settings for `domain`: a list of (key, value, origin) in key order,
    automation rules last. See `explain_shaping` for the accepted inputs."""
    return explain_shaping(context_or_data, domain, source).settings


def layers_from(items: Iterable[Any]) -> list[ShapingLayer]:
    """Normalise (path, DataResult) / (path, value, located) items to layers."""
    return [_as_layer(item) for item in items]
