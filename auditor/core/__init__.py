"""Core types every layer shares: findings, errors, vocabularies (reload impacts, runbook decisions), atomic writes."""
