"""The API table's identity for cache keys, without parsing the table (or importing its loader)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path


@functools.cache
def api_table_digest() -> str:
    """sha256 of the packaged `api.toml` (the same value as `KumoApi.api_hash()`)."""
    table = Path(__file__).with_name("api.toml")
    if table.is_file():
        data = table.read_bytes()
    else:  # a zipped or otherwise non-file install
        from importlib import resources

        data = resources.files(__package__).joinpath("api.toml").read_bytes()
    return hashlib.sha256(data).hexdigest()
