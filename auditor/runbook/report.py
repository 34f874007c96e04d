"""`runbook report`: a static HTML report (no JavaScript): an index with an inline SVG timeline and the
integrity check result, one page per month and one page per entry."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.core.errors import AuditError
from auditor.runbook.markdown import TEMPLATES_DIR, EntryFormatError, element_text, parse_entry_file
from auditor.runbook.model import DECISIONS, Entry, now_timestamp
from auditor.runbook.store import Store
from auditor.runbook.verify import VerifyReport, verify_store

COLOURS = {
    "accepted": "#2e7d32",
    "blocked": "#c62828",
    "restart-required": "#ef6c00",
    "promoted": "#1565c0",
    "rolled-back": "#6a1b9a",
    "drift-detected": "#ad1457",
    "waived": "#8d6e00",
    "reload-verified": "#00838f",
    "upgrade-evaluated": "#2e7d32",
    "note": "#546e7a",
    "checkpoint": "#37474f",
}
MONTH_NAMES = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


@dataclass
class Month:
    key: str  # YYYY-MM
    label: str
    entries: list[Entry] = field(default_factory=list)


def write_report(store: Store, output: Path) -> int:
    """Render the report into `output`; returns the number of entries shown."""
    verification = verify_store(store)
    state = store.state()
    names = sorted(state.names)
    data = store.read(state, names)
    entries: list[tuple[str, Entry]] = []
    for name in names:
        try:
            entries.append((name, Entry.model_validate(parse_entry_file(data[name]).record)))
        except (EntryFormatError, ValueError):
            continue  # listed by the verification summary
    entries.sort(key=lambda item: (item[1].decided_at, item[0]))
    _render(store, output, entries, verification)
    return len(entries)


def _render(
    store: Store, output: Path, entries: list[tuple[str, Entry]], verification: VerifyReport
) -> None:
    env = _environment()
    try:
        (output / "months").mkdir(parents=True, exist_ok=True)
        (output / "entries").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditError(f"cannot create report directory {output}: {exc.strerror}") from None
    months: dict[str, Month] = {}
    for _, entry in entries:
        key = entry.decided_at[:7]
        if key not in months:
            months[key] = Month(key, f"{MONTH_NAMES[int(key[5:7]) - 1]} {key[:4]}")
        months[key].entries.append(entry)
    month_list = sorted(months.values(), key=lambda m: m.key)
    common: dict[str, Any] = {
        "source": store.description,
        "total": len(entries),
        "generated_at": now_timestamp(),
        "tool_version": __version__,
    }
    signatures: dict[str, str] = {}
    for facts in verification.facts.values():
        if facts.signature:
            who = facts.principals or facts.signer
            signatures[facts.id] = f"{facts.signature}: {who}" if who else facts.signature
    common["signatures"] = signatures
    common["slug"] = _slug
    problems_by_name: dict[str, list[Any]] = {}
    for problem in verification.problems:
        problems_by_name.setdefault(problem.name, []).append(problem)

    counts = Counter(entry.decision for _, entry in entries)
    _write(
        output / "index.html",
        env.get_template("runbook-report-index.html.j2").render(
            **common,
            root="",
            title="Runbook",
            verification=verification,
            timeline=timeline_svg([e for _, e in entries]),
            counts=[(d, counts[d]) for d in DECISIONS if counts[d]],
            months=list(reversed(month_list)),
            latest=[e for _, e in reversed(entries[-50:])],
            checkpoints=[e for _, e in reversed(entries) if e.checkpoint is not None][:50],
            writers=sorted(Counter(e.writer for _, e in entries).items()),
            hosts=sorted(Counter(e.host for _, e in entries).items()),
        ),
    )
    list_template = env.get_template("runbook-report-list.html.j2")
    for kind, key in (("writer", "writer"), ("host", "host")):
        groups: dict[str, list[Entry]] = {}
        for _, entry in entries:
            groups.setdefault(getattr(entry, key), []).append(entry)
        (output / f"{kind}s").mkdir(exist_ok=True)
        for name, rows in groups.items():
            _write(
                output / f"{kind}s" / f"{_slug(name)}.html",
                list_template.render(**common, root="../", title=name, kind=kind, rows=rows),
            )
    for i, month in enumerate(month_list):
        _write(
            output / "months" / f"{month.key}.html",
            env.get_template("runbook-report-month.html.j2").render(
                **common,
                root="../",
                title=month.label,
                month=month,
                prev_month=month_list[i - 1] if i else None,
                next_month=month_list[i + 1] if i + 1 < len(month_list) else None,
            ),
        )
    entry_template = env.get_template("runbook-report-entry.html.j2")
    for name, entry in entries:
        _write(
            output / "entries" / f"{entry.id}.html",
            entry_template.render(
                **common,
                root="../",
                title=entry.summary,
                e=entry,
                name=name,
                month_key=entry.decided_at[:7],
                problems=problems_by_name.get(name, []),
                record_json=json.dumps(
                    entry.record(), indent=2, sort_keys=True, ensure_ascii=False
                ),
            ),
        )
    shutil.copyfile(TEMPLATES_DIR / "runbook-report.css", output / "style.css")


def timeline_svg(entries: list[Entry], width: int = 1000) -> str:
    """Decisions over time: one lane per decision kind, one dot per entry (linked to its page)."""
    lanes = [d for d in DECISIONS if any(e.decision == d for e in entries)] or ["note"]
    left, right, top, lane_h = 140, 20, 20, 30
    height = top + lane_h * len(lanes) + 50
    times = [_epoch(e.decided_at) for e in entries]
    start, end = (min(times), max(times)) if times else (0.0, 1.0)
    if end - start < 86400:
        start, end = start - 43200, end + 43200
    span = end - start
    plot_w = width - left - right

    def x_of(t: float) -> float:
        return left + (t - start) / span * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="Timeline of {len(entries)} runbook decisions">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for i, lane in enumerate(lanes):
        y = top + lane_h * i + lane_h / 2
        parts.append(
            f'<line x1="{left}" y1="{y}" x2="{width - right}" y2="{y}" stroke="#e3e7ee" stroke-width="1"/>'
            f'<text x="{left - 10}" y="{y + 4}" text-anchor="end" font-size="12" '
            f'font-family="sans-serif" fill="#1d2330">{escape(lane)}</text>'
        )
    axis_y = top + lane_h * len(lanes) + 6
    parts.append(
        f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#5b6577"/>'
    )
    for anchor, t in (("start", start), ("end", end)):
        x = left if anchor == "start" else width - right
        parts.append(
            f'<text x="{x}" y="{axis_y + 34}" text-anchor="{anchor}" font-size="11" '
            f'font-family="sans-serif" fill="#5b6577">{_day(t)}</text>'
        )
    for tick, label in _month_ticks(start, end):
        x = x_of(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{axis_y + 4}" stroke="#eef0f4"/>'
            f'<text x="{x:.1f}" y="{axis_y + 20}" text-anchor="middle" font-size="11" '
            f'font-family="sans-serif" fill="#5b6577">{escape(label)}</text>'
        )
    for entry, t in zip(entries, times, strict=True):
        y = top + lane_h * lanes.index(entry.decision) + lane_h / 2
        tip = escape(
            f"{entry.decided_at} {entry.decision}: {entry.summary} ({entry.actor.name}, {entry.host})"
        )
        parts.append(
            f'<a href="entries/{entry.id}.html"><circle cx="{x_of(t):.1f}" cy="{y}" r="6" '
            f'fill="{COLOURS[entry.decision]}" fill-opacity="0.8" stroke="#ffffff" stroke-width="1">'
            f"<title>{tip}</title></circle></a>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _slug(name: str) -> str:
    """A file name for a writer or host page (their names may hold any character)."""
    import hashlib

    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def _month_ticks(start: float, end: float) -> list[tuple[float, str]]:
    first = datetime.fromtimestamp(start, UTC)
    year, month = first.year, first.month
    ticks: list[tuple[float, str]] = []
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        t = datetime(year, month, 1, tzinfo=UTC).timestamp()
        if t > end:
            break
        ticks.append((t, f"{MONTH_NAMES[month - 1][:3]} {year}"))
    step = max(1, len(ticks) // 12)
    return ticks[::step]


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _safe_url(url: str) -> str:
    lowered = url.strip().lower()
    if lowered.startswith(("https://", "http://", "mailto:")) or ":" not in lowered.split("/")[0]:
        return url.strip()
    return "#"


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["element"] = element_text
    env.filters["safe_url"] = _safe_url
    return env
