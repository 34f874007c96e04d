"""Entry files: Markdown rendered from the record by a versioned template, and parsed back.

The file is a pure function of the record: `verify` re-renders each record with the template of its
`format` and compares bytes, so an edit to the prose (not only to the record) is detected. A change to
the template therefore needs a new format version and a new template file; old ones stay.

Layout: a front matter of `key: <JSON value>` lines (cheap to scan for queries), the readable Markdown,
then the marker comment and a fenced ```json block holding the full record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.runbook.canonical import FORMAT

if TYPE_CHECKING:
    from auditor.runbook.model import Entry

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATES = {FORMAT: "runbook-entry.v1.md.j2"}
MARKER = "<!-- kumo-audit:record: canonical entry; `kumo-audit runbook verify` checks this file -->"
_RECORD_START = f"\n{MARKER}\n```json\n"
_RECORD_END = "\n```\n"

DECISION_TITLES = {
    "accepted": "Accepted",
    "blocked": "Blocked",
    "restart-required": "Restart required",
    "promoted": "Promoted",
    "rolled-back": "Rolled back",
    "drift-detected": "Drift detected",
    "waived": "Waived",
    "reload-verified": "Reload verified",
    "upgrade-evaluated": "Upgrade evaluated",
    "note": "Note",
    "checkpoint": "Checkpoint",
}


class EntryFormatError(ValueError):
    """An entry file that cannot be read as an entry."""


@dataclass(frozen=True, slots=True)
class EntryFile:
    front: dict[str, Any]
    record: dict[str, Any]


def front_matter(entry: Entry) -> dict[str, Any]:
    """The summary fields queries need, derived from the record."""
    front: dict[str, Any] = {
        "id": entry.id,
        "decision": entry.decision,
        "decided_at": entry.decided_at,
        "recorded_at": entry.recorded_at,
        "actor": entry.actor.display(),
        "actor_kind": entry.actor.kind,
        "host": entry.host,
        "environment": entry.environment,
        "writer": entry.writer,
        "files": sorted({f.path for f in entry.change.files}) if entry.change else [],
        "codes": sorted({f.code for f in entry.evidence.findings}),
        "tickets": entry.why.tickets,
        "supersedes": entry.supersedes,
        "summary": entry.summary,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }
    # Added only when present, so entries written without them render exactly as before.
    if entry.signature is not None:
        front["signed_by"] = signer_fingerprint(entry.signature)
    if entry.checkpoint is not None:
        front["checkpoint"] = entry.checkpoint.entries
    if entry.evidence.kumomta_release:
        front["kumomta_release"] = entry.evidence.kumomta_release
    return front


def signer_fingerprint(armored: str) -> str:
    from auditor.runbook.signing import SignatureFormatError, parse_signature

    try:
        return parse_signature(armored).fingerprint
    except SignatureFormatError:
        return "(unreadable signature)"


def render_entry(entry: Entry) -> bytes:
    template = _environment().get_template(TEMPLATES[entry.format])
    front = "\n".join(
        f"{key}: {json.dumps(value, ensure_ascii=False)}"
        for key, value in front_matter(entry).items()
    )
    text = template.render(
        e=entry,
        front_matter=front,
        decision_title=DECISION_TITLES[entry.decision],
        marker=MARKER,
        signer=signer_fingerprint(entry.signature) if entry.signature else "",
        record_json=json.dumps(entry.record(), indent=2, sort_keys=True, ensure_ascii=False),
    )
    return text.encode("utf-8")


def parse_front_matter(data: bytes) -> dict[str, Any]:
    """Only the front matter: enough for listing and filtering."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise EntryFormatError("not UTF-8") from None
    if not text.startswith("---\n"):
        raise EntryFormatError("no front matter")
    end = text.find("\n---\n", 3)
    if end < 0:
        raise EntryFormatError("front matter not closed")
    front: dict[str, Any] = {}
    for line in text[4:end].split("\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            raise EntryFormatError(f"bad front matter line {line[:40]!r}")
        try:
            front[key] = json.loads(value)
        except ValueError:
            raise EntryFormatError(f"bad front matter value for {key!r}") from None
    return front


def parse_entry_file(data: bytes) -> EntryFile:
    front = parse_front_matter(data)
    text = data.decode("utf-8")
    start = text.rfind(_RECORD_START)
    if start < 0:
        raise EntryFormatError("no machine record")
    if not text.endswith(_RECORD_END):
        raise EntryFormatError("machine record not closed at the end of the file")
    body = text[start + len(_RECORD_START) : len(text) - len(_RECORD_END)]
    try:
        record = json.loads(body)
    except ValueError as exc:
        raise EntryFormatError(f"machine record is not JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise EntryFormatError("machine record is not an object")
    return EntryFile(front=front, record=record)


# --- Jinja2 environment and Markdown filters ---------------------------------------------------


@cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        md_inline=md_inline,
        md_cell=md_cell,
        quote=quote,
        short=lambda rev: str(rev)[:12],
        element=describe_element,
        md_link_text=lambda t: md_inline(t).replace("[", "\\[").replace("]", "\\]"),
        md_link_url=lambda u: md_inline(u).replace(">", "%3E").replace(" ", "%20"),
    )
    return env


def md_inline(text: object) -> str:
    """One line, no raw HTML: safe anywhere in Markdown prose."""
    return " ".join(str(text).split()).replace("<", "&lt;").replace("`", "'")


def md_cell(text: object) -> str:
    return md_inline(text).replace("|", "\\|")


def quote(text: object, indent: int = 0) -> str:
    pad = " " * indent
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(f"{pad}> {line.replace('<', '&lt;')}".rstrip() for line in lines)


def element_text(element: dict[str, Any], bold: str = "") -> str:
    """A reload-impact element as one plain line: `label: class (reason)`."""
    label = next((element[k] for k in ("element", "name", "path", "kind") if k in element), None)
    klass = next((element[k] for k in ("impact", "class") if k in element), None)
    reason = next((element[k] for k in ("reason", "why", "explanation") if k in element), None)
    if label is None and klass is None:
        return " ".join(json.dumps(element, sort_keys=True, ensure_ascii=False).split())
    text = f"{label if label is not None else '(element)'}"
    if klass is not None:
        text += f": {bold}{klass}{bold}"
    if reason is not None:
        text += f" ({reason})"
    return " ".join(text.split())


def describe_element(element: dict[str, Any]) -> str:
    return md_inline(element_text(element, bold="**"))
