"""`runbook fleet`: which revision each host runs, and since when, from the recorded promotions.

A host's live revision is the head of its latest entry that changed what is live: `promoted`,
`rolled-back`, or `restart-required` when the daemon promoted it (`reload.daemon.promoted`).
"""

from __future__ import annotations

from typing import Any

from auditor.runbook.markdown import EntryFormatError, parse_entry_file
from auditor.runbook.store import Store

LIVE_DECISIONS = ("promoted", "rolled-back", "restart-required")


def chain_positions(summaries: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Each entry's position in its writer's hash chain: the order of one writer's entries even
    when several share a timestamp (they have a resolution of one second)."""
    prev_of = {
        f["hash"]: f.get("prev_hash")
        for f in summaries.values()
        if "_error" not in f and f.get("hash")
    }
    positions: dict[str, int] = {}
    for start in prev_of:
        path = []
        node: str | None = start
        while node is not None and node not in positions and node in prev_of:
            path.append(node)
            node = prev_of[node]
            if len(path) > len(prev_of):  # a cycle cannot come from hashes; stop rather than spin
                break
        base = positions.get(node, -1) if node is not None else -1
        for offset, item in enumerate(reversed(path), start=1):
            positions[item] = base + offset
    return positions


def _order(front: dict[str, Any], positions: dict[str, int]) -> tuple[str, str, int]:
    return (
        front.get("decided_at") or "",
        front.get("recorded_at") or "",
        positions.get(front.get("hash") or "", -1),
    )


def fleet(store: Store) -> list[dict[str, Any]]:
    state = store.state()
    summaries = store.summaries(state)
    positions = chain_positions(summaries)
    last_seen: dict[str, dict[str, Any]] = {}
    wanted = []
    for name, front in summaries.items():
        host = front.get("host")
        if not host or "_error" in front:
            continue
        if host not in last_seen or _order(front, positions) >= _order(last_seen[host], positions):
            last_seen[host] = front
        if front.get("decision") in LIVE_DECISIONS:
            wanted.append(name)
    live: dict[str, dict[str, Any]] = {}
    for name, blob in store.read(state, wanted).items():
        try:
            record = parse_entry_file(blob).record
        except EntryFormatError:
            continue
        daemon = (record.get("reload") or {}).get("daemon") or {}
        if record["decision"] == "restart-required" and not daemon.get("promoted"):
            continue
        host = record.get("host")
        key = _order(summaries[name], positions)
        held = live.get(host)
        if held is None or key > held["order"]:
            change = record.get("change") or {}
            live[host] = {
                "order": key,
                "host": host,
                "revision": change.get("head") or daemon.get("release"),
                "release": daemon.get("release"),
                "since": record.get("decided_at"),
                "recorded_at": record.get("recorded_at"),
                "decision": record["decision"],
                "entry": record.get("id"),
            }
    rows = []
    for host in sorted(
        set(live) | {h for h, f in last_seen.items() if f.get("actor_kind") == "daemon"}
    ):
        row = dict(live.get(host) or {"host": host, "revision": None, "since": None})
        row.pop("recorded_at", None)
        row.pop("order", None)
        last = last_seen.get(host, {})
        row["last_decision"] = last.get("decision")
        row["last_decided_at"] = last.get("decided_at")
        rows.append(row)
    return rows


def render_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no host has recorded a promotion"
    table = [("HOST", "REVISION", "SINCE", "BY", "LAST DECISION")]
    for row in rows:
        table.append(
            (
                row["host"],
                (row.get("revision") or "-")[:12],
                row.get("since") or "-",
                row.get("decision") or "-",
                f"{row.get('last_decision') or '-'} {row.get('last_decided_at') or ''}".strip(),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in table
    )
