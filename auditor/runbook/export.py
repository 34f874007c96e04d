"""`runbook export`: every selected entry as JSON lines (the full record) or CSV (one row of the
fields a spreadsheet or SIEM filters on), streamed: entries are read in small batches, never all at
once, and written as they are read."""

from __future__ import annotations

import csv
import json
from typing import Any, TextIO

from auditor.runbook.markdown import EntryFormatError, parse_entry_file
from auditor.runbook.query import Filters, select
from auditor.runbook.store import Store

BATCH = 200
CSV_FIELDS = (
    "id",
    "decided_at",
    "recorded_at",
    "decision",
    "summary",
    "actor",
    "actor_kind",
    "host",
    "environment",
    "writer",
    "base",
    "head",
    "impact",
    "findings",
    "codes",
    "tickets",
    "files",
    "signed_by",
    "checkpoint_entries",
    "supersedes",
    "prev_hash",
    "hash",
)


def export(store: Store, filters: Filters, fmt: str, out: TextIO) -> int:
    """Write the matching entries to `out`, oldest first; returns how many were written."""
    from auditor.runbook.markdown import signer_fingerprint

    state = store.state()
    matches = select(store, filters, state)
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_FIELDS)
    count = 0
    for start in range(0, len(matches), BATCH):
        names = [m.name for m in matches[start : start + BATCH]]
        blobs = store.read(state, names)
        for name in names:
            try:
                record = parse_entry_file(blobs[name]).record
            except EntryFormatError:
                continue  # `runbook verify` names it
            if writer is None:
                out.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
            else:
                writer.writerow(_row(record, signer_fingerprint))
            count += 1
        del blobs
    out.flush()
    return count


def _row(record: dict[str, Any], signer: Any) -> list[str]:
    actor = record.get("actor") or {}
    change = record.get("change") or {}
    evidence = record.get("evidence") or {}
    findings = evidence.get("findings") or []
    why = record.get("why") or {}
    values = {
        "actor": f"{actor.get('name', '')}"
        + (f" <{actor['email']}>" if actor.get("email") else ""),
        "actor_kind": actor.get("kind", ""),
        "base": change.get("base") or "",
        "head": change.get("head") or "",
        "impact": (record.get("reload") or {}).get("impact", ""),
        "findings": str(len(findings)),
        "codes": " ".join(sorted({f.get("code", "") for f in findings})),
        "tickets": " ".join(why.get("tickets") or []),
        "files": " ".join(f.get("path", "") for f in change.get("files") or []),
        "signed_by": signer(record["signature"]) if record.get("signature") else "",
        "checkpoint_entries": str((record.get("checkpoint") or {}).get("entries", "")),
    }
    return [_cell(values[k] if k in values else record.get(k)) for k in CSV_FIELDS]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells that start with these as formulas.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
