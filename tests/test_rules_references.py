"""E401-E404: cross-file references, in TOML and JSON data, firing and not firing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import audit, codes_at, write_tree

SOURCES_POLICY = """
local sources = require 'policy-extras.sources'
local queue_module = require 'policy-extras.queue'
sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
kumo.on('smtp_server_message_received', function(msg)
  queue_helper:apply(msg)
end)
"""

SOURCES_TOML = """
[source."ip-1"]
source_address = "192.0.2.1"

[source."ip-2"]
source_address = "192.0.2.2"

[pool."bulk"."ip-1"]
weight = 1
[pool."bulk"."ip-9"]
weight = 2

[pool."transactional"."ip-2"]
"""

QUEUES_TOML = """
default_tenant = "system"

[tenant.'system']
egress_pool = "transactional"

[tenant.'acme']
egress_pool = "marketing"

[tenant.'acme'.campaigns.'spring']
egress_pool = "bulk"

[queue.'example.com']
egress_pool = "nowhere"

[queue.'example.com'.'acme']
egress_pool = "bulk"

[queue.'example.com'.'acme'.'autumn']
egress_pool = "gone"
"""


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    return write_tree(tmp_path, {"policy/init.lua": SOURCES_POLICY, **files})


def test_undefined_source_and_pool_toml(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"policy/sources.toml": SOURCES_TOML, "policy/queues.toml": QUEUES_TOML})
    findings = audit(root).findings
    assert codes_at(findings, "E4") == [
        ("E401", 9, 14),
        ("E402", 7, 15),
        ("E402", 13, 15),
        ("E402", 19, 15),
    ]
    by_code = {f.code: f for f in findings if f.code.startswith("E4")}
    assert by_code["E401"].path == "policy/sources.toml"
    assert "'ip-9'" in by_code["E401"].message
    assert "policy/sources.toml" in by_code["E402"].message
    assert {f.path for f in findings if f.code == "E402"} == {"policy/queues.toml"}


def test_defined_references_do_not_fire(tmp_path: Path) -> None:
    sources = SOURCES_TOML.replace('"ip-9"', '"ip-2"') + '\n[pool."marketing"."ip-1"]\n'
    queues = QUEUES_TOML.replace('"nowhere"', '"bulk"').replace('"gone"', '"marketing"')
    root = _tree(tmp_path, {"policy/sources.toml": sources, "policy/queues.toml": queues})
    assert codes_at(audit(root).findings, "E4") == []


def test_undefined_references_json(tmp_path: Path) -> None:
    sources = {
        "source": {"ip-1": {"source_address": "192.0.2.1"}},
        "pool": {"bulk": {"ip-1": {}, "ip-7": {"weight": 3}}},
    }
    queues = {"default_tenant": "nobody", "tenant": {"acme": {"egress_pool": "other"}}}
    policy = SOURCES_POLICY.replace("sources.toml", "sources.json").replace(
        "queues.toml", "queues.json"
    )
    root = write_tree(
        tmp_path,
        {
            "policy/init.lua": policy,
            "policy/sources.json": json.dumps(sources, indent=2),
            "policy/queues.json": json.dumps(queues, indent=2),
        },
    )
    findings = audit(root).findings
    assert codes_at(findings, "E4") == [("E401", 10, 7), ("E402", 5, 22), ("E403", 2, 21)]
    tenant = next(f for f in findings if f.code == "E403")
    assert tenant.path == "policy/queues.json"
    assert "[tenant.'nobody']" in tenant.message


def test_default_tenant_defined_does_not_fire(tmp_path: Path) -> None:
    queues = 'default_tenant = "acme"\n[tenant.acme]\nmax_age = "1 day"\n'
    root = _tree(tmp_path, {"policy/sources.toml": "", "policy/queues.toml": queues})
    assert codes_at(audit(root).findings, "E4") == []


def test_default_tenant_defined_in_a_second_queue_file(tmp_path: Path) -> None:
    policy = SOURCES_POLICY.replace(
        "'/opt/kumomta/etc/policy/queues.toml' }",
        "'/opt/kumomta/etc/policy/queues.toml', '/opt/kumomta/etc/policy/tenants.toml' }",
    )
    root = write_tree(
        tmp_path,
        {
            "policy/init.lua": policy,
            "policy/sources.toml": "",
            "policy/queues.toml": 'default_tenant = "acme"\n',
            "policy/tenants.toml": "[tenant.acme]\n",
        },
    )
    assert codes_at(audit(root).findings, "E4") == []


def test_make_queue_config_literal_pool(tmp_path: Path) -> None:
    policy = """
    local sources = require 'policy-extras.sources'
    sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
    kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
      if domain == 'example.com' then
        return kumo.make_queue_config { egress_pool = 'bulk' }
      end
      return kumo.make_queue_config { egress_pool = 'bluk' }
    end)
    """
    root = write_tree(tmp_path, {"policy/init.lua": policy, "policy/sources.toml": SOURCES_TOML})
    findings = audit(root).findings
    assert codes_at(findings, "E402") == [("E402", 7, 49)]
    finding = next(f for f in findings if f.code == "E402")
    assert finding.path == "policy/init.lua"
    assert "policy/sources.toml" in finding.message


def test_no_sources_helper_no_guess(tmp_path: Path) -> None:
    """Without the sources helper the pools are defined elsewhere: nothing to compare against."""
    policy = """
    local queue_module = require 'policy-extras.queue'
    local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
    kumo.on('get_egress_pool', function(name)
      return kumo.make_egress_pool { name = name, entries = { { name = 'unspecified' } } }
    end)
    kumo.on('smtp_server_message_received', function(msg) queue_helper:apply(msg) end)
    """
    queues = '[tenant.acme]\negress_pool = "anything"\n'
    root = write_tree(tmp_path, {"policy/init.lua": policy, "policy/queues.toml": queues})
    assert codes_at(audit(root).findings, "E4") == []


def test_non_literal_sources_list_no_guess(tmp_path: Path) -> None:
    policy = SOURCES_POLICY.replace(
        "sources:setup { '/opt/kumomta/etc/policy/sources.toml' }",
        "sources:setup { '/opt/kumomta/etc/policy/sources.toml', { pool = { extra = {} } } }",
    )
    root = _tree(tmp_path, {"policy/sources.toml": SOURCES_TOML, "policy/queues.toml": QUEUES_TOML})
    (root / "policy/init.lua").write_text(policy.lstrip("\n"), encoding="utf-8")
    findings = audit(root).findings
    assert codes_at(findings, "E4") == []


def test_unparsed_sources_file_no_guess(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"policy/sources.toml": '[pool."bulk"\n', "policy/queues.toml": QUEUES_TOML},
    )
    findings = audit(root).findings
    assert [c for c, *_ in codes_at(findings, "E4")] == []
    assert [c for c, *_ in codes_at(findings, "E103")] == ["E103"]


DKIM_POLICY = """
local dkim_sign = require 'policy-extras.dkim_sign'
local dkim_signer = dkim_sign:setup { '/opt/kumomta/etc/policy/dkim_data.toml' }
kumo.on('smtp_server_message_received', function(msg) dkim_signer(msg) end)
"""


def test_undefined_signature_toml(tmp_path: Path) -> None:
    dkim = """
    [base]
    selector = "s1"
    additional_signatures = ["esp", "platform"]

    [signature."esp"]
    domain = "esp.example"
    """
    root = write_tree(tmp_path, {"policy/init.lua": DKIM_POLICY, "policy/dkim_data.toml": dkim})
    findings = audit(root).findings
    assert codes_at(findings, "E4") == [("E404", 3, 33)]
    (finding,) = [f for f in findings if f.code == "E404"]
    assert '[signature."platform"]' in finding.message


def test_defined_signature_does_not_fire(tmp_path: Path) -> None:
    dkim = """
    [base]
    selector = "s1"
    additional_signatures = ["esp"]

    [signature."esp"]
    domain = "esp.example"
    """
    root = write_tree(tmp_path, {"policy/init.lua": DKIM_POLICY, "policy/dkim_data.toml": dkim})
    assert codes_at(audit(root).findings, "E4") == []


def test_undefined_signature_json(tmp_path: Path) -> None:
    dkim = {"base": {"selector": "s1", "additional_signatures": ["missing"]}, "signature": {}}
    policy = DKIM_POLICY.replace("dkim_data.toml", "dkim_data.json")
    root = write_tree(
        tmp_path,
        {"policy/init.lua": policy, "policy/dkim_data.json": json.dumps(dkim, indent=2)},
    )
    assert codes_at(audit(root).findings, "E4") == [("E404", 5, 7)]


CLEAN_POLICY = """
local kumo = require 'kumo'
local shaping = require 'policy-extras.shaping'
local queue_module = require 'policy-extras.queue'
local sources = require 'policy-extras.sources'
local dkim_sign = require 'policy-extras.dkim_sign'

