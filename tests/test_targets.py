"""Every target a user gives: a data file on its own (role from name, content or --kind), a Lua
module or snippet (module mode), a policy entry (policy mode); the output says which mode was used."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import audit, codes_at, run_cli, write_tree

SHAPING_BAD = """
# a shaping file with a typo
["gmail.com"]
conection_limit = 10
"""


def test_shaping_file_alone_is_audited_as_shaping_data(tmp_path: Path) -> None:
    write_tree(tmp_path, {"shaping.toml": SHAPING_BAD})
    proc = run_cli("check", str(tmp_path / "shaping.toml"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith("shaping.toml:3:1: E301 [error] unknown field 'conection_limit'")
    assert "E101" not in proc.stdout
    assert proc.stdout.rstrip().endswith("in 1 file (audited as a shaping data file)")


def test_clean_data_file_alone_passes_and_json_says_the_mode(tmp_path: Path) -> None:
    write_tree(tmp_path, {"custom-shaping.toml": '["gmail.com"]\nconnection_limit = 10\n'})
    proc = run_cli("check", str(tmp_path / "custom-shaping.toml"), "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["findings"] == []
    assert doc["tool"]["mode"] == "data:shaping"


def test_data_file_syntax_error_is_e103_not_e101(tmp_path: Path) -> None:
    write_tree(tmp_path, {"queues.toml": "[tenant.a\n"})
    result = audit(tmp_path, entry="queues.toml")
    assert result.mode == "data:queues"
    assert codes_at(result.findings) == [("E103", 1, 10)]


def test_role_from_content_when_the_name_does_not_tell(tmp_path: Path) -> None:
    # top-level `source`/`pool` tables are the sources helper's schema
    write_tree(
        tmp_path,
        {"ips.toml": '[source."ip-1"]\nsource_adress = "10.0.0.1"\n[pool.p."ip-1"]\nweight = 1\n'},
    )
    result = audit(tmp_path, entry="ips.toml")
    assert result.mode == "data:sources"
    assert codes_at(result.findings) == [("E301", 2, 1)]


def test_kind_option_overrides_and_unknown_role_is_a_one_line_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"x.json": '{"a": 1}\n'})
    proc = run_cli("check", str(tmp_path / "x.json"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "cannot tell which helper reads x.json" in proc.stderr
    assert "--kind" in proc.stderr
    proc = run_cli("check", str(tmp_path / "x.json"), "--kind", "queues")
    assert proc.returncode == 1
    assert proc.stdout.startswith("x.json:1:2: E301 [error] unknown field 'a'")
    assert "(audited as a queues data file)" in proc.stdout


def test_security_rules_apply_to_a_listener_domains_file_alone(tmp_path: Path) -> None:
    write_tree(tmp_path, {"listener_domains.toml": '["*"]\nrelay_to = true\n'})
    result = audit(tmp_path, entry="listener_domains.toml")
    assert codes_at(result.findings) == [("S102", 2, 1)]
    write_tree(tmp_path, {"listener_domains.toml": '["example.com"]\nrelay_to = true\n'})
    assert codes_at(audit(tmp_path, entry="listener_domains.toml").findings) == []


MODULE = """
local kumo = require 'kumo'
local M = {}
kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
return M
"""


def test_module_alone_is_audited_in_module_mode(tmp_path: Path) -> None:
    write_tree(tmp_path, {"listeners.lua": MODULE})
    result = audit(tmp_path, entry="listeners.lua")
    assert result.mode == "module"
    # no D101 (the policy requiring it may define the spools); R101 depends on where it is required
    (finding,) = [f for f in result.findings if not f.suppressed]
    assert (finding.code, finding.line, finding.column) == ("R101", 3, 1)
    assert finding.severity.value == "warning"
    assert "depends on where the policy requires it" in finding.message
    proc = run_cli("check", str(tmp_path / "listeners.lua"))
    assert proc.returncode == 0
    assert "(audited as a module: whole-policy rules off" in proc.stdout


def test_same_code_as_init_lua_is_audited_as_a_policy(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": MODULE})
    result = audit(tmp_path)
    assert result.mode == "policy"
    found = {(f.code, f.line, f.column, f.severity.value) for f in result.findings}
    assert ("R101", 3, 1, "error") in found
    assert ("D101", 3, 1, "error") in found


def test_a_file_registering_init_is_a_policy_whatever_its_name(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"sink.lua": "local kumo = require 'kumo'\nkumo.on('init', function() end)\n"},
    )
    assert audit(tmp_path, entry="sink.lua").mode == "policy"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_lint_hook_audits_a_data_file_the_policy_does_not_load(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": "local kumo = require 'kumo'\n",
            "extra/shaping.toml": SHAPING_BAD,
        },
    )
    _git(tmp_path, "init", "-q")
    proc = run_cli("hook", "lint", "extra/shaping.toml", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith("extra/shaping.toml:3:1: E301 [error]")


def test_lint_hook_without_a_policy_audits_files_alone(tmp_path: Path) -> None:
    write_tree(tmp_path, {"shaping.toml": '["gmail.com"]\nconnection_limit = 10\n'})
    _git(tmp_path, "init", "-q")
    proc = run_cli("hook", "lint", "shaping.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_pre_commit_with_only_a_data_file_staged_audits_it_alone(tmp_path: Path) -> None:
    write_tree(tmp_path, {"shaping.toml": SHAPING_BAD})
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "shaping.toml")
    proc = run_cli("hook", "pre-commit", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("shaping.toml:3:1: E301 unknown field 'conection_limit'")
    write_tree(tmp_path, {"shaping.toml": '["gmail.com"]\nconnection_limit = 10\n'})
    _git(tmp_path, "add", "shaping.toml")
    proc = run_cli("hook", "pre-commit", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# A module audited on its own (K:docs/userguide/configuration/dkim.md shows such a snippet: it names
# /opt/kumomta/etc/policy/dkim_data.toml, which lives in the policy tree it is deployed with).
SNIPPET = """
local dkim_sign = require 'policy-extras.dkim_sign'
local dkim_signer = dkim_sign:setup { '/opt/kumomta/etc/policy/dkim_data.toml' }
"""


def test_data_file_missing_beside_a_module_alone_is_a_warning(tmp_path: Path) -> None:
    write_tree(tmp_path, {"signing.lua": SNIPPET})
    result = audit(tmp_path, entry="signing.lua")
    assert result.mode == "module"
    (finding,) = [f for f in result.findings if f.code == "E104"]
    assert (finding.line, finding.column, finding.severity.value) == (2, 39, "warning")
    assert "audited as a module on its own" in finding.message
    # the same code as a policy entry: the file is missing from the policy's own tree
    write_tree(tmp_path, {"init.lua": SNIPPET})
    (finding,) = [f for f in audit(tmp_path).findings if f.code == "E104"]
    assert (finding.line, finding.column, finding.severity.value) == (2, 39, "error")


def test_required_module_missing_beside_a_module_alone_is_a_warning(tmp_path: Path) -> None:
    """A module audited alone may require modules of the tree it is deployed with: their absence
    is a warning there, and an error (require raises) in a policy."""
    code = "local util = require 'acme.util'\nreturn { pick = util.pick }\n"
    write_tree(tmp_path, {"routing.lua": code})
    result = audit(tmp_path, entry="routing.lua")
    assert result.mode == "module"
    (finding,) = [f for f in result.findings if f.code == "E104"]
    assert (finding.line, finding.column, finding.severity.value) == (1, 14, "warning")
    assert finding.key == "module:acme.util"
    write_tree(tmp_path, {"init.lua": code})
    (finding,) = [f for f in audit(tmp_path).findings if f.code == "E104"]
    assert (finding.line, finding.column, finding.severity.value) == (1, 14, "error")
    assert finding.key == "module:acme.util"
    # present beside it: nothing to report in either mode
    write_tree(tmp_path, {"acme/util.lua": "return { pick = function() end }\n"})
    assert [f for f in audit(tmp_path, entry="routing.lua").findings if f.code == "E104"] == []


# K:docs/reference/kumo/start_esmtp_listener.md: listeners are started in init; a module's top
# level runs where the policy requires it, and so does the top level of what it requires there.
def test_init_only_call_in_a_module_required_by_a_module_alone(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "wrapper.lua": "local listeners = require 'listeners'\nreturn {}\n",
            "listeners.lua": MODULE,
        },
    )
    result = audit(tmp_path, entry="wrapper.lua")
    assert result.mode == "module"
    found = [(f.path, f.code, f.line, f.column, f.severity.value) for f in result.findings]
    assert found == [("listeners.lua", "R101", 3, 1, "warning")]
    write_tree(tmp_path, {"init.lua": "local listeners = require 'listeners'\n"})
    found = [
        (f.path, f.code, f.line, f.column, f.severity.value)
        for f in audit(tmp_path).findings
        if f.code == "R101"
    ]
    assert found == [("listeners.lua", "R101", 3, 1, "error")]


# K:docs/reference/kumo/set_smtpsrv_threads.md: thread-pool sizes are set in pre_init.
THREADS = "local kumo = require 'kumo'\nkumo.set_smtpsrv_threads(12)\n"


def test_pre_init_setting_at_a_module_top_level_depends_on_where_it_is_required(
    tmp_path: Path,
) -> None:
    write_tree(tmp_path, {"threads.lua": THREADS})
    result = audit(tmp_path, entry="threads.lua")
    (finding,) = [f for f in result.findings if f.code == "R102"]
    assert (finding.line, finding.column, finding.severity.value) == (2, 1, "warning")
    assert "depends on where the policy requires it" in finding.message
    write_tree(tmp_path, {"init.lua": THREADS})
    (finding,) = [f for f in audit(tmp_path).findings if f.code == "R102"]
    assert (finding.line, finding.column) == (2, 1)
    assert "at file level it runs again for every new Lua context" in finding.message


def test_sarif_and_markdown_say_which_mode_was_used(tmp_path: Path) -> None:
    write_tree(tmp_path, {"listeners.lua": MODULE, "init.lua": "local kumo = require 'kumo'\n"})
    proc = run_cli("check", str(tmp_path / "listeners.lua"), "--format", "sarif")
    run = json.loads(proc.stdout)["runs"][0]
    assert run["properties"]["auditMode"] == "module"
    assert run["properties"]["auditModeDescription"].startswith("audited as a module")
    proc = run_cli("check", str(tmp_path / "listeners.lua"), "--format", "markdown")
    assert "(audited as a module: whole-policy rules off" in proc.stdout
    proc = run_cli("check", str(tmp_path / "init.lua"), "--format", "sarif")
    assert "properties" not in json.loads(proc.stdout)["runs"][0]
