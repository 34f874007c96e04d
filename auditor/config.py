"""kumo-audit configuration: `kumo-audit.toml` in the audited root, or `[tool.kumo-audit]` in pyproject.toml."""

from __future__ import annotations

import difflib
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auditor.errors import ConfigError
from auditor.snapshot import DEFAULT_SIZE_LIMIT

CONFIG_FILE = "kumo-audit.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    """Numbers that rules compare against."""

    relay_ipv4_min_prefix: int = Field(
        16,
        ge=0,
        le=32,
        description="S101/S103: widest IPv4 network allowed to relay (prefix length)",
    )
    relay_ipv6_min_prefix: int = Field(
        48,
        ge=0,
        le=128,
        description="S101/S103: widest IPv6 network allowed to relay (prefix length)",
    )
    min_max_age: str = Field("1 day", description="D103: smallest acceptable queue max_age")
    rate_jump_factor: float = Field(
        2.0, gt=1.0, description="C104: a rate or limit raised by more is flagged"
    )


class Bound(_Strict):
    """D104: an organisation bound for one shaping key, for matching domains or providers."""

    key: str
    domain: str | None = None
    provider: str | None = None
    min: float | str | None = None
    max: float | str | None = None
    reason: str = ""


class Waiver(_Strict):
    """A reviewed exception for a data-file finding (data files cannot carry inline comments in JSON)."""

    path: str
    code: str
    key: str | None = None
    reason: str = Field(min_length=1)
    ticket: str | None = None
    expires: date | None = None


class PathIgnore(_Strict):
    path: str
    codes: list[str]


class Config(_Strict):
    entry: str | None = Field(
        None, description="the policy entry file, relative to the audited root"
    )
    select: list[str] = Field(default_factory=list)
    ignore: list[str] = Field(default_factory=list)
    severity: dict[str, Literal["error", "warning", "info"]] = Field(default_factory=dict)
    per_path_ignores: list[PathIgnore] = Field(default_factory=list)
    path_map: dict[str, str] = Field(default_factory=dict)
    size_limit: int = Field(DEFAULT_SIZE_LIMIT, gt=0)
    fail_on: Literal["error", "warning", "info"] = "error"
    ticket_pattern: str = Field(
        r"\b[A-Z][A-Z0-9]+-\d+\b", description="ticket ids in commit messages"
    )
    thresholds: Thresholds = Field(default_factory=Thresholds)
    bounds: list[Bound] = Field(default_factory=list)
    waiver: list[Waiver] = Field(default_factory=list)

    @field_validator("select", "ignore")
    @classmethod
    def _codes_upper(cls, value: list[str]) -> list[str]:
        return [v.strip().upper() for v in value]

    @field_validator("severity")
    @classmethod
    def _severity_codes(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.upper(): v for k, v in value.items()}


DEFAULT = Config()


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


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def parse_config(table: dict[str, Any], source: str) -> Config:
    try:
        return Config.model_validate(table)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None


def load_config(root: Path, explicit: Path | None = None) -> tuple[Config, Path | None]:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"configuration file {explicit} does not exist")
        table = _read_toml(explicit)
        if explicit.name == "pyproject.toml":
            table = table.get("tool", {}).get("kumo-audit", {})
        return parse_config(table, str(explicit)), explicit
    found = find_config(root)
    if found is None:
        return DEFAULT, None
    path, table = found
    return parse_config(table, str(path)), path


def _describe(exc: ValidationError) -> str:
    """First problem, one line, with a suggestion for unknown keys."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        parent = _model_at(err["loc"][:-1])
        name = str(err["loc"][-1])
        close = difflib.get_close_matches(name, list(parent.model_fields), n=1) if parent else []
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key '{where}'{hint}"
    return f"{where}: {err['msg']}"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        candidates = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return None
        model = candidates[0]
    return model
