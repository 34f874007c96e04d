"""`kumo-audit check [PATH]`: audit one policy tree as it is on disk."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from auditor.commands.common import (
    add_output_options,
    exit_code,
    output_plan,
    split_codes,
    use_color,
    write_outputs,
)

FORMATS = ("text", "json", "sarif", "github", "junit", "codequality", "markdown")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "check",
        help="audit a policy tree (a directory or an init.lua)",
        description="Audit a KumoMTA policy tree: Lua, data files, invariants.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        default=".",
        type=Path,
        help="policy directory or entry file (default: current directory)",
    )
    parser.add_argument(
        "--kumomta-release",
        metavar="RELEASE",
        help="audit against this KumoMTA release's API (a tag, its date, or main; "
        "default: `kumomta_release` in the configuration, else the newest release)",
    )
    parser.add_argument(
        "--kind",
        choices=("shaping", "queues", "sources", "listener_domains", "dkim"),
        default=None,
        help="which helper reads the data file given as PATH (default: told from its name, "
        "else from its content)",
    )
    add_output_options(parser, FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from auditor.config.settings import load_config
    from auditor.filter.codes import check_config_codes
    from auditor.kumo.paths import PathMap
    from auditor.pipeline.cache import parse_cache_for
    from auditor.pipeline.stages import check_tree, resolve_target
    from auditor.render import render
    from auditor.render.base import RenderInput
    from auditor.source.snapshot import FsSnapshot

    root, entry = resolve_target(args.path)
    config, config_path = load_config(root, args.config)
    check_config_codes(config, str(config_path or "configuration"))
    config = with_cli_overrides(config, args)
    overrides = dict(PathMap.parse_option(o) for o in args.path_map)
    snapshot = FsSnapshot(root, size_limit=config.size_limit, walk=entry is None)
    cached = parse_cache_for(root, deferred=True)  # written after the output: users wait less
    result = check_tree(
        snapshot,
        config,
        entry=entry,
        path_map_overrides=overrides,
        cached=cached,
        use_suppressions=not args.no_suppressions,
        kind=args.kind,
    )
    plan = output_plan(args.output_order)
    tool = {"entry": result.entry, "config": str(config_path) if config_path else None}
    if config.kumomta_release or any(fmt != "text" for fmt, _ in plan):
        tool["kumomta_release"] = audited_release(config)  # text never shows it: no version table
    data = RenderInput(
        root=str(args.path),
        findings=result.findings,
        summary=result.summary(),
        suppressions=result.suppressions,
        extra={"tool": {**tool, "mode": result.mode}},
    )
    rendered = {fmt: render(fmt, data, color=use_color(target)) for fmt, target in plan}
    write_outputs(plan, rendered)
    with contextlib.suppress(OSError):
        sys.stdout.flush()  # the user has the answer before the cache is written
    cached.flush()
    return exit_code(result.findings, args.fail_on or config.fail_on)


def with_cli_overrides(config, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Command-line --select replaces the configured selection; --ignore adds to it."""
    update: dict[str, object] = {}
    select = split_codes(args.select, "--select")
    ignore = split_codes(args.ignore, "--ignore")
    if select:
        update["select"] = select
    if ignore:
        update["ignore"] = [*config.ignore, *ignore]
    release = getattr(args, "kumomta_release", None)
    if release:
        update["kumomta_release"] = release
    return config.replace(**update) if update else config


def audited_release(config) -> str:  # type: ignore[no-untyped-def]
    """The release tag a configuration audits against (an unknown name raises ConfigError)."""
    from auditor.kumo.versions import load_versions

    table = load_versions()
    return table.resolve(config.kumomta_release) if config.kumomta_release else table.newest
