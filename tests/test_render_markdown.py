"""Markdown job summary: verdict, counts, findings, reload impact, suppressions, escaping."""

from __future__ import annotations

import re
from pathlib import Path

from auditor.render import render
from auditor.render.base import RenderInput
from auditor.render.markdown import MAX_FINDINGS, cell
from tests.conftest import run_cli, write_tree
from tests.render_samples import many_findings, sample_input

RELOAD = {
    "impact": "restart",
    "elements": [
        {
            "element": "listener 0.0.0.0:25",
            "path": "init.lua",
            "line": 3,
            "impact": "restart",
            "reason": "read by init | needs `kumod` restart",
        },
        {
            "element": "shaping.toml",
            "path": "data/shaping.toml",
            "line": None,
            "impact": "epoch",
            "reason": "monitored data file",
        },
    ],
}


def _unescaped_pipes(row: str) -> int:
    return len(re.findall(r"(?<!\\)\|", row))


def _tables(text: str) -> list[list[str]]:
    tables: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def test_cell_escaping() -> None:
    assert cell("a|b") == r"a\|b"
    assert cell("`code`") == r"\`code\`"
    assert cell("x\r\ny\nz") == "x<br>y<br>z"
    assert cell("<b>*hi*</b> & [l](u)") == r"\<b\>\*hi\*\</b\> \& \[l\](u)"
    assert cell("back\\slash") == "back\\\\slash"
    assert cell("\x01") == "\ufffd"
    assert cell(None) == ""


def test_summary_sections() -> None:
    data = sample_input(path_prefix="mta")
    data.reload = RELOAD
    out = render("markdown", data)
    assert out == render("markdown", data)
    assert out.startswith("## kumo-audit: ❌ failed\n")
    assert "**4 findings** (3 errors, 0 warnings, 1 info) in 3 files." in out
    assert "| 🔴 error | 3 |" in out and "| suppressed | 2 |" in out
    assert "### Findings" in out
    assert "| mta/init.lua:4 | E204 unknown-api | 🔴 error | unknown function kumo.foo |" in out
    # most severe first: the info finding is the last row of the findings table
    tables = _tables(out)
    findings_table = tables[1]
    assert findings_table[-1].startswith("| mta/data/shaping.toml:7 | Z999 custom-check | 🔵 info")
    assert "### Reload impact: **restart**" in out
    assert (
        "| listener 0.0.0.0:25 | mta/init.lua:3 | restart | read by init \\| needs \\`kumod\\` restart |"
        in out
    )
    assert "| shaping.toml | mta/data/shaping.toml | epoch | monitored data file |" in out
    assert "### Suppressions used" in out
    assert "| mta/init.lua:11 | inline | legacy handler, removed in OPS-7 | OPS-7 |  |" in out
    # every table row has as many cell separators as its header
    for table in tables:
        assert len({_unescaped_pipes(row) for row in table}) == 1, table


def test_escaped_message_stays_in_one_row() -> None:
    out = render("markdown", sample_input())
    row = next(line for line in out.splitlines() if "X001" in line)
    assert '\\| a, b: c<br>second \\<line\\> \\& "quoted" \ufffd end' in row
    assert "\\`x\\`" in row


def test_passed_verdict_and_threshold() -> None:
    infos = RenderInput(root=".", findings=many_findings(0, 1, 2), summary={"files": 1})
    out = render("markdown", infos)
    assert out.startswith("## kumo-audit: ✅ passed\n")
    assert "**3 findings** (0 errors, 1 warning, 2 infos) in 1 file." in out
    infos.extra["fail_on"] = "warning"
    assert render("markdown", infos).startswith("## kumo-audit: ❌ failed\n")
    blocked = RenderInput(root=".", findings=[], summary={}, reload={"impact": "blocked"})
    assert render("markdown", blocked).startswith("## kumo-audit: ❌ failed\n")


def test_clean_run_has_no_findings_table() -> None:
    out = render("markdown", RenderInput(root=".", findings=[], summary={"files": 2}))
    assert "**0 findings** (0 errors, 0 warnings, 0 infos) in 2 files." in out
    assert "### Findings" not in out and "### Suppressions used" not in out


def test_findings_are_capped() -> None:
    data = RenderInput(root=".", findings=many_findings(MAX_FINDINGS + 5, 0, 0), summary={})
    out = render("markdown", data)
    assert len(_tables(out)[1]) == MAX_FINDINGS + 2
    assert "… and 5 more findings (see the full report)." in out


def test_links_when_blob_url_given() -> None:
    out = render("markdown", sample_input(blob_url="https://example.org/r/blob/abc/"))
    assert "[init.lua:4](https://example.org/r/blob/abc/init.lua#L4)" in out
    assert "(https://example.org/r/blob/abc/policy/sub%20dir/%C3%A9.lua#L2)" in out


def test_change_line() -> None:
    data = RenderInput(
        root=".",
        findings=[],
        summary={},
        change={"base": "main", "head": "feature", "introduced": ["a", "b"], "resolved": []},
    )
    assert "**Change:** main → feature, 2 introduced, 0 resolved" in render("markdown", data)


def test_end_to_end_cli(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "local kumo = require 'kumo'\nlocal m = require 'nope'\n"})
    proc = run_cli("check", str(tmp_path), "--format", "markdown")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("## kumo-audit: ❌ failed\n")
    assert "| init.lua:2 | E104 " in proc.stdout
