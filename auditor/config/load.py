"""The configuration of an audited state, read from that state's own snapshot.

The state being audited owns its configuration: `diff --staged` and the pre-commit hook read
`kumo-audit.toml` (or `[tool.kumo-audit]` in `pyproject.toml`) from the index, `ci` and `diff` from
each revision, `check` from the directory. An untracked file in the working tree never relaxes the
gate of a commit.
"""

from __future__ import annotations

import tomllib
from typing import Any

from auditor.config.settings import CONFIG_FILE, DEFAULT, Config, parse_config
from auditor.core.errors import ConfigError
from auditor.source.snapshot import FileProblem, Snapshot

PYPROJECT = "pyproject.toml"


def find_in_snapshot(snapshot: Snapshot) -> tuple[str, dict[str, Any]] | None:
    """The configuration table of `snapshot` and the path it came from, or None."""
    if snapshot.exists(CONFIG_FILE) and not snapshot.is_dir(CONFIG_FILE):
        return CONFIG_FILE, _read_toml(snapshot, CONFIG_FILE)
    if snapshot.exists(PYPROJECT) and not snapshot.is_dir(PYPROJECT):
        table = _read_toml(snapshot, PYPROJECT).get("tool", {}).get("kumo-audit")
        if isinstance(table, dict):
            return PYPROJECT, table
    return None


def config_from_snapshot(snapshot: Snapshot) -> tuple[Config, str | None]:
    """The configuration of the audited state, and the snapshot path it came from (None: defaults)."""
    found = find_in_snapshot(snapshot)
    if found is None:
        return DEFAULT, None
    path, table = found
    return parse_config(table, f"{path} ({snapshot.label})"), path


def _read_toml(snapshot: Snapshot, path: str) -> dict[str, Any]:
    where = f"{path} ({snapshot.label})"
    try:
        text = snapshot.read(path).decode("utf-8")
    except FileProblem as problem:
        raise ConfigError(f"{where}: cannot read configuration: {problem.reason}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read configuration: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from None
