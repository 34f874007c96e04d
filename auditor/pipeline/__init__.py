"""Audit one snapshot of a policy (load -> data files -> rules -> filter) and cache what it derives.

Public API: `from auditor.pipeline import audit, AuditOptions`.
"""

from auditor.pipeline.api import AuditOptions, audit, resolve_config

__all__ = ["AuditOptions", "audit", "resolve_config"]
