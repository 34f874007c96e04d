"""GitHub workflow-command annotations: format, escaping, caps, multi-line spans, path prefix."""

from __future__ import annotations

from pathlib import Path

from auditor.core.findings import Span
from auditor.render import render
from auditor.render.base import RenderInput
from auditor.render.github import escape_data, escape_property
from tests.conftest import run_cli, write_tree
from tests.render_samples import NASTY, many_findings, meta, sample_input


def test_escaping_rules() -> None:
    assert escape_data("100%\r\nnext") == "100%25%0D%0Anext"
    assert escape_data("a,b:c") == "a,b:c"
    assert escape_property("a,b:c%\n") == "a%2Cb%3Ac%25%0A"


def test_annotations_of_sample() -> None:
    out = render("github", sample_input(path_prefix="mta"))
    lines = out.splitlines()
    assert out.endswith("\n")
    # suppressed findings are not annotated; sorted by path, line, column
    assert len(lines) == 4
    e201 = meta("E201")
    e204 = meta("E204")
    assert lines[0] == (
        "::notice file=mta/data/shaping.toml,line=7,col=1,endLine=7,endColumn=8,"
        "title=Z999 custom-check::informational note"
    )
    assert lines[1] == (
        f"::error file=mta/init.lua,line=4,col=3,endLine=4,endColumn=19,title=E204 {e204.name}"
        f"::unknown function kumo.foo%0Afix: {escape_data(e204.fix)}"
    )
    # a multi-line span: no col/endColumn
    assert lines[2].startswith(
        f"::error file=mta/init.lua,line=20,endLine=26,title=E201 {e201.name}::second handler"
    )
    # odd characters escaped; the whole command stays on one line
    x001 = meta("X001")
    assert lines[3].startswith(
        "::error file=mta/policy/sub dir/é.lua,line=2,col=5,endLine=2,endColumn=5,title=X001 "
        f"{escape_property(x001.name)}::{escape_data(NASTY)}"
    )
    assert "\r" not in out


def test_title_with_separators_is_escaped() -> None:
    finding = meta("E204").finding("a,b:c.lua", Span.point(1), "m")
    data = RenderInput(root=".", findings=[finding], summary={})
    assert render("github", data).startswith("::error file=a%2Cb%3Ac.lua,line=1,")


def test_caps_per_level_with_summary_notice() -> None:
    data = RenderInput(root=".", findings=many_findings(12, 3, 11), summary={})
    lines = render("github", data).splitlines()
    kinds = [line.split(" ", 1)[0].split("::")[1] for line in lines[:-1]]
    assert kinds.count("error") == 10
    assert kinds.count("warning") == 3
    assert kinds.count("notice") == 9  # room left for the summary notice
    assert lines[-1] == (
        "::notice::4 more findings not shown as annotations (2 errors, 2 notices); "
        "see the full report"
    )


def test_no_summary_when_within_limits() -> None:
    data = RenderInput(root=".", findings=many_findings(10, 10, 10), summary={})
    lines = render("github", data).splitlines()
    assert len(lines) == 30
    assert not any(line.startswith("::notice::") for line in lines)


def test_nothing_to_say() -> None:
    assert render("github", RenderInput(root=".", findings=[], summary={})) == ""


def test_end_to_end_cli(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "local kumo = require 'kumo'\nlocal m = require 'nope'\n"})
    proc = run_cli("check", str(tmp_path), "--format", "github")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("::error file=init.lua,line=2,col=11,")
    assert "title=E104 " in proc.stdout
