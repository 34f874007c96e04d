"""Audit a change between two snapshots: change set, reload impact, change rules (Cxxx).

Public API: `from auditor.change import audit_change` -> `ChangeResult` (and `audit_git_change` for
states named in a Git repository: the index, the working tree, a revision).
"""

from auditor.change.audit import ChangeResult, audit_change, audit_git_change

__all__ = ["ChangeResult", "audit_change", "audit_git_change"]
