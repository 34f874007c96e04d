"""The rule catalog: importing this package registers every rule family exactly once."""

from auditor.rules import load, suppression  # noqa: F401
