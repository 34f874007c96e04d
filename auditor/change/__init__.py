"""Audit a change between two snapshots: change set, reload impact, change rules (Cxxx).

Public API: `from auditor.change import audit_change` -> `ChangeResult`.
"""

from auditor.change.audit import ChangeResult, audit_change

__all__ = ["ChangeResult", "audit_change"]
