"""GitLab Code Quality JSON: fields, severities, unique fingerprints, suppressed findings left out."""

from __future__ import annotations

import json
from pathlib import Path

from auditor.core.findings import Severity, Span
from auditor.render import render
from auditor.render.base import RenderInput
from tests.conftest import run_cli, write_tree
from tests.render_samples import meta, sample_input

REQUIRED = {"type", "check_name", "description", "fingerprint", "severity", "location"}


def test_issues() -> None:
    data = sample_input(path_prefix="mta")
    out = render("codequality", data)
    assert out == render("codequality", sample_input(path_prefix="mta"))
    issues = json.loads(out)
    assert isinstance(issues, list) and len(issues) == 4  # two suppressed findings left out
    for issue in issues:
        assert set(issue) == REQUIRED
        assert issue["severity"] in {"info", "minor", "major", "critical", "blocker"}
    by_code = {i["check_name"]: i for i in issues if i["check_name"] != "E201"}
    assert by_code["E204"] == {
        "type": "issue",
        "check_name": "E204",
        "description": "E204 unknown function kumo.foo",
        "fingerprint": data.findings[0].fingerprint,
        "severity": "critical",
        "location": {"path": "mta/init.lua", "lines": {"begin": 4, "end": 4}},
    }
    assert by_code["Z999"]["severity"] == "info"
    multi = next(i for i in issues if i["check_name"] == "E201")
    assert multi["location"]["lines"] == {"begin": 20, "end": 26}
    assert by_code["X001"]["location"]["path"] == "mta/policy/sub dir/é.lua"


def test_warning_severity_and_unique_fingerprints() -> None:
    f = meta("E204").finding("init.lua", Span.point(3), "same", key="k")
    twin = meta("E204").finding("init.lua", Span.point(9), "same", key="k")
    assert f.fingerprint == twin.fingerprint
    warn = meta("E204").finding("init.lua", Span.point(5), "w", key="w")
    warn = warn.with_severity(Severity.WARNING)
    issues = json.loads(render("codequality", RenderInput(".", [f, twin, warn], {})))
    fingerprints = [i["fingerprint"] for i in issues]
    assert len(set(fingerprints)) == 3
    assert fingerprints[0] == f.fingerprint
    assert [i["severity"] for i in issues] == ["critical", "major", "critical"]


def test_empty_report_is_an_empty_list() -> None:
    assert render("codequality", RenderInput(".", [], {})) == "[]\n"


def test_end_to_end_cli(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "local kumo = require 'kumo'\nlocal m = require 'nope'\n"})
    out = tmp_path / "reports" / "gl-code-quality.json"
    proc = run_cli("check", str(tmp_path), "--format", "codequality", "--output", str(out))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    (issue,) = json.loads(out.read_text(encoding="utf-8"))
    assert issue["check_name"] == "E104"
    assert issue["location"] == {"path": "init.lua", "lines": {"begin": 2, "end": 2}}
