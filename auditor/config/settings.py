"""kumo-audit configuration: `kumo-audit.toml` in the audited root, or `[tool.kumo-audit]` in pyproject.toml.

The configuration is made of plain frozen dataclasses, so a run without a configuration file never
imports pydantic (it costs a fifth of a second, more than the pre-commit hook's whole budget); pydantic
validates a file through a TypeAdapter only when there is one, and produces the JSON Schema.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from auditor.core.errors import ConfigError
from auditor.core.record import dataclass
from auditor.source.snapshot import DEFAULT_SIZE_LIMIT

if TYPE_CHECKING:
    from annotated_types import Ge, Gt, Le, MinLen

CONFIG_FILE = "kumo-audit.toml"

_PYDANTIC = {"extra": "forbid", "use_attribute_docstrings": True}

SeverityName = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Thresholds:
    """Numbers that rules compare against."""

    __pydantic_config__ = _PYDANTIC

    relay_ipv4_min_prefix: Annotated[int, Ge(0), Le(32)] = 16
    """S101/S103: the widest IPv4 network (prefix length) allowed to relay."""
    relay_ipv6_min_prefix: Annotated[int, Ge(0), Le(128)] = 48
    """S101/S103: the widest IPv6 network (prefix length) allowed to relay."""
    min_max_age: str = "1 day"
    """D103: the smallest acceptable queue max_age."""
    rate_jump_factor: Annotated[float, Gt(1.0)] = 2.0
    """C104: a rate or limit raised by more than this factor is reported."""


@dataclass(frozen=True)
class Bound:
    """D104: an organisation bound for one shaping key, for matching domains or providers."""

    __pydantic_config__ = _PYDANTIC

    key: str
    """The shaping key, e.g. connection_limit or max_message_rate."""
    domain: str | None = None
    """Domain (or glob, e.g. *.example.com) the bound applies to."""
    provider: str | None = None
    """Provider name (a [provider."NAME"] section) the bound applies to."""
    min: float | str | None = None
    """Smallest allowed value (number, or a rate/duration string)."""
    max: float | str | None = None
    """Largest allowed value (number, or a rate/duration string)."""
    reason: str = ""
    """Why the bound exists (shown in findings)."""


@dataclass(frozen=True)
class Waiver:
    """A reviewed exception for a data-file finding (data files cannot all carry comments)."""

    __pydantic_config__ = _PYDANTIC

    path: str
    """Data file (glob) the waiver applies to, relative to the audited root."""
    code: str
    """Rule code (or prefix) waived."""
    reason: Annotated[str, MinLen(1)]
    """Why the exception is acceptable."""
    key: str | None = None
    """Part of the finding's key (e.g. a domain) the waiver is limited to."""
    ticket: str | None = None
    """Change or review ticket."""
    expires: date | None = None
    """After this date the waiver no longer applies."""


@dataclass(frozen=True)
class PathIgnore:
    """Codes ignored for files matching a glob."""

    __pydantic_config__ = _PYDANTIC

    path: str
    """Glob of files, relative to the audited root."""
    codes: list[str]
    """Codes or prefixes ignored there."""


@dataclass(frozen=True)
class RunbookOptions:
    """How `ci --record` and the daemon keep the runbook."""

    __pydantic_config__ = _PYDANTIC

    checkpoint_every: Annotated[int, Ge(0)] = 0
    """Write a signed checkpoint once this many entries were added since the last one (0: never)."""
    checkpoint_daily: bool = False
    """Write a signed checkpoint with the first recording of each UTC day."""


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    __pydantic_config__ = _PYDANTIC

    entry: str | None = None
    """The policy entry file, relative to the audited root."""
    kumomta_release: str | None = None
    """The KumoMTA release the policy runs on (a release tag such as 2025.03.19-1d3f1f67, its date,
    or "main"): rules read that release's API. Unset: the newest release of the API table."""
    kumod_binary: str | None = None
    """A kumod binary whose `--version` names the running release (default for `upgrade --from`)."""
    select: list[str] = field(default_factory=list)
    """Only these codes or prefixes (empty: all)."""
    ignore: list[str] = field(default_factory=list)
    """Codes or prefixes never reported."""
    severity: dict[str, SeverityName] = field(default_factory=dict)
    """Per-rule severity overrides."""
    per_path_ignores: list[PathIgnore] = field(default_factory=list)
    """Codes ignored for some files."""
    path_map: dict[str, str] = field(default_factory=dict)
    """Absolute deployment path prefixes mapped to directories of the tree."""
    size_limit: Annotated[int, Gt(0)] = DEFAULT_SIZE_LIMIT
    """Files larger than this many bytes are reported (E102), not parsed."""
    fail_on: SeverityName = "error"
    """Lowest severity that makes the exit code 1."""
    ticket_pattern: str = r"\b[A-Z][A-Z0-9]+-\d+\b"
    """Regular expression for ticket ids in commit messages."""
    thresholds: Thresholds = field(default_factory=Thresholds)
    """Numbers that rules compare against."""
    bounds: list[Bound] = field(default_factory=list)
    """Organisation bounds for shaping values (D104)."""
    waiver: list[Waiver] = field(default_factory=list)
    """Reviewed exceptions for data-file findings."""
    runbook: RunbookOptions = field(default_factory=RunbookOptions)
    """Runbook checkpoints written by `ci --record` and the daemon."""

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


