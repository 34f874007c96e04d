"""Entry point: argument parsing, command dispatch, and the exit-code contract (0, 1, 2)."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from auditor import __version__

# Command modules, imported only to register their parsers (each keeps heavy imports inside `run`).
COMMANDS = (
    "auditor.commands.check",
    "auditor.commands.rules",
    "auditor.commands.diff",
    "auditor.commands.ci",
    "auditor.commands.hook",
    "auditor.commands.install_hooks",
    "auditor.commands.shaping",
    "auditor.commands.config_cmd",
    "auditor.commands.schema",
    "auditor.runbook.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kumo-audit",
        description="Audit KumoMTA policies, gate their changes, and keep a Git-backed runbook.",
    )
    parser.add_argument("--version", action="version", version=f"kumo-audit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = import_module(name)
        except ImportError:
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the command line
    argv = [a for a in argv if a != "--debug"]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors are exit 2, --help/--version exit 0
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    from auditor.errors import AuditError

    try:
        return int(args.func(args))
    except AuditError as exc:
        print(f"kumo-audit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kumo-audit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the contract: one line, a traceback only with --debug
        if debug:
            raise
        print(
            f"kumo-audit: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return 2
