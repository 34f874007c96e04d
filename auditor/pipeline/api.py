"""The public entry point of the pipeline: `audit(snapshot, options) -> AuditResult`.

The CLI, the hooks and the daemon all call this (or `auditor.change.audit_change`), never the stages
by hand. Nothing here reads process-global state: everything a result depends on is in the snapshot
and the options.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field
from datetime import date
from typing import TYPE_CHECKING

from auditor.config.load import config_from_snapshot
from auditor.config.settings import Config
from auditor.core.record import dataclass

if TYPE_CHECKING:
    from auditor.core.findings import Finding
    from auditor.pipeline.stages import AuditResult
    from auditor.rules.context import AuditContext
    from auditor.source.snapshot import Snapshot

Cached = Callable[[str, str, Callable[[], object]], object]
"""`cached(namespace, key, compute)`: returns the cached value or computes and stores it."""


@dataclass(frozen=True)
class AuditOptions:
    """How to audit a snapshot. The defaults audit it as `kumo-audit check` would."""

    config: Config | None = None
    """The configuration; None reads it from the audited snapshot (`kumo-audit.toml`, or
    `[tool.kumo-audit]` in `pyproject.toml`), never from anywhere else."""
    select: tuple[str, ...] = ()
    """Codes or prefixes to report (replaces the configuration's `select` when not empty)."""
    ignore: tuple[str, ...] = ()
    """Codes or prefixes never reported (added to the configuration's `ignore`)."""
    entry: str | None = None
    """The policy entry file, relative to the snapshot root (None: configuration, then defaults)."""
    path_map: Mapping[str, str] = field(default_factory=dict)
    """Extra deployment-path prefix -> tree directory mappings."""
    use_suppressions: bool = True
    """False reports everything (`--no-suppressions`)."""
    cached: Cached | None = None
    """Content cache lookup (see `auditor.pipeline.cache.parse_cache_for`); None computes everything."""
    today: date | None = None
    """The day suppressions and waivers expire against (None: today)."""
    kind: str | None = None
    """For a data file given as the entry: which helper reads it (None: told from its name, else
    from its content)."""


def resolve_config(snapshot: Snapshot, options: AuditOptions) -> tuple[Config, str | None]:
    """The configuration a snapshot is audited with, and where it came from (a snapshot path,
    "options", or None for the defaults), with the options' select/ignore applied."""
    from auditor.filter.codes import check_codes, check_config_codes

    if options.config is not None:
        config, source = options.config, "options"
        check_config_codes(config, "configuration")
    else:
        config, source = config_from_snapshot(snapshot)
        if source is not None:
            check_config_codes(config, f"{source} ({snapshot.label})")
    check_codes([("", c, True) for c in (*options.select, *options.ignore)], "select/ignore")
    update: dict[str, object] = {}
    if options.select:
        update["select"] = list(options.select)
    if options.ignore:
        update["ignore"] = [*config.ignore, *options.ignore]
    return (config.replace(**update) if update else config), source


def audit(snapshot: Snapshot, options: AuditOptions | None = None) -> AuditResult:
    """Audit one state of a policy: load, data files, rules, filter."""
    from auditor.pipeline.stages import audit_snapshot

    options = options or AuditOptions()
    config, _ = resolve_config(snapshot, options)
    snapshot.size_limit = config.size_limit
    return audit_snapshot(
        snapshot,
        config,
        entry=options.entry,
        path_map_overrides=dict(options.path_map),
        cached=options.cached,
        use_suppressions=options.use_suppressions,
        today=options.today,
        kind=options.kind,
    )


def load(
    snapshot: Snapshot, options: AuditOptions | None = None
) -> tuple[AuditContext, list[Finding]]:
    """The loading stages only: the policy model and its parsed data files (the rule context), and
    the findings of loading; no rules run."""
    from auditor.pipeline.stages import load_context

    options = options or AuditOptions()
    config, _ = resolve_config(snapshot, options)
    snapshot.size_limit = config.size_limit
    return load_context(
        snapshot,
        config,
        entry=options.entry,
        path_map_overrides=dict(options.path_map),
        cached=options.cached,
    )
