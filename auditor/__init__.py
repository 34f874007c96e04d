"""kumo-audit: static auditor, change gate and Git-backed runbook for KumoMTA policies."""

__version__ = "0.1.0"
