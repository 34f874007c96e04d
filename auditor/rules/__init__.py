"""The rule catalog: importing this package registers every rule family exactly once."""

from auditor.rules import api_use, load, suppression  # noqa: F401