DEFAULT = Config()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def _adapter():  # type: ignore[no-untyped-def]
    # The constraint markers are only needed when pydantic reads the (string) annotations, so they
    # are imported here rather than on every run.
    from annotated_types import Ge, Gt, Le, MinLen
    from pydantic import TypeAdapter

    globals().update(Ge=Ge, Gt=Gt, Le=Le, MinLen=MinLen)
    return TypeAdapter(Config)


def config_schema() -> dict[str, Any]:
    """JSON Schema of the configuration file."""
    return _adapter().json_schema()


def find_config(root: Path) -> tuple[Path, dict[str, Any]] | None:
    """The configuration table for `root`, from kumo-audit.toml or pyproject.toml's [tool.kumo-audit]."""
    own = root / CONFIG_FILE
    if own.is_file():
        return own, _read_toml(own)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("kumo-audit")
        if isinstance(table, dict):
            return pyproject, table
    return None


# A configuration is a few hundred bytes; anything this big is a mistake (or /dev/zero).
CONFIG_SIZE_LIMIT = 1 << 20


def _read_toml(path: Path) -> dict[str, Any]:
    from auditor.core.small_file import SmallFileError, read_small_file

    try:
        return tomllib.loads(read_small_file(path, CONFIG_SIZE_LIMIT).decode("utf-8"))
    except SmallFileError as exc:
        raise ConfigError(f"cannot read configuration: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def parse_config(table: dict[str, Any], source: str) -> Config:
    from pydantic import ValidationError

    try:
        config = _adapter().validate_python(table)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None
    return config.replace(
        select=[c.strip().upper() for c in config.select],
        ignore=[c.strip().upper() for c in config.ignore],
        severity={k.upper(): v for k, v in config.severity.items()},
    )


def load_explicit(explicit: Path) -> Config:
    """The configuration file named on the command line (`--config FILE`); missing, a device, a pipe
    or a directory is a one-line error (see `read_small_file`)."""
    table = _read_toml(explicit)
    if explicit.name == "pyproject.toml":
        table = table.get("tool", {}).get("kumo-audit", {})
    return parse_config(table, str(explicit))


def load_config(root: Path, explicit: Path | None = None) -> tuple[Config, Path | None]:
    if explicit is not None:
        return load_explicit(explicit), explicit
    found = find_config(root)
    if found is None:
        return DEFAULT, None
    path, table = found
    return parse_config(table, str(path)), path


def _describe(exc: Any) -> str:
    """First problem, one line, with a suggestion for unknown keys."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc)
    if err["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        parent = _class_at(loc[:-1])
        name = str(loc[-1])
        names = [f.name for f in dataclasses.fields(parent)] if parent else []
        import difflib

        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key '{where}'{hint}"
    return f"{where}: {err['msg']}"


def _class_at(loc: tuple[Any, ...]) -> type | None:
    import typing

    cls: type = Config
    for part in loc:
        if isinstance(part, int):
            continue
        hints = typing.get_type_hints(cls)
        annotation = hints.get(str(part))
        if annotation is None:
            return None
        candidates = [
            a for a in (annotation, *typing.get_args(annotation)) if dataclasses.is_dataclass(a)
        ]
        if not candidates:
            return None
        cls = candidates[0]  # type: ignore[assignment]
    return cls
