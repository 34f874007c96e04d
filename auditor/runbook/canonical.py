"""The canonical forms of an entry that need no model: its format name, JSON form, hash and file name.

Kept apart from the pydantic model so that `runbook verify` can check entries it has seen before
without loading pydantic.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

FORMAT = "kumo-audit-runbook/1"
ID_LENGTH = 16
SHORT_ID_LENGTH = 7


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hash_body(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


ENTRY_NAME_RE = re.compile(
    r"^entries/(\d{4})/(\d{2})/(\d{4}-\d{2}-\d{2}T\d{6}Z)-([a-z-]+)-([0-9a-f]{7})\.md$"
)


def entry_path(decided_at: str, decision: str, entry_id: str) -> str:
    year, month = decided_at[0:4], decided_at[5:7]
    stamp = decided_at.replace(":", "")
    return f"entries/{year}/{month}/{stamp}-{decision}-{entry_id[:SHORT_ID_LENGTH]}.md"
