"""Runbook benchmark: 10,000 entries on a Git branch, then filtered history queries (target < 1 s).

Usage: python bench/bench_runbook.py [--entries N] [--keep DIR]
Writes the entries in one commit through Git plumbing (`record_many`), then times:
  - a filtered query in-process, cold (no summary cache) and warm;
  - the same query as a whole `kumo-audit runbook history --format json` process;
  - `runbook verify` over every entry (informational).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.core.findings import Finding, Severity, Span  # noqa: E402
from auditor.runbook.model import Actor, Change, ChangedFile  # noqa: E402
from auditor.runbook.query import Filters, records, select  # noqa: E402
from auditor.runbook.record import EntryDraft, record_many  # noqa: E402
from auditor.runbook.store import GitStore  # noqa: E402
from auditor.runbook.verify import verify_store  # noqa: E402

DECISIONS = [
    "accepted",
    "blocked",
    "promoted",
    "restart-required",
    "reload-verified",
    "drift-detected",
]
CODES = ["S201", "E101", "E203", "R101", "D301", "C102"]
FILES = ["init.lua", "sources.toml", "queues.toml", "shaping.toml", "policy/auth.lua"]
HOSTS = ["cfg-1", "cfg-2", "cfg-3", "ci"]
QUERY = [
    "--decision",
    "blocked",
    "--since",
    "2026-06-01",
    "--until",
    "2026-09-30",
    "--code",
    "S201",
]


def drafts(count: int) -> list[EntryDraft]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(days=365) / count
    out = []
    for i in range(count):
        host = HOSTS[i % len(HOSTS)]
        path = FILES[i % len(FILES)]
        code = CODES[(i // 3) % len(CODES)]
        kind = "ci" if host == "ci" else "daemon"
        out.append(
            EntryDraft(
                decision=DECISIONS[(i * 7) % len(DECISIONS)],
                why=f"change {i} for OPS-{i % 500}",
                change=Change(
                    base=f"{i:040x}",
                    head=f"{i + 1:040x}",
                    files=[
                        ChangedFile(
                            path=path, status="modified", before=f"{i:040x}", after=f"{i + 7:040x}"
                        )
                    ],
                ),
                findings=[
                    Finding(
                        code,
                        "rule",
                        Severity.ERROR,
                        f"{code} at {path}",
                        path,
                        Span(i % 300 + 1, 1, i % 300 + 1, 9),
                    )
                ],
                reload={"impact": "epoch", "elements": [{"element": path, "impact": "epoch"}]},
                decided_at=start + step * i,
                actor=Actor(name=f"kumo-audit@{host}", kind=kind, resolved_by="host-identity"),
                host=host,
            )
        )
    return out


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="build the repository here instead of a temp dir")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="kumo-runbook-bench-"))
    repo = work / "policy"
    repo.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)

    store = GitStore(repo)
    batch = drafts(args.entries)
    _, write_s = timed(lambda: record_many(store, batch))
    print(f"wrote {args.entries} entries in one commit: {write_s:.2f} s")

    filters = Filters(
        since="2026-06-01T00:00:00Z",
        until="2026-09-30T23:59:59Z",
        decisions=("blocked",),
        code="S201",
    )
    cache = store.private / "summaries.json"
    cache.unlink(missing_ok=True)

    def query() -> list[dict]:  # type: ignore[type-arg]
        state = store.state()
        return records(store, select(store, filters, state), state)

    cold, cold_s = timed(query)
    warm, warm_s = timed(query)
    assert cold == warm
    print(
        f"filtered history ({len(cold)} matches), in-process: cold {cold_s * 1000:.0f} ms, warm {warm_s * 1000:.0f} ms"
    )

    cache.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "auditor", "runbook", "history", "--format", "json", *QUERY]
    times = []
    for _ in range(3):
        _, secs = timed(
            lambda: subprocess.run(cmd, cwd=repo, env=env, capture_output=True, check=True)
        )
        times.append(secs)
    print(
        f"filtered history, whole process: first {times[0] * 1000:.0f} ms (cold cache), "
        f"then {min(times[1:]) * 1000:.0f} ms; target < 1000 ms: {'ok' if max(times) < 1 else 'MISSED'}"
    )
    report, verify_s = timed(lambda: verify_store(store))
    print(f"verify {report.entries} entries: {verify_s:.2f} s, ok={report.ok}")
    return 0 if max(times) < 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
