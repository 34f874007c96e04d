"""Regular expressions compiled on first use.

Module-level patterns cost start-up time in every process that imports the module (a cached data-file
result imports its classes), although most runs never match them; the pre-commit hook's budget is a
quarter of a second.
"""

from __future__ import annotations

import re
from typing import Any


class LazyPattern:
    """Behaves like the compiled pattern; compiles it when first used."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._args = (pattern, flags)

    def __getattr__(self, name: str) -> Any:
        compiled = re.compile(*self._args)
        for attr in ("match", "fullmatch", "search", "finditer", "findall", "sub", "subn", "split"):
            setattr(self, attr, getattr(compiled, attr))  # later calls skip __getattr__
        self.compiled = compiled
        return getattr(compiled, name)


def lazy(pattern: str, flags: int = 0) -> Any:
    return LazyPattern(pattern, flags)
