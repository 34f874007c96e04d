"""Entry point: argument parsing, command dispatch, and the exit-code contract (0, 1, 2)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
from importlib import import_module
from typing import Any

from auditor import __version__

# Command name -> the module that registers it (each keeps heavy imports inside `run`).
COMMANDS = {
    "check": "auditor.commands.check",
    "rules": "auditor.commands.rules",
    "explain": "auditor.commands.rules",
    "diff": "auditor.commands.diff",
    "ci": "auditor.commands.ci",
    "hook": "auditor.commands.hook",
    "install-hooks": "auditor.commands.install_hooks",
    "shaping": "auditor.commands.shaping",
    "config": "auditor.commands.config_cmd",
    "schema": "auditor.commands.schema",
    "runbook": "auditor.commands.runbook",
    "daemon": "auditor.daemon.cli",
    "upgrade": "auditor.commands.upgrade",
}


@functools.cache
def _columns() -> int:
    """The terminal's width, as `shutil.get_terminal_size` tells it (COLUMNS, else the terminal of
    standard output, else 80)."""
    with contextlib.suppress(KeyError, ValueError):
        if (columns := int(os.environ["COLUMNS"])) > 0:
            return columns
    with contextlib.suppress(AttributeError, ValueError, OSError):
        if (columns := os.get_terminal_size(sys.__stdout__.fileno()).columns) > 0:
            return columns
    return 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, given the width: by default it imports `shutil` to ask (with bz2,
    lzma and zlib, about 1.5 ms of every run: argparse builds a formatter for each argument)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_columns() - 2)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser with `_HelpFormatter`; sub-parsers are made of the same class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `command`, only that command's module registers (argparse is slow to build
    every sub-parser, and the hook and check pay for each millisecond)."""
    parser = _Parser(
        prog="kumo-audit",
        description="Audit KumoMTA policies, gate their changes, and keep a Git-backed runbook.",
    )
    parser.add_argument("--version", action="version", version=f"kumo-audit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in wanted:
        import_module(name).register(sub)
    return parser


class _GuardedStdout:
    """Standard output whose write failures (a full disk, a closed descriptor) are one clear error."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _failed(self, exc: OSError) -> Exception:
        from auditor.core.errors import AuditError

        return AuditError(f"cannot write to standard output: {exc.strerror or exc}")

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._failed(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._failed(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _quiet_stdout() -> None:
    """After a failed write, nothing more is written (nor flushed again at exit)."""
    with contextlib.suppress(OSError):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until the process ends


def _short_lived_gc() -> None:
    """A command that runs once and exits keeps nearly everything it allocates until the end: the
    cyclic collector would rescan those objects again and again (unpickling a cache of parse facts
    spends about half its time there). Objects that exist now are never collected, and a full pass
    waits for many more allocations. A daemon keeps Python's defaults."""
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the command line
    argv = [a for a in argv if a != "--debug"]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    first = next((a for a in argv if not a.startswith("-")), None)
    if first != "daemon":
        _short_lived_gc()
    parser = build_parser(first)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors are exit 2, --help/--version exit 0
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    from auditor.core.errors import AuditError

    real_stdout = sys.stdout
    guarded = not isinstance(real_stdout, _GuardedStdout) and real_stdout is sys.__stdout__
    if guarded:
        sys.stdout = _GuardedStdout(real_stdout)
    try:
        status = int(args.func(args))
        sys.stdout.flush()
        return status
    except AuditError as exc:
        print(f"kumo-audit: error: {exc}", file=sys.stderr)
        if "standard output" in str(exc):
            _quiet_stdout()
        return 2
    except KeyboardInterrupt:
        print("kumo-audit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except Exception as exc:  # the contract: one line, a traceback only with --debug
        if debug:
            raise
        print(
            f"kumo-audit: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return 2
    finally:
        if guarded and isinstance(sys.stdout, _GuardedStdout):
            sys.stdout = real_stdout
