"""Audit one snapshot of a policy (load -> data files -> rules -> filter) and cache what it derives.

Public API: `from auditor.pipeline import audit, AuditOptions` (and `load`: the loading stages only).
"""

from auditor.pipeline.api import AuditOptions, audit, load, resolve_config

__all__ = ["AuditOptions", "audit", "load", "resolve_config"]
