"""`kumo-audit schema --write [DIR] | --check [DIR]`: regenerate or verify the published JSON Schemas."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "schemas"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "schema",
        help="write or check the JSON Schemas (check output, configuration, data files, runbook)",
        description="Regenerate the JSON Schemas from the models (--write), or exit 1 when the "
        "files in DIR are stale (--check). Without either, list the schema names.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="(re)write the schema files in DIR")
    mode.add_argument("--check", action="store_true", help="exit 1 if any file in DIR is stale")
    parser.add_argument(
        "dir",
        nargs="?",
        type=Path,
        default=None,
        metavar="DIR",
        help="schema directory (default: the project's schemas/)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from auditor.commands.schema_files import GENERATORS, stale, write
    from auditor.core.errors import UsageError

    directory: Path = args.dir or DEFAULT_DIR
    if args.write:
        changed = write(directory)
        for name in changed:
            print(f"wrote {directory / name}")
        if not changed:
            print(f"schemas in {directory} are up to date")
        return 0
    if args.check:
        if not directory.is_dir():
            raise UsageError(f"{directory} is not a directory")
        outdated = stale(directory)
        for name in outdated:
            print(f"stale: {directory / name}", file=sys.stderr)
        if outdated:
            print("run `kumo-audit schema --write` to regenerate them", file=sys.stderr)
            return 1
        print(f"schemas in {directory} are up to date")
        return 0
    for name in sorted(GENERATORS):
        print(name)
    return 0
