"""Published JSON Schemas: current, deterministic, and matching real output and data."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from auditor.commands.schema_files import GENERATORS, CheckOutput, generate, stale
from auditor.kumo.types import json_schema as type_expr_schema
from tests.conftest import ROOT, run_cli

SCHEMAS = ROOT / "schemas"
EXAMPLE = ROOT / "examples" / "acme-mta"


def _schema(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def test_checked_in_schemas_are_current() -> None:
    assert stale(SCHEMAS) == [], "run `kumo-audit schema --write` to regenerate schemas/"


def test_generation_is_deterministic() -> None:
    first, second = generate(), generate()
    assert first == second
    assert set(first) == set(GENERATORS)
    for text in first.values():
        assert text.endswith("}\n")
        doc = json.loads(text)
        assert json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text
        jsonschema.Draft202012Validator.check_schema(doc)


def test_check_json_output_matches_contract() -> None:
    done = run_cli("check", str(EXAMPLE), "--format", "json")
    assert done.returncode == 1, done.stderr  # the example has error findings
    doc = json.loads(done.stdout)
    CheckOutput.model_validate(doc)
    jsonschema.validate(doc, _schema("check-output.schema.json"))
    assert any(f["code"].startswith("E4") for f in doc["findings"])


def test_contract_rejects_broken_output() -> None:
    done = run_cli("check", str(EXAMPLE), "--format", "json")
    doc = json.loads(done.stdout)
    doc["findings"][0]["line"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, _schema("check-output.schema.json"))
    doc = json.loads(done.stdout)
    doc["surprise"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, _schema("check-output.schema.json"))


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("sources.toml", "data-sources.schema.json"),
        ("queues.toml", "data-queues.schema.json"),
        ("dkim_data.toml", "data-dkim.schema.json"),
        ("listener_domains.toml", "data-listener-domains.schema.json"),
        ("shaping-overrides.json", "data-shaping.schema.json"),
    ],
)
def test_example_data_matches_data_schemas(name: str, fmt: str) -> None:
    path = EXAMPLE / "policy" / name
    text = path.read_text(encoding="utf-8")
    value = json.loads(text) if name.endswith(".json") else tomllib.loads(text)
    jsonschema.validate(value, _schema(fmt))


def test_data_schema_rejects_unknown_key_and_bad_enum() -> None:
    schema = _schema("data-shaping.schema.json")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"gmail.com": {"max_messsage_rate": "1/s"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"gmail.com": {"enable_tls": "Sometimes"}}, schema)
    jsonschema.validate({"gmail.com": {"enable_tls": "Required", "connection_limit": 3}}, schema)


def test_config_schema_matches_a_configuration() -> None:
    schema = _schema("config.schema.json")
    jsonschema.validate(
        {"ignore": ["R103"], "thresholds": {"relay_ipv4_min_prefix": 24}, "bounds": [{"key": "x"}]},
        schema,
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"ignroe": ["R103"]}, schema)


def test_type_expressions() -> None:
    assert type_expr_schema("list(string)") == {"type": "array", "items": {"type": "string"}}
    assert type_expr_schema("enum(A|B)") == {"enum": ["A", "B"]}
    assert type_expr_schema("boolean|enum(Ignore|LogThenDrop)") == {
        "anyOf": [{"type": "boolean"}, {"enum": ["Ignore", "LogThenDrop"]}]
    }
    assert type_expr_schema("map(rate)")["additionalProperties"]["type"] == "string"


def test_schema_command_write_and_check(tmp_path: Path) -> None:
    target = tmp_path / "out"
    done = run_cli("schema", "--check", str(tmp_path))
    assert done.returncode == 1 and "stale:" in done.stderr
    done = run_cli("schema", "--write", str(target))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in target.iterdir()) == sorted(GENERATORS)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    assert (
        before["runbook-entry.schema.json"] == (SCHEMAS / "runbook-entry.schema.json").read_bytes()
    )
    assert run_cli("schema", "--check", str(target)).returncode == 0
    (target / "config.schema.json").write_text("{}\n", encoding="utf-8")
    done = run_cli("schema", "--check", str(target))
    assert done.returncode == 1 and "config.schema.json" in done.stderr
    assert run_cli("schema", "--write", str(target)).returncode == 0
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    done = run_cli("schema", "--check", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
