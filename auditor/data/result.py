"""The outcome of validating one data file, in a module of its own: cached results unpickle without
importing the validator (and pydantic)."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from auditor.core.findings import Finding
from auditor.core.record import dataclass
from auditor.data.locate import Located


@dataclass
class DataResult:
    """The outcome of validating one data file."""

    value: Any | None
    located: Located | None
    findings: list[Finding] = field(default_factory=list)
