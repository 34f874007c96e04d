"""JUnit XML: well-formed, counts, one test case per finding, failures, skips, escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from auditor.render import render
from auditor.render.base import RenderInput
from tests.conftest import run_cli, write_tree
from tests.render_samples import NASTY, meta, sample_input


def _parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))


def test_structure_and_counts() -> None:
    out = render("junit", sample_input(path_prefix="mta"))
    assert out == render("junit", sample_input(path_prefix="mta"))
    root = _parse(out)
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "kumo-audit"
    cases = suite.findall("testcase")
    assert len(cases) == 6
    assert (
        suite.get("tests"),
        suite.get("failures"),
        suite.get("errors"),
        suite.get("skipped"),
    ) == (
        "6",
        "3",
        "0",
        "2",
    )
    assert root.get("tests") == "6" and root.get("failures") == "3"
    names = [(c.get("classname"), c.get("name")) for c in cases]
    assert names == [
        ("mta/data/shaping.toml", "E204 1:1"),
        ("mta/data/shaping.toml", "Z999 7:1"),
        ("mta/init.lua", "E204 4:3"),
        ("mta/init.lua", "E201 12:1"),
        ("mta/init.lua", "E201 20:1"),
        ("mta/policy/sub dir/é.lua", "X001 2:5"),
    ]


def test_failures_skips_and_infos() -> None:
    suite = _parse(render("junit", sample_input())).find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    failure = cases["E204 4:3"].find("failure")
    assert failure is not None
    assert failure.get("type") == "E204"
    assert failure.get("message") == "unknown function kumo.foo"
    assert failure.text is not None
    assert failure.text.startswith("init.lua:4:3: E204 unknown-api [error]\n")
    assert f"fix: {meta('E204').fix}" in failure.text
    skipped = cases["E201 12:1"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "suppressed (inline): legacy handler, removed in OPS-7"
    info = cases["Z999 7:1"]
    assert info.find("failure") is None
    out = info.find("system-out")
    assert out is not None and out.text is not None and "informational note" in out.text


def test_escaping_round_trips() -> None:
    suite = _parse(render("junit", sample_input())).find("testsuite")
    assert suite is not None
    case = next(c for c in suite.findall("testcase") if c.get("name") == "X001 2:5")
    failure = case.find("failure")
    assert failure is not None
    # the control character XML cannot carry is replaced; everything else survives exactly
    expected = NASTY.replace("\x01", "\ufffd")
    assert failure.get("message") == expected
    assert failure.text is not None and expected in failure.text


def test_no_findings_still_reports_a_test() -> None:
    root = _parse(render("junit", RenderInput(root=".", findings=[], summary={})))
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "1" and suite.get("failures") == "0"
    (case,) = suite.findall("testcase")
    assert case.get("name") == "no findings" and list(case) == []


def test_end_to_end_cli(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "local kumo = require 'kumo'\nlocal m = require 'nope'\n"})
    proc = run_cli("check", str(tmp_path), "--format", "junit")
    assert proc.returncode == 1, proc.stderr
    suite = _parse(proc.stdout).find("testsuite")
    assert suite is not None
    (case,) = suite.findall("testcase")
    assert (case.get("classname"), case.get("name")) == ("init.lua", "E104 2:11")
    assert case.find("failure") is not None
