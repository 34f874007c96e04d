"""The published JSON Schemas (`schemas/*.json`): check output, configuration, helper data, runbook entry.

Every schema is generated from a model: the check output from the pydantic models below (the JSON
contract of DESIGN.md, written by auditor.render.json_format), the configuration from
`auditor.config.settings.Config`, each helper data format from `auditor.data.schemas`, and the runbook entry
from `auditor.runbook.model.Entry`. Output is deterministic: sorted keys, two-space indent, a
trailing newline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.core.decisions import IMPACTS

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = "https://kumo-audit.invalid/schemas/"


# ---------------------------------------------------------------------------------------------
# check output (schema_version 1)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """Objects other commands extend (diff and ci add change details): known keys are typed."""

    model_config = ConfigDict(extra="allow")


SeverityName = Literal["error", "warning", "info"]
ImpactName = Literal[IMPACTS]  # type: ignore[valid-type]


class SuppressionOut(_Closed):
    """Why a finding is not counted."""

    kind: Literal["inline", "file", "waiver", "baseline"]
    reason: str
    path: str
    line: int = Field(ge=0)
    ticket: str | None
    expires: str | None


class FindingOut(_Closed):
    """One finding; `path` is relative to the audited root, lines and columns are 1-based."""

    code: str = Field(pattern=r"^[A-Z][0-9]{3}$")
    name: str
    severity: SeverityName
    message: str
    path: str
    line: int = Field(ge=1)
    column: int = Field(ge=1)
    end_line: int = Field(ge=1)
    end_column: int = Field(ge=1)
    fix: str
    fingerprint: str = Field(pattern=r"^[0-9a-f]{16}$")
    suppressed: bool
    suppression: SuppressionOut | None


class ToolOut(_Open):
    name: Literal["kumo-audit"]
    version: str
    entry: str | None = None
    config: str | None = None
    mode: str | None = Field(
        default=None,
        description="how the target was audited: policy, module (a module or snippet on its own) "
        "or data:<helper> (a data file on its own)",
    )


class BySeverity(_Closed):
    error: int = Field(ge=0)
    warning: int = Field(ge=0)
    info: int = Field(ge=0)


class SummaryOut(_Open):
    findings: int = Field(ge=0, description="unsuppressed findings")
    suppressed: int = Field(ge=0)
    by_severity: BySeverity
    files: int | None = Field(None, ge=0, description="files audited")


class ReloadElement(_Open):
    element: str
    path: str
    line: int = Field(ge=0)
    impact: ImpactName
    reason: str


class ReloadOut(_Open):
    """Reload impact of a change (diff, ci); null for a single-state check."""

    impact: ImpactName
    meaning: str
    elements: list[ReloadElement]


class ChangeOut(_Open):
    """What a change audit (`diff`, `ci`, the hooks) adds: the two states and what changed."""

    changed_files: list[str] = Field(default_factory=list)


class CheckOutput(_Closed):
    """The JSON report of `check`, `diff`, `ci` and the hooks."""

    schema_version: Literal[1]
    tool: ToolOut
    root: str
    findings: list[FindingOut]
    suppressions: list[SuppressionOut]
    reload: ReloadOut | None
    summary: SummaryOut
    introduced: list[FindingOut] | None = None
    """Change audits only: findings the change introduces (what `--fail-on` counts)."""
    resolved: list[FindingOut] | None = None
    """Change audits only: findings of the base state the change removes."""
    change: ChangeOut | None = None


# ---------------------------------------------------------------------------------------------
# the published files


def _wrap(name: str, title: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": DRAFT, "$id": SCHEMA_BASE + name, **schema, "title": title}


def _check_output() -> dict[str, Any]:
    return _wrap(
        "check-output.schema.json",
        "kumo-audit JSON report (schema_version 1)",
        CheckOutput.model_json_schema(),
    )


def _config() -> dict[str, Any]:
    from auditor.config.settings import config_schema

    return _wrap("config.schema.json", "kumo-audit configuration", config_schema())


def _data(fmt: str) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        from auditor.data.schemas import FORMATS

        model = FORMATS[fmt].model
        return _wrap(
            f"data-{fmt.replace('_', '-')}.schema.json",
            f"KumoMTA policy-extras {fmt} data file",
            model.model_json_schema(by_alias=True),
        )

    return build


def _runbook_entry() -> dict[str, Any]:
    from auditor.runbook.schema import entry_schema

    return entry_schema()


GENERATORS: dict[str, Callable[[], dict[str, Any]]] = {
    "check-output.schema.json": _check_output,
    "config.schema.json": _config,
    "data-shaping.schema.json": _data("shaping"),
    "data-queues.schema.json": _data("queues"),
    "data-sources.schema.json": _data("sources"),
    "data-listener-domains.schema.json": _data("listener_domains"),
    "data-dkim.schema.json": _data("dkim"),
    "runbook-entry.schema.json": _runbook_entry,
}


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """File name -> content of every published schema."""
    return {name: schema_text(build()) for name, build in sorted(GENERATORS.items())}


def stale(directory: Path) -> list[str]:
    """Names of schema files in `directory` that are missing or differ from what the models give."""
    out = []
    for name, text in generate().items():
        path = directory / name
        try:
            current = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = None
        if current != text:
            out.append(name)
    return out


def write(directory: Path) -> list[str]:
    """Write every schema into `directory` (atomically, each file); returns the names changed."""
    from auditor.core.atomic import write_atomic

    changed = stale(directory)
    for name, text in generate().items():
        if name in changed:
            write_atomic(directory / name, text)
    return changed
