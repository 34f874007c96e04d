"""E103 and E301-E303 on helper data files: exact code, line and column, firing and not firing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.data.locate import render_path
from auditor.data.validate import DataResult, detect_format, validate_data
from auditor.rules.registry import get

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def run(name: str, data_format: str) -> DataResult:
    path = FIXTURES / name
    return validate_data(str(path), path.read_text(encoding="utf-8"), data_format)


def codes(result: DataResult) -> list[tuple[str, int, int]]:
    return [(f.code, f.line, f.column) for f in result.findings]


@pytest.mark.parametrize(
    ("name", "data_format"),
    [
        ("shaping_good.toml", "shaping"),
        ("queues_good.toml", "queues"),
        ("sources_good.toml", "sources"),
        ("listener_domains_good.toml", "listener_domains"),
        ("dkim_good.toml", "dkim"),
    ],
)
def test_good_files_have_no_findings(name: str, data_format: str) -> None:
    result = run(name, data_format)
    assert result.findings == []
    assert isinstance(result.value, dict)


def test_shaping_bad_toml() -> None:
    result = run("shaping_bad.toml", "shaping")
    assert codes(result) == [
        ("E302", 2, 20),  # connection_limit = 0
        ("E301", 3, 1),  # max_message_rates
        ("E302", 4, 14),  # enable_tls = "Sometimes"
        ("E302", 5, 36),  # the second CIDR has host bits set
        ("E303", 7, 1),  # [gmail.com]
        ("E302", 10, 13),  # automation rule without duration
        ("E302", 12, 62),  # SetConfig value with a bad rate
        ("E301", 13, 1),  # treshold
        ("E301", 16, 46),  # Foo inside a match rule
        ("E302", 17, 29),  # provider_connection_limit = "many"
    ]
    messages = [f.message for f in result.findings]
    assert "did you mean 'max_message_rate'?" in messages[1]
    assert "'Sometimes' is not one of 'Opportunistic'" in messages[2]
    assert "Did you mean 192.168.1.0/24?" in messages[3]
    assert 'quote the domain: ["gmail.com"]' in messages[4]
    assert "missing required field 'duration'" in messages[5]
    assert "KumoMTA ignores it" in messages[7]


def test_unquoted_domain_hides_the_nested_table_noise() -> None:
    result = run("shaping_bad.toml", "shaping")
    # without E303 the nested table would also be an unknown field 'com' of a domain 'gmail'
    assert not any("'com'" in f.message and f.code == "E301" for f in result.findings)


def test_shaping_bad_json() -> None:
    result = run("shaping_bad.json", "shaping")
    assert codes(result) == [("E301", 4, 5), ("E302", 8, 19), ("E302", 10, 32)]
    assert "unknown automation action 'Explode'" in result.findings[2].message


def test_queues_bad() -> None:
    result = run("queues_bad.toml", "queues")
    assert codes(result) == [
        ("E301", 1, 1),  # tenant_heder
        ("E301", 5, 1),  # routing_domain is not a tenant option
        ("E301", 9, 1),  # max_agee: a scalar where only tenant tables may be
        ("E302", 10, 18),  # retry_interval = "soon"
        ("E303", 12, 1),  # [queue.example.com]
    ]
    assert "did you mean 'tenant_header'?" in result.findings[0].message
    assert "did you mean 'max_age'?" in result.findings[2].message
    assert '[queue."example.com"]' in result.findings[4].message


def test_queue_integer_duration_is_seconds() -> None:
    # max_age = 7 in the bad file is fine: integers are seconds
    result = run("queues_bad.toml", "queues")
    assert not any("max_age'" in f.message and f.line == 6 for f in result.findings)


def test_sources_bad_and_secrets_stay_secret() -> None:
    result = run("sources_bad.toml", "sources")
    assert codes(result) == [
        ("E302", 2, 18),
        ("E302", 3, 25),
        ("E301", 4, 1),
        ("E302", 7, 10),
        ("E301", 8, 1),
        ("E301", 10, 2),
    ]
    assert "12345" not in result.findings[1].message
    assert "did you mean 'ehlo_domain'?" in result.findings[2].message
    assert "did you mean 'pool'?" in result.findings[5].message


def test_secret_in_set_config_is_not_printed() -> None:
    text = (
        '[["default".automation]]\nregex = "x"\nduration = "1h"\n'
        'action = {SetConfig = {name = "smtp_auth_plain_password", value = {key_data = 1, x = "s3cret-pw"}}}\n'
    )
    result = validate_data("shaping.toml", text, "shaping")
    assert codes(result) == [("E302", 4, 67)]
    assert "s3cret-pw" not in result.findings[0].message


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{ key_data = 5 }", True),
        ('{ key_data = "Zk5dataSecret" }', False),
        ('{ vault_mount = 3, vault_path = "smtp/pw" }', True),
        ('{ vault_mount = "secret", vault_path = ["smtp"] }', True),
        ('{ vault_mount = "secret", vault_path = "smtp/pw", vault_token = 7 }', True),
        ('{ vault_mount = "secret", vault_path = "smtp/pw", vault_token = "Zk5tok" }', False),
        ('"/opt/kumomta/etc/smtp-pw"', False),
    ],
)
def test_key_source_members_are_strings(value: str, problem: bool) -> None:
    """Every field of a key source but event_args is a string in KumoMTA: a number there matches
    none of its shapes and the helper fails to load the file."""
    text = f'["relay.example"]\nsmtp_auth_plain_password = {value}\n'
    result = validate_data("shaping.toml", text, "shaping")
    got = [c for c in codes(result) if c[0] == "E302"]
    assert got == ([("E302", 2, 28)] if problem else [])
    assert all("Zk5" not in f.message for f in result.findings)


def test_key_source_json_null_is_an_absent_optional_field() -> None:
    ok = '{"relay.example": {"smtp_auth_plain_password": '
    ok += '{"vault_mount": "s", "vault_path": "p", "vault_address": null}}}'
    assert codes(validate_data("shaping.json", ok, "shaping")) == []
    bad = ok.replace('"vault_path": "p"', '"vault_path": null')
    assert [c[0] for c in codes(validate_data("shaping.json", bad, "shaping"))] == ["E302"]


def test_listener_domains_bad() -> None:
    result = run("listener_domains_bad.toml", "listener_domains")
    assert codes(result) == [
        ("E302", 2, 12),
        ("E301", 3, 1),
        ("E302", 6, 11),
        ("E302", 7, 15),
        ("E303", 9, 1),
    ]
    assert "did you mean 'relay_from'?" in result.findings[1].message


def test_dkim_bad() -> None:
    result = run("dkim_bad.toml", "dkim")
    assert codes(result) == [
        ("E301", 3, 1),  # algo is not allowed in [base]
        ("E302", 6, 10),  # policy = "TempFailIfNotInDNS"
        ("E301", 7, 1),  # key (the field is filename)
        ("E302", 8, 8),  # algo = "rsa"
        ("E302", 10, 12),  # signature without its required domain
    ]
    assert "'TempFailIfNotInDNS' is not one of 'Always'" in result.findings[1].message


def test_fingerprint_keys_are_semantic() -> None:
    text = '["gmail.com"]\nmax_message_rate = "fast"\n'
    moved = "\n\n# comment\n" + text
    first = validate_data("etc/shaping.toml", text, "shaping").findings
    second = validate_data("etc/shaping.toml", moved, "shaping").findings
    assert first[0].key == 'shaping.toml:["gmail.com"].max_message_rate'
    assert first[0].line != second[0].line
    assert first[0].fingerprint == second[0].fingerprint


def test_render_path() -> None:
    assert render_path(("default", "automation", 0, "duration")) == "default.automation[0].duration"
    assert render_path(("queue", "a.b", "t")) == 'queue."a.b".t'


# -- bad data ---------------------------------------------------------------------------------


def test_toml_syntax_error_is_e103_with_position() -> None:
    result = validate_data(
        "shaping.toml", '["default"]\nconnection_limit = 10\nmax = "100/s\n', "shaping"
    )
    assert result.value is None and result.located is None
    assert codes(result) == [
        ("E103", 3, 13)
    ]  # tomllib points at the end of the unterminated string
    assert result.findings[0].message.startswith("TOML syntax error")
    assert get("E103") is not None and not get("E103").meta.suppressible  # type: ignore[union-attr]


def test_toml_duplicate_table_is_e103() -> None:
    result = validate_data("x.toml", '["a.com"]\nrelay_to = true\n["a.com"]\n', "listener_domains")
    assert [f.code for f in result.findings] == ["E103"]
    assert result.findings[0].line == 3


def test_json_syntax_error() -> None:
    result = validate_data("x.json", '{\n  "a.com": {"relay_to": true,}\n}\n', "listener_domains")
    assert codes(result) == [("E103", 2, 30)]


def test_json_bom_is_reported_and_still_checked() -> None:
    text = '\ufeff{\n  "a.com": {"relay_too": true}\n}\n'
    result = validate_data("x.json", text, "listener_domains")
    assert codes(result) == [("E103", 1, 1), ("E301", 2, 13)]
    assert "byte order mark" in result.findings[0].message


def test_toml_bom_is_accepted() -> None:
    result = validate_data("x.toml", '\ufeff["a.com"]\nrelay_to = 1\n', "listener_domains")
    assert codes(result) == [("E302", 2, 12)]


def test_json_duplicate_keys() -> None:
    text = '{\n  "a.com": {"relay_to": true},\n  "a.com": {"relay_to": false}\n}\n'
    result = validate_data("x.json", text, "listener_domains")
    assert codes(result) == [("E103", 3, 3)]
    assert "duplicate key 'a.com'" in result.findings[0].message
    assert result.value == {"a.com": {"relay_to": False}}


def test_invalid_utf8() -> None:
    result = validate_data("x.json", b'{"a.com": {"relay_to": "\xff"}}', "listener_domains")
    assert codes(result) == [("E103", 1, 25)]
    assert "UTF-8" in result.findings[0].message


def test_yaml_named_file_is_parsed_as_json() -> None:
    assert detect_format("/opt/kumomta/etc/listener.yaml") == "json"
    assert detect_format("shaping.toml") == "toml"
    result = validate_data("listener.yaml", "a.com:\n  relay_to: true\n", "listener_domains")
    assert [f.code for f in result.findings] == ["E103"]


@pytest.mark.parametrize(
    ("text", "data_format", "expected"),
    [
        ('["a.com"] = 1', "listener_domains", None),
        ("a = [1]", "shaping", ("E301", 1, 1)),
        ("[[default]]\nconnection_limit = 1\n", "shaping", ("E301", 1, 3)),
        ('["a.com"]\nsources = [1, 2]\n', "shaping", ("E302", 2, 11)),
        (
            '[["a.com".automation]]\nregex = "x"\naction = "Suspend"\nduration = "1m"\ntrigger = [1]\n',
            "shaping",
            ("E302", 5, 11),
        ),
        ("[[tenant]]\n", "queues", ("E302", 1, 1)),
        ("[tenant.t]\ncampaigns = [{a = 1}]\n", "queues", ("E302", 2, 13)),
        ("[[source.a]]\n", "sources", ("E302", 1, 1)),
        ("[pool.p]\nx = [1]\n", "sources", ("E302", 2, 5)),
        ("[[base]]\n", "dkim", ("E302", 1, 1)),
    ],
)
def test_list_where_a_table_is_expected(
    text: str, data_format: str, expected: tuple[str, int, int] | None
) -> None:
    result = validate_data("x.toml", text, data_format)
    if expected is None:
        assert [f.code for f in result.findings] == ["E103"]
    else:
        assert codes(result) == [expected]
        assert (
            "expected" in result.findings[0].message
            or "must be tables" in result.findings[0].message
        )


def test_top_level_list_in_json() -> None:
    result = validate_data("x.json", "[1, 2]", "shaping")
    assert codes(result) == [("E302", 1, 1)]
    assert "expected a table" in result.findings[0].message


def test_deep_nesting_json() -> None:
    deep = '{"a.com": ' + "[" * 5000 + "]" * 5000 + "}"
    result = validate_data("x.json", deep, "listener_domains")
    assert [f.code for f in result.findings] == ["E103"]
    assert "nested" in result.findings[0].message
    assert result.findings[0].column == 10 + 128


def test_deep_nesting_toml() -> None:
    deep = "x = " + "[" * 5000 + "]" * 5000 + "\n"
    result = validate_data("x.toml", deep, "shaping")
    assert [f.code for f in result.findings] == ["E103"]


def test_json_129_levels_is_refused_128_is_accepted() -> None:
    def nested(levels: int) -> str:
        return '{"a.com": {"relay_from": ' + "[" * (levels - 2) + "]" * (levels - 2) + "}}"

    assert [f.code for f in validate_data("x.json", nested(129), "listener_domains").findings] == [
        "E103"
    ]
    assert all(
        f.code != "E103" for f in validate_data("x.json", nested(128), "listener_domains").findings
    )


def test_fifty_megabyte_file_is_handled() -> None:
    text = json.dumps(
        {
            "a.com": {"relay_to": True, "relay_from": ["10.0.0.0/8"]},
            "b.com": {"relay_to": "x" * 50_000_000},
        }
    )
    result = validate_data("big.json", text, "listener_domains")
    assert codes(result) == [("E302", 1, 83)]
    assert len(result.findings[0].message) < 200


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="unknown helper data format"):
        validate_data("x.toml", "", "nonsense")
