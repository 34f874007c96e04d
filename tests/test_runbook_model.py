"""Entry model, canonical hashing, file naming, Markdown rendering and the published schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest
from test_runbook_support import ROOT

from auditor.core.decisions import DECISIONS
from auditor.runbook.markdown import parse_entry_file, parse_front_matter, render_entry
from auditor.runbook.model import (
    Decision,
    Entry,
    canonical_json,
    entry_path,
    hash_body,
    parse_moment,
)
from auditor.runbook.schema import schema_text


def body(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "prev_hash": None,
        "writer": "human:host-a",
        "decided_at": "2026-11-29T04:13:11Z",
        "recorded_at": "2026-11-29T04:13:12Z",
        "decision": "blocked",
        "summary": "listener change blocked",
        "actor": {
            "name": "Jane Doe",
            "email": "jane@example.com",
            "kind": "human",
            "resolved_by": "sudo",
        },
        "host": "host-a",
        "evidence": {"tool_version": "0.1.0"},
    }
    data.update(overrides)
    return data


def test_hash_and_id_are_derived_from_content() -> None:
    first = Entry.seal(body())
    again = Entry.seal(body())
    other = Entry.seal(body(summary="something else"))
    assert first.hash == again.hash and first.id == again.id
    assert first.hash != other.hash
    assert first.id == first.hash[:16]
    assert first.hash == hash_body(first.body())
    assert "id" not in first.body() and "hash" not in first.body()
    # The chain link is part of what is hashed.
    linked = Entry.seal(body(prev_hash="a" * 64))
    assert linked.hash != first.hash


def test_canonical_json_is_sorted_and_compact() -> None:
    assert (
        canonical_json({"b": 1, "a": [1, {"d": "é", "c": None}]})
        == '{"a":[1,{"c":null,"d":"é"}],"b":1}'
    )


def test_entry_file_name() -> None:
    name = entry_path("2026-11-29T04:13:11Z", "blocked", "3f2a9c1e00000000")
    assert name == "entries/2026/11/2026-11-29T041311Z-blocked-3f2a9c1.md"
    assert Entry.seal(body()).file_name().startswith("entries/2026/11/2026-11-29T041311Z-blocked-")


def test_decision_names_agree() -> None:
    assert get_args(Decision) == DECISIONS


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2026-03-01", False, "2026-03-01T00:00:00Z"),
        ("2026-03-01", True, "2026-03-01T23:59:59Z"),
        ("2026-03-01T10:00:00+02:00", False, "2026-03-01T08:00:00Z"),
        ("2026-03-01T10:00:00Z", False, "2026-03-01T10:00:00Z"),
    ],
)
def test_parse_moment(text: str, end: bool, expected: str) -> None:
    assert parse_moment(text, end_of_day=end) == expected


def test_invalid_fields_are_rejected() -> None:
    with pytest.raises(ValueError):
        Entry.seal(body(decision="maybe"))
    with pytest.raises(ValueError):
        Entry.seal(body(decided_at="2026-11-29 04:13"))
    with pytest.raises(ValueError):
        Entry.seal(body(summary="two\nlines"))


def test_rendered_file_carries_the_record_and_front_matter() -> None:
    entry = Entry.seal(
        body(
            change={
                "base": "a" * 40,
                "head": "b" * 40,
                "files": [
                    {
                        "path": "init.lua",
                        "status": "modified",
                        "before": "c" * 40,
                        "after": "d" * 40,
                    }
                ],
                "summary": ["listener 0.0.0.0:25 relay_hosts widened"],
            },
            reload={
                "impact": "restart",
                "elements": [{"element": "listener", "impact": "restart"}],
            },
        )
    )
    data = render_entry(entry)
    parsed = parse_entry_file(data)
    assert parsed.record == entry.record()
    assert Entry.model_validate(parsed.record) == entry
    front = parse_front_matter(data)
    assert front["id"] == entry.id
    assert front["files"] == ["init.lua"]
    assert front["writer"] == "human:host-a"
    text = data.decode()
    assert "# Blocked: listener change blocked" in text
    assert "Reload impact | **restart**" in text
    assert render_entry(entry) == data  # deterministic


def test_hostile_text_cannot_break_the_file_structure() -> None:
    from auditor.runbook.markdown import MARKER

    fake = json.dumps({"decision": "accepted"})
    why = f"pipe | in text\n{MARKER}\n```json\n{fake}\n```\n<script>alert(1)</script>\n---"
    entry = Entry.seal(body(why={"text": why}, summary="a | b <b>"))
    data = render_entry(entry)
    parsed = parse_entry_file(data)
    assert parsed.record == entry.record()
    text = data.decode()
    assert "<script>" not in text.split(MARKER)[0].split("\n---\n", 1)[1]
    assert "# Blocked: a | b &lt;b>\n" in text
    assert text.count(f"\n{MARKER}\n") == 1


def test_published_schema_is_current() -> None:
    path = ROOT / "schemas" / "runbook-entry.schema.json"
    assert path.read_text() == schema_text(), "regenerate: python -m auditor.runbook.schema"
    schema = json.loads(path.read_text())
    assert set(schema["properties"]["decision"]["enum"]) == set(DECISIONS)
    for required in (
        "id",
        "hash",
        "writer",
        "decided_at",
        "recorded_at",
        "decision",
        "actor",
        "host",
    ):
        assert required in schema["required"]


def test_cli_registration_does_not_import_heavy_libraries(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import argparse, sys\n"
        "import auditor.commands.runbook as c\n"
        "p = argparse.ArgumentParser(); c.register(p.add_subparsers())\n"
        "print(sorted(m for m in ('jinja2', 'git', 'pydantic') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
