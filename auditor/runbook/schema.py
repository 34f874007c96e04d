"""The published JSON Schema of a runbook entry record (`schemas/runbook-entry.schema.json`).

Regenerate with `python -m auditor.runbook.schema > schemas/runbook-entry.schema.json`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

SCHEMA_ID = "https://kumo-audit.invalid/schemas/runbook-entry.schema.json"


def entry_schema() -> dict[str, Any]:
    from auditor.runbook.model import Entry

    schema = Entry.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "kumo-audit runbook entry",
    }


def schema_text() -> str:
    return json.dumps(entry_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(schema_text())
