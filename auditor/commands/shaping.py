"""`kumo-audit shaping DOMAIN [--source NAME] [PATH]`: the merged egress-path settings for a destination."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

FORMATS = ("text", "json")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "shaping",
        help="show the merged shaping settings for a destination domain, with their origins",
        description="Show the egress-path settings KumoMTA's shaping helper would use for DOMAIN "
        '(bundled defaults, ["default"], providers, the domain, a source override), each with '
        "the file and line it comes from.",
    )
    parser.add_argument("domain", metavar="DOMAIN", help="destination domain, e.g. gmail.com")
    parser.add_argument(
        "path",
        nargs="?",
        default=".",
        type=Path,
        help="policy directory or entry file (default: current directory)",
    )
    parser.add_argument(
        "--source", metavar="NAME", help="egress source name (sources.<NAME> overrides)"
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format")
    parser.add_argument("--config", type=Path, metavar="FILE", help="configuration file to use")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from auditor.config.settings import load_explicit
    from auditor.core.errors import UsageError
    from auditor.core.secrets import Redactor, repository_salt
    from auditor.data.effective_shaping import explain_shaping
    from auditor.pipeline import AuditOptions, load
    from auditor.pipeline.stages import resolve_target
    from auditor.source.snapshot import FsSnapshot

    if not args.domain.strip():
        raise UsageError("DOMAIN must not be empty")
    root, entry = resolve_target(args.path)
    options = AuditOptions(config=load_explicit(args.config) if args.config else None, entry=entry)
    context, _findings = load(FsSnapshot(root), options)  # findings are `check`'s business
    report = explain_shaping(context, args.domain, args.source)
    redactor = Redactor(lambda: repository_salt(root))
    report.settings = [s._replace(value=redactor.value(s.value, s.key)) for s in report.settings]
    if args.format == "json":
        text = json.dumps(report.as_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    else:
        text = render_text(report)
    sys.stdout.write(text)
    return 0


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def render_text(report: Any) -> str:
    source = f" from source {report.source}" if report.source else ""
    lines = [f"Effective shaping for {report.domain}{source}"]
    if report.settings:
        width = max(
            (
                len(f"{s.key} = {_value(s.value)}")
                for s in report.settings
                if not s.key.startswith("automation[")
            ),
            default=0,
        )
        width = min(width, 60)
        for setting in report.settings:
            left = f"{setting.key} = {_value(setting.value)}"
            lines.append(f"  {left.ljust(width)}  # {setting.origin}")
    else:
        lines.append("  (no shaping settings)")
    if report.files:
        lines.append("")
        lines.append("Shaping files, in load order:")
        lines.extend(f"  {name}" for name in report.files)
    if report.notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"  - {note}" for note in report.notes)
    return "\n".join(lines) + "\n"