sources:setup { '/opt/kumomta/etc/policy/egress_sources.toml' }
local dkim_signer = dkim_sign:setup { '/opt/kumomta/etc/policy/dkim_data.toml' }
local shaper = shaping:setup_with_automation {
  extra_files = { '/opt/kumomta/etc/policy/shaping.toml' },
}
local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }

kumo.on('init', function()
  kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data' }
  kumo.define_spool { name = 'meta', path = '/var/spool/kumomta/meta' }
  kumo.configure_local_logs { log_dir = '/var/log/kumomta' }
  kumo.start_esmtp_listener { listen = '0.0.0.0:25', relay_hosts = { '127.0.0.1' } }
  kumo.start_http_listener { listen = '127.0.0.1:8000' }
end)

kumo.on('get_egress_path_config', shaper.get_egress_path_config)

kumo.on('smtp_server_message_received', function(msg)
  queue_helper:apply(msg)
  dkim_signer(msg)
end)
"""


def test_documented_practice_is_clean(tmp_path: Path) -> None:
    files = {
        "policy/init.lua": CLEAN_POLICY,
        "policy/egress_sources.toml": """
            [source."ip-1"]
            source_address = "192.0.2.1"
            [source."ip-2"]
            source_address = "192.0.2.2"
            [pool."pool-1"."ip-1"]
            [pool."pool-2"."ip-2"]
            weight = 5
        """,
        "policy/queues.toml": """
            tenant_header = "X-Tenant"
            default_tenant = "default-tenant"
            [tenant.'default-tenant']
            egress_pool = 'pool-1'
            [tenant.'mytenant']
            egress_pool = 'pool-2'
            [queue.'gmail.com']
            max_age = '22 hours'
        """,
        "policy/dkim_data.toml": """
            [base]
            selector = 'dkim1024'
            additional_signatures = ["MyESPName"]
            [domain."example.com"]
            selector = 'dkim1024'
            [signature."MyESPName"]
            domain = "myesp.com"
        """,
        "policy/shaping.toml": """
            ["default"]
            connection_limit = 10
        """,
    }
    root = write_tree(tmp_path, files)
    findings = audit(root).findings
    assert codes_at(findings, "E4") == []


def test_e402_in_tenant_campaigns_and_queue_campaigns_with_option_file_lists(
    tmp_path: Path,
) -> None:
    policy = """
    local sources = require 'policy-extras.sources'
    local queue_module = require 'policy-extras.queue'
    sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
    local queue_helper = queue_module:setup_with_options {
      file_names = { '/opt/kumomta/etc/policy/queues.toml' },
    }
    """
    queues = """
    [tenant.'t1']
    egress_pool = 'bulk'
    [tenant.'t1'.campaigns.'c1']
    egress_pool = 'nope-1'

    [queue.'example.com']
    shrink_policy = [{ ShrinkIdleAfter = "1m" }]
    [queue.'example.com'.'t2']
    egress_pool = 'bulk'
    [queue.'example.com'.'t2'.'c2']
    egress_pool = 'nope-2'
    [queue.'example.com'.'t2'.campaigns]
    egress_pool = 'nope-3'
    """
    root = write_tree(
        tmp_path,
        {
            "policy/init.lua": policy,
            "policy/sources.toml": SOURCES_TOML,
            "policy/queues.toml": queues,
        },
    )
    findings = audit(root).findings
    assert [(f.path, f.line) for f in findings if f.code == "E402"] == [
        ("policy/queues.toml", 4),
        ("policy/queues.toml", 11),
    ]


# ----- edges found by mutation testing -------------------------------------------------------------------

REFERENCES_POLICY = """
local sources = require 'policy-extras.sources'
local queue_module = require 'policy-extras.queue'
sources:setup {files}
local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
"""
UNDEFINED_POOL_QUEUES = "[tenant.a]\negress_pool = 'x'\n"


def _references(
    tmp_path: Path, files: str, data: dict[str, str]
) -> list[tuple[str, str, int, int]]:
    policy = REFERENCES_POLICY.replace("{files}", files)
    write_tree(tmp_path, {"policy/init.lua": policy, **data})
    return sorted(
        (f.code, f.path, f.line, f.column)
        for f in audit(tmp_path).findings
        if f.code.startswith("E4") and not f.suppressed
    )


@pytest.mark.parametrize("names", [["a", "b"], ["a", "b", "c"]])
def test_every_file_searched_is_named(tmp_path: Path, names: list[str]) -> None:
    """The definitions are searched in every file of the helper: a finding names them all."""
    a = '[source."ip-1"]\nsource_address = "192.0.2.1"\n[pool."bulk"."ip-9"]\n'
    files = "{ " + ", ".join(f"'/opt/kumomta/etc/policy/{n}.toml'" for n in names) + " }"
    data = {f"policy/{n}.toml": "" for n in names}
    data |= {"policy/a.toml": a, "policy/queues.toml": UNDEFINED_POOL_QUEUES}
    assert _references(tmp_path, files, data) == [
        ("E401", "policy/a.toml", 3, 14),
        ("E402", "policy/queues.toml", 2, 15),
    ]
    for finding in (f for f in audit(tmp_path).findings if f.code in ("E401", "E402")):
        for name in names:
            assert f"policy/{name}.toml" in finding.message, (finding.code, name)


def test_e404_names_the_dkim_file_searched(tmp_path: Path) -> None:
    dkim = '[base]\nselector = "s1"\nadditional_signatures = ["missing"]\n'
    root = write_tree(tmp_path, {"policy/init.lua": DKIM_POLICY, "policy/dkim_data.toml": dkim})
    (finding,) = [f for f in audit(root).findings if f.code == "E404"]
    assert (finding.line, finding.column) == (3, 26)
    assert "policy/dkim_data.toml" in finding.message


def test_sources_list_computed_at_run_time_no_guess(tmp_path: Path) -> None:
    files = "(files())"
    policy_head = "local function files() return { '/opt/kumomta/etc/policy/a.toml' } end\n"
    data = {"policy/a.toml": SOURCES_TOML, "policy/queues.toml": UNDEFINED_POOL_QUEUES}
    write_tree(
        tmp_path,
        {"policy/init.lua": policy_head + REFERENCES_POLICY.replace("{files}", files), **data},
    )
    assert codes_at(audit(tmp_path).findings, "E4") == []


def test_sources_list_with_holes_or_non_sequence_keys_no_guess(tmp_path: Path) -> None:
    data = {
        "policy/a.toml": SOURCES_TOML,
        "policy/b.toml": "",
        "policy/queues.toml": UNDEFINED_POOL_QUEUES,
    }
    holes = "{ '/opt/kumomta/etc/policy/a.toml', nil, '/opt/kumomta/etc/policy/b.toml' }"
    assert _references(tmp_path, holes, data) == []
    keyed = "{ [2] = '/opt/kumomta/etc/policy/a.toml' }"
    assert _references(tmp_path, keyed, data) == []


def test_sources_file_outside_the_tree_or_not_a_table_no_guess(tmp_path: Path) -> None:
    queues = {"policy/queues.toml": UNDEFINED_POOL_QUEUES}
    assert _references(tmp_path / "outside", "{ '/srv/elsewhere/a.toml' }", queues) == []
    # a JSON file whose top level is a list (E302) defines nothing the rule can read
    root = tmp_path / "list"
    files = "{ '/opt/kumomta/etc/policy/sources.json' }"
    assert _references(root, files, {"policy/sources.json": "[]", **queues}) == []
    assert [f.code for f in audit(root).findings if f.path == "policy/sources.json"] == ["E302"]


def test_queue_file_names_option_wins_over_positional_entries(tmp_path: Path) -> None:
    """setup_with_options reads its files from `file_names`; a positional entry beside it is not a
    file it loads, so a computed one does not make the file list unknown."""
    policy = """
    local sources = require 'policy-extras.sources'
    local queue_module = require 'policy-extras.queue'
    sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
    local queue_helper = queue_module:setup_with_options {
      file_names = { '/opt/kumomta/etc/policy/queues.toml' },
      os.getenv('EXTRA'),
    }
    """
    queues = "default_tenant = 'nobody'\n[tenant.a]\negress_pool = 'x'\n"
    root = write_tree(
        tmp_path,
        {
            "policy/init.lua": policy,
            "policy/sources.toml": SOURCES_TOML,
            "policy/queues.toml": queues,
        },
    )
    found = [c for c in codes_at(audit(root).findings, "E40") if c[0] in ("E402", "E403")]
    assert found == [("E402", 3, 15), ("E403", 1, 18)]


def test_e402_tenants_after_a_shrink_policy_table_are_checked(tmp_path: Path) -> None:
    """A shrink_policy written as a table (E302: it is a list) is not a tenant section, and the
    tenant sections after it are still checked."""
    queues = """
    [queue.'example.com'.shrink_policy]
    ShrinkIdleAfter = "1m"
    egress_pool = 'not-a-tenant'
    [queue.'example.com'.'t2']
    egress_pool = 'nope-2'
    """
    root = _tree(tmp_path, {"policy/sources.toml": SOURCES_TOML, "policy/queues.toml": queues})
    findings = audit(root).findings
    assert [(f.path, f.line, f.column) for f in findings if f.code == "E402"] == [
        ("policy/queues.toml", 5, 15)
    ]


def test_an_empty_sources_list_defines_no_pool(tmp_path: Path) -> None:
    """sources:setup {} loads no file: every pool a queue names is undefined."""
    assert _references(tmp_path, "{}", {"policy/queues.toml": UNDEFINED_POOL_QUEUES}) == [
        ("E402", "policy/queues.toml", 2, 15)
    ]


def test_missing_sources_file_no_guess(tmp_path: Path) -> None:
    root = tmp_path
    files = "{ '/opt/kumomta/etc/policy/missing.toml' }"
    assert _references(root, files, {"policy/queues.toml": UNDEFINED_POOL_QUEUES}) == []
    assert codes_at(audit(root).findings, "E104") == [("E104", 3, 17)]


def test_dkim_data_without_a_base_section(tmp_path: Path) -> None:
    for dkim in ('[domain."example.com"]\nselector = "s1"\n', 'base = "s1"\n'):
        root = write_tree(tmp_path, {"policy/init.lua": DKIM_POLICY, "policy/dkim_data.toml": dkim})
        assert codes_at(audit(root).findings, "E404") == []
