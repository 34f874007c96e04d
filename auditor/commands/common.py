"""Options shared by the commands that audit a policy and print findings."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from auditor.core.atomic import write_atomic
from auditor.core.findings import Finding, Severity, at_or_above


class InOrder(argparse.Action):
    """`append`, and also remember the order of --format and --output on the command line (an
    --output belongs to the --format before it)."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), values])
        order = getattr(namespace, "output_order", None) or []
        namespace.output_order = [*order, (self.dest, values)]


def add_format_options(parser: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    """`--format` (repeatable), each followed by its own optional `--output`."""
    parser.set_defaults(output_order=[])
    parser.add_argument(
        "--format",
        dest="formats",
        action=InOrder,
        choices=formats,
        metavar="FORMAT",
        help=f"output format: {', '.join(formats)} (default text); may repeat, each "
        "followed by its own --output",
    )
    parser.add_argument(
        "--output",
        dest="outputs",
        action=InOrder,
        type=Path,
        metavar="FILE",
        help="write the preceding --format to FILE instead of standard output",
    )


def add_record_options(parser: argparse.ArgumentParser, help_record: str) -> None:
    """`--record` and where the runbook entry goes."""
    parser.add_argument("--record", action="store_true", help=help_record)
    parser.add_argument("--runbook-branch", default="kumo-runbook", metavar="BRANCH")
    parser.add_argument(
        "--runbook-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the runbook in a plain directory instead of a branch",
    )
    parser.add_argument(
        "--environment", default=None, help="environment label for the runbook entry"
    )


def add_output_options(parser: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    """Formats and outputs, plus the options that select and filter findings."""
    add_format_options(parser, formats)
    parser.add_argument(
        "--fail-on",
        choices=("error", "warning", "info"),
        default=None,
        help="lowest severity that makes the exit code 1 (default: error)",
    )
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="CODES",
        help="only these codes or prefixes (comma-separated, e.g. S,R101)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="CODES",
        help="drop these codes or prefixes (comma-separated)",
    )
    parser.add_argument(
        "--no-suppressions",
        action="store_true",
        help="report everything, ignoring inline suppressions and waivers",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="configuration file to use")
    parser.add_argument(
        "--path-map",
        action="append",
        default=[],
        metavar="PREFIX=DIR",
        help="map an absolute deployment path prefix to a directory of the tree",
    )


def split_codes(values: list[str], flag: str | None = None) -> list[str]:
    """Codes of a repeated comma-separated option; with `flag`, each must name a rule or prefix."""
    codes = [c.strip().upper() for v in values for c in v.split(",") if c.strip()]
    if flag and codes:
        from auditor.filter.codes import check_codes

        check_codes([("", c, True) for c in codes], flag)
    return codes


def load_explicit_config(path: Path | None):  # type: ignore[no-untyped-def]
    """`--config FILE`, its rule codes checked; None when not given."""
    if path is None:
        return None
    from auditor.config.settings import load_explicit
    from auditor.filter.codes import check_config_codes

    config = load_explicit(path)
    check_config_codes(config, str(path))
    return config


def output_plan(order: list[tuple[str, object]]) -> list[tuple[str, Path | None]]:
    """Pair each --format with the --output that follows it (before the next --format), from the
    options in command-line order (`args.output_order`)."""
    plan: list[tuple[str, Path | None]] = []
    current: str | None = None
    for kind, value in order:
        if kind == "formats":
            if current is not None:
                plan.append((current, None))
            current = str(value)
        else:
            plan.append((current or "text", Path(str(value))))
            current = None
    if current is not None:
        plan.append((current, None))
    return plan or [("text", None)]


def write_outputs(plan: list[tuple[str, Path | None]], rendered: dict[str, str]) -> None:
    for fmt, target in plan:
        text = rendered[fmt]
        if target is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            write_atomic(target, text)


def use_color(target: Path | None) -> bool:
    if target is not None or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def exit_code(findings: list[Finding], fail_on: str) -> int:
    return 1 if at_or_above(findings, Severity.parse(fail_on)) else 0
