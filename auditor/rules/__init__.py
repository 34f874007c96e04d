"""The rule catalog: importing this package registers every rule family exactly once."""

from auditor.rules import (  # noqa: F401
    api_use,
    change,
    data,
    delivery,
    load,
    references,
    reload,
    security,
    suppression,
)
