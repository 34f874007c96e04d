"""Effective shaping: KumoMTA's merge order over parsed shaping data, with file:line origins."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from auditor.data.effective_shaping import (
    BUNDLED_ORIGIN,
    HELPER_ORIGIN,
    ShapingLayer,
    effective_shaping,
    explain_shaping,
)
from auditor.data.locate import load_located
from tests.conftest import ROOT, audit, run_cli, write_tree


def layer(path: str, text: str) -> ShapingLayer:
    text = textwrap.dedent(text).lstrip("\n")
    located = load_located(text, "toml" if path.endswith(".toml") else "json")
    return ShapingLayer(path, located.value, located)


def as_map(settings) -> dict[str, tuple[object, str]]:  # type: ignore[no-untyped-def]
    return {s.key: (s.value, s.origin) for s in settings}


BASE = """
["default"]
connection_limit = 10
max_message_rate = "100/s"
additional_connection_limits = { "org-wide" = 500 }

["example.com"]
mx_rollup = false
connection_limit = 3
additional_connection_limits = { "example-only" = 2 }

["example.com".sources."ip-1"]
connection_limit = 1

[provider."acme-hosting"]
match = [{ DomainSuffix = ".example.com" }, { DomainSuffix = "example.com" }]
provider_connection_limit = 40
provider_max_message_rate = "1000/s"
max_deliveries_per_connection = 30

