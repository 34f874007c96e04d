"""`kumo-audit config --show [PATH]`: the effective configuration and where it came from."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

FORMATS = ("text", "json")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "config",
        help="show the effective kumo-audit configuration",
        description="Show the configuration kumo-audit uses for PATH (kumo-audit.toml, or "
        "[tool.kumo-audit] in pyproject.toml, over the built-in defaults) and where it came from.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        default=".",
        type=Path,
        help="policy directory or entry file (default: current directory)",
    )
    parser.add_argument(
        "--show",
        action="store_true",
        help="print the effective configuration (the default action)",
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format")
    parser.add_argument("--config", type=Path, metavar="FILE", help="configuration file to use")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from auditor.config.settings import find_config, load_config
    from auditor.pipeline.stages import resolve_target

    root, _entry = resolve_target(args.path)
    config, source = load_config(root, args.config)
    explicit: dict[str, Any] = {}
    if args.config is not None:
        explicit = tomllib.loads(args.config.read_text(encoding="utf-8"))
        if args.config.name == "pyproject.toml":
            explicit = explicit.get("tool", {}).get("kumo-audit", {})
    elif source is not None:
        found = find_config(root)
        explicit = found[1] if found else {}
    origin = str(source) if source else None
    from auditor.commands.check import audited_release
    from auditor.kumo.versions import load_versions

    releases = {"audited": audited_release(config), "newest": load_versions().newest}
    if args.format == "json":
        doc = {"source": origin, "config": config.as_dict(), "kumomta_release": releases}
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_toml(config, origin, explicit))
        sys.stdout.write(
            f"\n# KumoMTA release audited: {releases['audited']} "
            f"(newest in the API table: {releases['newest']})\n"
        )
    return 0


# ---------------------------------------------------------------------------------------------
# TOML-like rendering (valid TOML: `tomllib` reads it back to the same configuration)

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if _BARE.fullmatch(name) else json.dumps(name)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items() if v is not None)
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot render {type(value).__name__}")


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table_lines(data: dict[str, Any], explicit: dict[str, Any] | None) -> list[str]:
    """`key = value` lines; keys not in `explicit` are marked as defaults (None: no marks)."""
    lines = []
    for name, value in data.items():
        default = explicit is not None and name not in explicit
        if value is None:
            lines.append(f"# {_key(name)} is not set")
        else:
            lines.append(f"{_key(name)} = {_scalar(value)}{'  # default' if default else ''}")
    return lines


def render_toml(config: Any, source: str | None, explicit: dict[str, Any] | None = None) -> str:
    """The configuration as TOML (tomllib reads it back to the same configuration), with comments
    saying where it came from and which values are defaults."""
    out = [
        f"# kumo-audit configuration from {source}"
        if source
        else "# kumo-audit configuration: built-in defaults (no kumo-audit.toml or "
        "[tool.kumo-audit] in pyproject.toml)",
        "",
    ]
    marks = explicit if source else None
    data = dataclasses.asdict(config)
    tables = {k: v for k, v in data.items() if isinstance(v, dict) or _is_table_list(v)}
    out.extend(_table_lines({k: v for k, v in data.items() if k not in tables}, marks))
    for name, value in tables.items():
        out.append("")
        if isinstance(value, dict):
            default = marks is not None and name not in marks
            out.append(f"[{_key(name)}]{'  # default' if default else ''}")
            inner = marks.get(name) if marks is not None else None
            sub_marks = inner if isinstance(inner, dict) else ({} if marks is not None else None)
            if name in ("severity", "path_map"):
                sub_marks = None  # user keys: everything listed was set
            out.extend(_table_lines(value, sub_marks))
            continue
        for index, item in enumerate(value):
            if index:
                out.append("")
            out.append(f"[[{_key(name)}]]")
            out.extend(f"{_key(k)} = {_scalar(v)}" for k, v in item.items() if v is not None)
    return "\n".join(out) + "\n"
