"""What a rule reads: the rule context the pipeline builds for one audited state."""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Any

from auditor.core.record import dataclass

if TYPE_CHECKING:
    from auditor.config.settings import Config
    from auditor.kumo.api import KumoApi
    from auditor.kumo.model import PolicyModel
    from auditor.source.snapshot import Snapshot


@dataclass
class AuditContext:
    """Everything a rule may read."""

    model: PolicyModel
    api: KumoApi
    config: Config
    snapshot: Snapshot
    texts: dict[str, str]
    data: dict[str, Any] = field(
        default_factory=dict
    )  # tree path -> auditor.data.validate.DataResult
