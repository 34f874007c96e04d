"""The daemon's configuration file (TOML), validated by pydantic: unknown keys are errors with a suggestion."""

from __future__ import annotations

import difflib
import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auditor.core.errors import ConfigError

DEFAULT_BUMP_URL = "http://127.0.0.1:8000/api/admin/bump-config-epoch"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Section):
    kind: Literal["pull", "checkout", "watch"] = Field(
        description="pull: fetch a remote branch; checkout: a local clone; watch: the live tree itself"
    )
    url: str | None = Field(None, description="pull: the policy repository to fetch")
    branch: str = Field("main", description="pull: the branch to follow")
    repo: Path | None = Field(None, description="checkout: the local Git checkout")
    path: str = Field("", description="the policy directory inside the repository ('' = its root)")
    interval: float = Field(30.0, gt=0, description="pull: seconds between fetches")
    promote_dirty: bool = Field(
        False, description="checkout: promote uncommitted edits (always audited and recorded)"
    )

    @model_validator(mode="after")
    def _needs(self) -> SourceConfig:
        if self.kind == "pull" and not self.url:
            raise ValueError("a pull source needs 'url'")
        if self.kind == "checkout" and self.repo is None:
            raise ValueError("a checkout source needs 'repo'")
        if self.path.startswith("/") or ".." in self.path.split("/"):
            raise ValueError("'path' must be relative and stay inside the repository")
        return self


class KumodConfig(_Section):
    binary: Path | None = Field(
        None, description="kumod binary: run `kumod --validate` on candidates"
    )
    validate_args: list[str] = Field(
        default_factory=lambda: ["--policy", "{policy}", "--validate"],
        description="arguments of the validation run; {policy} is the candidate's entry file",
    )
    validate_timeout: float = Field(60.0, gt=0)
    validate_isolation: Literal["auto", "namespace", "none"] = Field(
        "auto",
        description="run kumod --validate in a private mount namespace where the live path shows "
        "the candidate (auto: when `unshare` allows it; namespace: required; none: never)",
    )
    namespace_args: list[str] = Field(
        default_factory=lambda: ["--user", "root"],
        description="added to validate_args inside the namespace, where kumod runs as the "
        "namespace's root (mapped to the daemon's own user) and needs --user",
    )
    bump_url: str = Field(DEFAULT_BUMP_URL, description="kumod's bump-config-epoch endpoint")
    allow_remote_bump: bool = Field(False, description="allow a bump_url that is not loopback")
    bump_timeout: float = Field(5.0, gt=0)
    bump_attempts: int = Field(4, ge=1, le=20)
    bump_backoff: float = Field(0.5, ge=0, description="seconds before the first retry; doubles")
    restart_command: str = Field(
        "systemctl restart kumomta",
        description="what restart-required entries tell operators to run",
    )

    @model_validator(mode="after")
    def _loopback(self) -> KumodConfig:
        parts = urlsplit(self.bump_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"bump_url {self.bump_url!r} is not an http(s) URL")
        if not self.allow_remote_bump and not is_loopback(parts.hostname):
            raise ValueError(
                f"bump_url host {parts.hostname!r} is not loopback (set allow_remote_bump = true)"
            )
        return self


class RunbookConfig(_Section):
    branch: str = "kumo-runbook"
    dir: Path | None = Field(None, description="keep entries in a plain directory instead")
    repo: Path | None = Field(
        None, description="repository holding the runbook branch (default: the source repository)"
    )
    remote: str | None = Field(None, description="push entries to this remote (name or URL)")
    push_attempts: int = Field(5, ge=1, le=50)
    environment: str | None = None


class MetricsConfig(_Section):
    listen: str = Field("127.0.0.1:9477", description="host:port for Prometheus; '' disables")
    allow_remote: bool = False

    @field_validator("listen")
    @classmethod
    def _addr(cls, value: str) -> str:
        if value and split_hostport(value) is None:
            raise ValueError(f"{value!r} is not host:port")
        return value

    @model_validator(mode="after")
    def _loopback(self) -> MetricsConfig:
        hp = split_hostport(self.listen) if self.listen else None
        if hp and not self.allow_remote and not is_loopback(hp[0]):
            raise ValueError(f"metrics listen {self.listen!r} is not loopback (set allow_remote)")
        return self


class DaemonConfig(_Section):
    live: Path = Field(description="the path kumod reads, e.g. /opt/kumomta/etc/policy")
    state_dir: Path = Field(description="releases, state and the lock live here")
    host: str | None = Field(None, description="host name in runbook entries (default: hostname)")
    source: SourceConfig
    on_restart: Literal["promote", "hold"] = "hold"
    drift: Literal["warn", "block", "heal"] = "warn"
    fail_on: Literal["error", "warning", "info"] = "error"
    keep_releases: int = Field(5, ge=1)
    debounce_ms: int = Field(200, ge=0)
    rescan_interval: float = Field(
        5.0, gt=0, description="seconds between full content-hash rescans"
    )
    entry: str | None = Field(None, description="entry file (default: found as everywhere)")
    kumod: KumodConfig = Field(default_factory=KumodConfig)
    runbook: RunbookConfig = Field(default_factory=RunbookConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)

    @model_validator(mode="after")
    def _paths(self) -> DaemonConfig:
        if not self.live.is_absolute() or not self.state_dir.is_absolute():
            raise ValueError("'live' and 'state_dir' must be absolute paths")
        live, state = _norm(self.live), _norm(self.state_dir)
        if state == live or live in state.parents or state in live.parents:
            raise ValueError("'state_dir' must be outside the live tree and not contain it")
        return self

    @property
    def releases(self) -> Path:
        return self.state_dir / "releases"


def _norm(path: Path) -> Path:
    return Path(*[p for p in path.parts])


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_hostport(value: str) -> tuple[str, int] | None:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def parse(table: dict[str, Any], source: str) -> DaemonConfig:
    try:
        return DaemonConfig.model_validate(table)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc)}") from None


def load(path: Path) -> DaemonConfig:
    from auditor.core.small_file import SmallFileError, read_small_file

    try:
        table = tomllib.loads(read_small_file(path, 1 << 20).decode("utf-8"))
    except SmallFileError as exc:
        raise ConfigError(f"daemon configuration: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse(table, str(path))


def describe(exc: ValidationError) -> str:
    """The first problem in one line; an unknown key gets the closest known key as a suggestion."""
    err = exc.errors()[0]
    loc = tuple(str(p) for p in err["loc"])
    where = ".".join(loc) or "configuration"
    if err["type"] == "extra_forbidden":
        model: type[BaseModel] | None = DaemonConfig
        for part in loc[:-1]:
            field = model.model_fields.get(part) if model else None
            annotation = field.annotation if field else None
            model = (
                annotation
                if isinstance(annotation, type) and issubclass(annotation, BaseModel)
                else None
            )
        names = list(model.model_fields) if model else []
        close = difflib.get_close_matches(loc[-1], names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key '{where}'{hint}"
    if err["type"] == "missing":
        return f"missing key '{where}'"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if loc else message
