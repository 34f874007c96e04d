"""SARIF 2.1.0 output: schema-valid, rule metadata, locations, fingerprints, suppressions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor import __version__
from auditor.render import render
from auditor.render.base import RenderInput
from auditor.render.sarif import FINGERPRINT_KEY
from tests.conftest import run_cli, write_tree
from tests.render_samples import meta, sample_input

REPO = Path(__file__).resolve().parents[1]
# The schema lives in the shared folder beside the checkout (never copied into the project).
SCHEMA_CANDIDATES = [
    REPO.parent / "shared" / "data" / "sarif-schema-2.1.0.json",
    REPO / "shared" / "data" / "sarif-schema-2.1.0.json",
]


def _schema_validator():  # type: ignore[no-untyped-def]
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    for candidate in SCHEMA_CANDIDATES:
        if candidate.is_file():
            schema = json.loads(candidate.read_text(encoding="utf-8"))
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            return cls(schema)
    pytest.skip(f"SARIF schema not found (looked at {', '.join(map(str, SCHEMA_CANDIDATES))})")


def _doc(data: RenderInput) -> dict:  # type: ignore[type-arg]
    return json.loads(render("sarif", data))


def test_valid_against_the_official_schema() -> None:
    validator = _schema_validator()
    errors = sorted(validator.iter_errors(_doc(sample_input())), key=str)
    assert not errors, "\n".join(str(e.message) for e in errors[:5])


def test_empty_run_is_valid() -> None:
    validator = _schema_validator()
    doc = _doc(RenderInput(root=".", findings=[], summary={}))
    validator.validate(doc)
    run = doc["runs"][0]
    assert run["results"] == [] and run["tool"]["driver"]["rules"] == []


def test_deterministic() -> None:
    assert render("sarif", sample_input()) == render("sarif", sample_input())


def test_driver_and_rules() -> None:
    doc = _doc(sample_input())
    assert doc["version"] == "2.1.0"
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "kumo-audit" and driver["version"] == __version__
    assert "informationUri" not in driver
    ids = [r["id"] for r in driver["rules"]]
    assert ids == ["E201", "E204", "X001", "Z999"]  # rules with results, by code
    e201 = driver["rules"][0]
    m = meta("E201")
    assert e201["name"] == m.name
    assert e201["shortDescription"]["text"] == m.summary
    assert e201["fullDescription"]["text"] == m.doc
    assert e201["defaultConfiguration"]["level"] == "error"
    assert e201["properties"]["tags"] == [m.category]
    assert m.bad in e201["help"]["text"] and m.good in e201["help"]["text"]
    assert f"```lua\n{m.bad}\n```" in e201["help"]["markdown"]
    assert m.fix in e201["help"]["markdown"]
    z999 = driver["rules"][3]
    assert z999["shortDescription"]["text"] == "custom-check"
    assert z999["defaultConfiguration"]["level"] == "note"


def test_information_uri_from_extra() -> None:
    doc = _doc(sample_input(information_uri="https://example.org/kumo-audit"))
    assert doc["runs"][0]["tool"]["driver"]["informationUri"] == "https://example.org/kumo-audit"


def test_results() -> None:
    doc = _doc(sample_input(path_prefix="mta/"))
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert len(results) == 6
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert set(result["partialFingerprints"]) == {FINGERPRINT_KEY}
    by_msg = {r["message"]["text"]: r for r in results}
    multi = by_msg["second handler for 'smtp_server_message_received'"]
    assert multi["level"] == "error"
    loc = multi["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "mta/init.lua", "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 20, "startColumn": 1, "endLine": 26, "endColumn": 4}
    info = by_msg["informational note"]
    assert info["level"] == "note"
    odd = next(r for r in results if r["ruleId"] == "X001")
    uri = odd["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "mta/policy/sub%20dir/%C3%A9.lua"
    expected_fp = sample_input().findings[0].fingerprint
    assert (
        by_msg["unknown function kumo.foo"]["partialFingerprints"][FINGERPRINT_KEY] == expected_fp
    )


def test_suppressions() -> None:
    results = _doc(sample_input())["runs"][0]["results"]
    by_msg = {r["message"]["text"]: r for r in results}
    inline = by_msg["duplicate handler"]["suppressions"]
    assert inline[0]["kind"] == "inSource"
    assert inline[0]["justification"] == "legacy handler, removed in OPS-7"
    assert inline[0]["properties"]["ticket"] == "OPS-7"
    waived = by_msg["waived thing"]["suppressions"]
    assert waived[0]["kind"] == "external"
    assert waived[0]["justification"] == "vendor requires it"
    assert "suppressions" not in by_msg["unknown function kumo.foo"]


def test_end_to_end_cli(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "local kumo = require 'kumo'\nlocal m = require 'nope'\n"})
    proc = run_cli("check", str(tmp_path), "--format", "sarif")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    results = doc["runs"][0]["results"]
    assert [
        (r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in results
    ] == [("E104", 2)]
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "init.lua"
    again = run_cli("check", str(tmp_path), "--format", "sarif")
    assert again.stdout == proc.stdout
    validator = _schema_validator()
    validator.validate(doc)