[provider."acme-hosting".sources."ip-1"]
provider_source_selection_rate = "50/s"
idle_timeout = "5s"
"""


def test_merge_order_and_origins() -> None:
    settings = effective_shaping([layer("shaping.toml", BASE)], "example.com")
    got = as_map(settings)
    assert got["connection_limit"] == (3, "shaping.toml:8")
    assert got["max_message_rate"] == ("100/s", "shaping.toml:3")
    assert got["max_deliveries_per_connection"] == (30, "shaping.toml:18")
    assert got["provider_name"] == ("acme-hosting", "shaping.toml:14")
    # throttle tables merge key by key across default, provider and domain
    assert got["additional_connection_limits.org-wide"] == (500, "shaping.toml:4")
    assert got["additional_connection_limits.example-only"] == (2, "shaping.toml:9")
    assert got['additional_connection_limits."shaping-provider-acme-hosting-<source>-limit"'] == (
        40,
        "shaping.toml:16",
    )
    assert got[
        'additional_message_rate_throttles."shaping-provider-acme-hosting-<source>-rate"'
    ] == (
        "1000/s",
        "shaping.toml:17",
    )
    assert got["refresh_strategy"] == ("Epoch", HELPER_ORIGIN)
    assert "idle_timeout" not in got  # source override only with a source


def test_source_overrides() -> None:
    report = explain_shaping([layer("shaping.toml", BASE)], "example.com", "ip-1")
    got = as_map(report.settings)
    assert got["connection_limit"] == (1, "shaping.toml:12")  # the domain's source override wins
    assert got["idle_timeout"] == ("5s", "shaping.toml:22")  # from the provider's source section
    key = "additional_source_selection_rates.shaping-provider-acme-hosting-ip-1-selection-rate"
    assert got[key] == ("50/s", "shaping.toml:21")
    assert "provider_source_selection_rate" not in got
    assert "additional_connection_limits.shaping-provider-acme-hosting-ip-1-limit" in got


def test_unmatched_domain_gets_defaults_only() -> None:
    got = as_map(effective_shaping([layer("shaping.toml", BASE)], "other.net"))
    assert got["connection_limit"] == (10, "shaping.toml:2")
    assert "provider_name" not in got


def test_replace_base_drops_earlier_settings() -> None:
    text = (
        BASE
        + '\n["replaced.example.com"]\nmx_rollup = false\nreplace_base = true\nconnection_limit = 7\n'
    )
    got = as_map(effective_shaping([layer("shaping.toml", text)], "replaced.example.com"))
    assert got == {
        "connection_limit": (7, "shaping.toml:27"),
        "refresh_strategy": ("Epoch", HELPER_ORIGIN),
    }


def test_later_files_merge_and_replace() -> None:
    first = layer("a.toml", '["default"]\nconnection_limit = 10\nidle_timeout = "60s"\n')
    second = layer(
        "b.json",
        """
        {
          "default": {"connection_limit": 4},
          "example.com": {"mx_rollup": false, "max_message_rate": "5/s"}
        }
        """,
    )
    got = as_map(effective_shaping([first, second], "example.com"))
    assert got["connection_limit"] == (4, "b.json:2")
    assert got["idle_timeout"] == ("60s", "a.toml:3")
    assert got["max_message_rate"] == ("5/s", "b.json:3")
    third = layer("c.toml", '["default"]\nreplace_base = true\ndata_timeout = "10s"\n')
    got = as_map(effective_shaping([first, third], "nowhere.example"))
    # the receiving ["default"] entry keeps its own replace_base flag, but the later file's
    # replace_base = true replaces what the earlier files said for the same name
    assert got == {
        "data_timeout": ("10s", "c.toml:3"),
        "refresh_strategy": ("Epoch", HELPER_ORIGIN),
    }


def test_mx_rollup_site_section_applies_before_domain_section() -> None:
    text = """
    ["example.com"]
    connection_limit = 5
    idle_timeout = "9s"
    """
    other = layer("b.toml", '["example.com"]\nmx_rollup = false\nconnection_limit = 6\n')
    report = explain_shaping([layer("a.toml", text), other], "example.com")
    got = as_map(report.settings)
    assert got["connection_limit"] == (6, "b.toml:3")
    assert got["idle_timeout"] == ("9s", "a.toml:3")
    assert any("mx_rollup = true" in note for note in report.notes)


def test_mx_provider_is_reported_not_applied() -> None:
    text = '[provider."big"]\nmatch = [{ MXSuffix = ".mx.big.example" }]\nconnection_limit = 2\n'
    report = explain_shaping([layer("s.toml", text)], "big.example")
    assert "connection_limit" not in as_map(report.settings)
    assert any("provider 'big' (s.toml:1)" in note and "DNS" in note for note in report.notes)


def test_automation_rules_accumulate() -> None:
    text = """
    ["default"]
    [["default".automation]]
    regex = "a"
    action = "Suspend"
    duration = "1h"

    ["example.com"]
    mx_rollup = false
    [["example.com".automation]]
    regex = "b"
    action = "Bounce"
    duration = "2h"
    """
    settings = effective_shaping([layer("s.toml", text)], "example.com")
    rules = [
        (s.key, s.value["regex"], s.origin) for s in settings if s.key.startswith("automation")
    ]
    assert rules == [("automation[0]", "a", "s.toml:2"), ("automation[1]", "b", "s.toml:9")]


POLICY = """
local shaping = require 'policy-extras.shaping'
kumo.on('get_egress_path_config', shaping:setup { '/opt/kumomta/etc/policy/shaping.toml' })
"""


def test_from_audit_context_with_bundled_defaults(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "policy/init.lua": POLICY,
            "policy/shaping.toml": '["gmail.com"]\nconnection_limit = 20\n',
        },
    )
    context = audit(root).context
    report = explain_shaping(context, "Gmail.com.")
    got = as_map(report.settings)
    assert report.domain == "gmail.com"
    assert report.files == [BUNDLED_ORIGIN, "policy/shaping.toml"]
    assert got["connection_limit"] == (20, "policy/shaping.toml:2")
    assert got["data_timeout"] == ("30s", BUNDLED_ORIGIN)
    assert got["enable_tls"] == ("Opportunistic", BUNDLED_ORIGIN)


def test_no_default_files(tmp_path: Path) -> None:
    policy = """
    local shaping = require 'policy-extras.shaping'
    local shaper = shaping:setup_with_automation {
      no_default_files = true,
      extra_files = { '/opt/kumomta/etc/policy/shaping.toml' },
    }
    kumo.on('get_egress_path_config', shaper.get_egress_path_config)
    """
    root = write_tree(
        tmp_path,
        {"policy/init.lua": policy, "policy/shaping.toml": '["default"]\nconnection_limit = 2\n'},
    )
    report = explain_shaping(audit(root).context, "x.example")
    assert report.files == ["policy/shaping.toml"]
    assert as_map(report.settings) == {
        "connection_limit": (2, "policy/shaping.toml:2"),
        "refresh_strategy": ("Epoch", HELPER_ORIGIN),
    }


def test_no_shaping_helper(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"init.lua": "kumo.on('init', function() end)\n"})
    report = explain_shaping(audit(root).context, "gmail.com")
    assert report.settings == [] and report.files == []
    assert "does not set up policy-extras.shaping" in report.notes[0]


def test_non_literal_files_are_noted(tmp_path: Path) -> None:
    policy = """
    local shaping = require 'policy-extras.shaping'
    local files = dofile('/opt/kumomta/etc/policy/files.lua')
    kumo.on('get_egress_path_config', shaping:setup(files))
    """
    root = write_tree(tmp_path, {"init.lua": policy})
    report = explain_shaping(audit(root).context, "gmail.com")
    assert report.files == [BUNDLED_ORIGIN]
    assert any("not named literally" in note for note in report.notes)


def test_cli_text_and_json() -> None:
    example = ROOT / "examples" / "acme-mta"
    done = run_cli("shaping", "gmail.com", str(example))
    assert done.returncode == 0, done.stderr
    assert "Effective shaping for gmail.com" in done.stdout
    assert "connection_limit = 20" in done.stdout and "policy/shaping.toml:" in done.stdout
    assert BUNDLED_ORIGIN in done.stdout
    done = run_cli(
        "shaping", "gmail.com", str(example), "--source", "mta1-warm-1", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    got = {s["key"]: (s["value"], s["origin"]) for s in doc["settings"]}
    assert got["connection_limit"][0] == 2
    assert got["connection_limit"][1].startswith("policy/shaping-overrides.json:")
    assert doc["source"] == "mta1-warm-1"


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    done = run_cli("shaping", "gmail.com", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    done = run_cli("shaping", "gmail.com", str(tmp_path))
    assert done.returncode == 2 and "no init.lua" in done.stderr
