"""E2xx rules on small real policy trees, run through the whole check pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import audit, codes_at, write_tree

SOURCES = "[source.'ip-1']\nsource_address = '10.0.0.1'\n\n[pool.'main'.'ip-1']\nweight = 1\n"


def findings(tmp_path: Path, code: str, files: dict[str, str]) -> list[tuple[str, int, int]]:
    write_tree(tmp_path, files)
    return codes_at(audit(tmp_path).findings, code)


# ----- E201 ----------------------------------------------------------------------------------------------


def test_e201_policy_handler_after_sources_helper(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E201",
        {
            "init.lua": """
            local sources = require 'policy-extras.sources'
            sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
            kumo.on('get_egress_pool', function(name)
              return kumo.make_egress_pool { name = name, entries = {} }
            end)
            """,
            "sources.toml": SOURCES,
        },
    )
    assert got == [("E201", 3, 9)]
    result = audit(tmp_path)
    (finding,) = [f for f in result.findings if f.code == "E201"]
    assert "sources:setup" in finding.message and "init.lua:2" in finding.message


def test_e201_two_policy_handlers_across_modules(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E201",
        {
            "init.lua": """
            kumo.on('smtp_server_ehlo', function(domain) end)
            require 'extra'
            kumo.on('get_queue_config', function() end)
            """,
            "extra.lua": """
            local kumo = require 'kumo'
            kumo.on('get_queue_config', function() end)
            kumo.on('smtp_server_ehlo', function(domain) end)
            """,
        },
    )
    # the required module runs at its require (line 2), after the entry's line-1 handler
    assert got == [("E201", 3, 9)]
    result = audit(tmp_path)
    (finding,) = [f for f in result.findings if f.code == "E201"]
    assert finding.path == "extra.lua" and "init.lua:1" in finding.message


def test_e201_quiet_for_multi_handler_events_and_exclusive_branches(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E201",
        {
            "init.lua": """
            kumo.on('pre_init', function() end)
            kumo.on('pre_init', function() end)
            kumo.on('get_queue_config', function() end)
            kumo.on('get_queue_config', function() end)
            if os.getenv('LMTP') then
              kumo.on('get_egress_path_config', function() end)
            else
              kumo.on('get_egress_path_config', function() end)
            end
            """
        },
    )
    assert got == []


def test_e201_log_hook_constructor_collides_with_policy_constructor(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E201",
        {
            "init.lua": """
            local log_hooks = require 'policy-extras.log_hooks'
            log_hooks:new { name = 'webhook', constructor = function(domain) end }
            kumo.on('make.webhook.log_hook', function(domain) end)
            """
        },
    )
    assert got == [("E201", 3, 9)]


# ----- E202 ----------------------------------------------------------------------------------------------


def test_e202_registration_and_helper_setup_inside_handlers(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E202",
        {
            "init.lua": """
            kumo.on('init', function()
              local listener_domains = require 'policy-extras.listener_domains'
              kumo.on('get_listener_domain', listener_domains:setup { '/opt/kumomta/etc/policy/d.toml' })
            end)
            local function late()
              kumo.on('smtp_server_ehlo', function() end)
            end
            kumo.on('smtp_server_mail_from', function() late() end)
            """,
            "d.toml": "['example.com']\nrelay_to = true\n",
        },
    )
    assert got == [("E202", 2, 28), ("E202", 3, 3), ("E202", 3, 34), ("E202", 6, 3)]


def test_e202_quiet_at_file_level_and_for_cached_require(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E202",
        {
            "init.lua": """
            local queue_module = require 'policy-extras.queue'
            local utils = require 'policy-extras.policy_utils'
            local function register() kumo.on('smtp_server_ehlo', function() end) end
            register()
            kumo.on('init', function()
              local again = require 'policy-extras.queue' -- cached: already loaded at file level
              local u = require 'policy-extras.policy_utils'
            end)
            """
        },
    )
    assert got == []


# ----- E203 ----------------------------------------------------------------------------------------------


def test_e203_shaping_setup_twice_and_log_hook_name_twice(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E203",
        {
            "init.lua": """
            local shaping = require 'policy-extras.shaping'
            local log_hooks = require 'policy-extras.log_hooks'
            local shaper = shaping:setup_with_automation { no_default_files = true }
            kumo.on('get_egress_path_config', shaping:setup { })
            log_hooks:new_json { name = 'events', url = 'http://127.0.0.1:8090/' }
            log_hooks:new_json { name = 'events', url = 'http://127.0.0.1:8091/' }
            log_hooks:new_json { name = 'other', url = 'http://127.0.0.1:8092/' }
            """
        },
    )
    assert got == [("E203", 4, 35), ("E203", 6, 1)]


def test_e203_quiet_for_single_setups(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E203",
        {
            "init.lua": """
            local shaping = require 'policy-extras.shaping'
            local shaper = shaping:setup_with_automation { no_default_files = true }
            kumo.on('get_egress_path_config', shaper.get_egress_path_config)
            """
        },
    )
    assert got == []


# ----- E204 ----------------------------------------------------------------------------------------------


def test_e204_unknown_kumo_function_and_removed_helper_member(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local shaping = require 'policy-extras.shaping'
            local shaper = shaping:setup_with_automation { no_default_files = true }
            kumo.on('get_queue_config', shaper.get_queue_config)
            kumo.on('get_egress_source', function(name)
              return kumo.define_egress_source { name = name }
            end)
            local x = shaping.not_a_member
            """
        },
    )
    result = audit(tmp_path)
    assert codes_at(result.findings, "E204") == [("E204", 3, 29), ("E204", 5, 10), ("E204", 7, 11)]
    by_line = {f.line: f.message for f in result.findings if f.code == "E204"}
    assert "kumo.make_egress_source" in by_line[5]
    assert "removed" in by_line[3]


def test_e204_quiet_for_real_api_namespaces_and_policy_defined_members(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E204",
        {
            "init.lua": """
            local kumo = require 'kumo'
            local fs = kumo.fs
            kumo.my_policy = {}
            function kumo.my_policy.helper() end
            kumo.my_policy.helper()
            local digest = kumo.digest.sha256('x')
            local queue_module = require 'policy-extras.queue'
            local q = queue_module:setup_with_options { file_names = {} }
            kumo.on('smtp_server_message_received', function(msg) q:apply(msg) end)
            """
        },
    )
    assert got == []


# ----- E205 ----------------------------------------------------------------------------------------------


def test_e205_typo_and_obsolete_event(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            kumo.on('smtp_server_mesage_received', function(msg) end)
            kumo.on('message_requeued', function(msg) end)
            kumo.on('invented_event_name', function() end)
            """
        },
    )
    result = audit(tmp_path)
    assert codes_at(result.findings, "E205") == [("E205", 1, 9), ("E205", 2, 9), ("E205", 3, 9)]
    messages = {f.line: f.message for f in result.findings if f.code == "E205"}
    assert "smtp_server_message_received" in messages[1]
    assert "requeue_message" in messages[2]


def test_e205_quiet_for_custom_events_defined_by_the_policy(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E205",
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.spawn_task { event_name = 'refresh_blocklist', args = {} }
              kumo.start_esmtp_listener {
                listen = '0.0.0.0:25',
                tls_private_key = { event_name = 'fetch_tls_key', event_args = { 'mx' } },
              }
            end)
            kumo.on('refresh_blocklist', function(args) end)
            kumo.on('fetch_tls_key', function(name) end)
            kumo.on('custom_delivery', function(domain, tenant, campaign) end)
            kumo.on('make.webhook', function(domain, tenant, campaign) end)
            kumo.on('log_disposition_audit', function(msg, record) end)
            kumo.on('get_queue_config', function(domain)
              return kumo.make_queue_config {
                protocol = { custom_lua = { constructor = 'custom_delivery' } },
              }
            end)
            """
        },
    )
    assert got == []


# ----- E206 / E207 ---------------------------------------------------------------------------------------


def test_e206_unknown_keys_at_top_level_and_in_nested_structs(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.start_esmtp_listener {
                listen = '0.0.0.0:25',
                relay_host = { '10.0.0.0/8' },
                peer = { ['10.1.0.0/16'] = { bannr = 'hi' } },
              }
            end)
            local cached = kumo.memoize(function() end, { name = 'user.x', ttl = 60, capacity = 1, ttl_seconds = 5 })
            """
        },
    )
    result = audit(tmp_path)
    assert codes_at(result.findings, "E206") == [("E206", 4, 5), ("E206", 5, 34), ("E206", 8, 88)]
    messages = [f.message for f in result.findings if f.code == "E206"]
    assert "relay_hosts" in messages[0] and "banner" in messages[1]


def test_e207_invalid_values(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E207",
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data', kind = 'Disk' }
              kumo.start_esmtp_listener {
                listen = '0.0.0.0:25',
                relay_hosts = { '127.0.0.1', '10.0.0.300/8' },
                client_timeout = '5 minuts',
              }
            end)
            kumo.on('get_egress_path_config', function()
              return kumo.make_egress_path { enable_tls = 'Sometimes', connection_limit = 10 }
            end)
            """
        },
    )
    assert got == [("E207", 2, 79), ("E207", 5, 34), ("E207", 6, 22), ("E207", 10, 47)]


def test_e206_e207_quiet_for_valid_and_computed_parameters(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local PORT = os.getenv('PORT')
            kumo.on('init', function()
              kumo.start_esmtp_listener {
                listen = '0.0.0.0:' .. PORT,
                relay_hosts = { '127.0.0.1', '::1', '10.0.0.0/8' },
                client_timeout = '5 minutes',
                peer = { ['10.1.0.0/16'] = { banner = 'hi', relay_hosts = { '10.1.0.0/16' } } },
                [os.getenv('EXTRA_KEY')] = true,
              }
            end)
            """
        },
    )
    result = audit(tmp_path)
    assert codes_at(result.findings, "E206") == [] and codes_at(result.findings, "E207") == []


@pytest.mark.parametrize("code", ["E201", "E202", "E203", "E204", "E205", "E206", "E207"])
def test_rule_metadata_is_complete(code: str) -> None:
    import auditor.rules  # noqa: F401
    from auditor.rules.registry import get

    rule_obj = get(code)
    assert rule_obj is not None and rule_obj.check is not None
    meta = rule_obj.meta
    assert meta.category == "api" and meta.severity.value == "error"
    assert all([meta.summary, meta.doc, meta.bad, meta.good, meta.fix])
    assert "kumo" in meta.doc.lower() and len(meta.doc) > 200


# ----- edges found by mutation testing -------------------------------------------------------------------


def test_e203_each_helper_counted_on_its_own(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E203",
        {
            "init.lua": """
            local shaping = require 'policy-extras.shaping'
            local sources = require 'policy-extras.sources'
            local queue = require 'policy-extras.queue'
            kumo.on('get_egress_path_config', shaping:setup { })
            sources:setup { }
            local q = queue:setup { }
            """
        },
    )
    assert got == []


def test_e203_log_hooks_by_name_kind_and_order(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E203",
        {
            "init.lua": """
            local hooks = require 'hooks'
            kumo.on('init', function()
              kumo.configure_log_hook { name = 'a' }
              kumo.configure_log_disposition_hook { name = 'a' }
              kumo.configure_log_hook { name = 'b' }
              kumo.configure_log_hook { name = 'b' }
              kumo.configure_log_hook { name = 'b' }
              kumo.configure_log_hook { name = 'early' }
            end)
            """,
            "hooks.lua": """
            kumo.configure_log_hook { name = 'early' }
            return {}
            """,
        },
    )
    # log hooks and disposition hooks share one list of names in kumod ('a' twice, of two kinds,
    # is reported); every repeat of 'b' is reported; 'early' is first configured by the module
    # required at line 1
    assert got == [("E203", 4, 3), ("E203", 6, 3), ("E203", 7, 3), ("E203", 8, 3)]


def test_e203_a_disposition_hook_named_like_a_helper_log_hook(tmp_path: Path) -> None:
    # log_hooks:new configures kumo.configure_log_hook { name = 'events' } (in pre_init);
    # kumod's disposition hooks are kept in the same list and refuse a name already there
    got = findings(
        tmp_path,
        "E203",
        {
            "init.lua": """
            local log_hooks = require 'policy-extras.log_hooks'
            log_hooks:new_json { name = 'events', url = 'http://127.0.0.1:8090/' }
            log_hooks:new_disposition_hook { name = 'audit', hook = function(msg, record) end }
            kumo.on('init', function()
              kumo.configure_log_disposition_hook { name = 'events' }
              kumo.configure_log_hook { name = 'audit' }
              kumo.configure_log_hook { name = 'other' }
            end)
            """
        },
    )
    assert got == [("E203", 5, 3), ("E203", 6, 3)]


def test_function_key_resolves_literal_function_references(tmp_path: Path) -> None:
    from auditor.rules.api_use import function_key

    write_tree(
        tmp_path,
        {
            "init.lua": "local util = require 'util'\nfunction on_init() end\n",
            "util.lua": "function shared_handler(msg) end\nreturn {}\n",
        },
    )
    model = audit(tmp_path).context.model
    fid = model.modules["util.lua"].facts.global_functions["shared_handler"]
    assert function_key(model, "init.lua", ("global", "shared_handler")) == ("util.lua", fid)
    assert function_key(model, "init.lua", ("memoized", "global", "shared_handler")) == (
        "util.lua",
        fid,
    )
    assert function_key(model, "init.lua", ("fn", 3)) == ("init.lua", 3)
    assert function_key(model, "init.lua", ("memoized", "fn", 3)) == ("init.lua", 3)
    for ref in (
        ("global", "missing"),
        ("fn", "3"),
        ("fn", "shared_handler"),
        ("local", "shared_handler"),
        ("fn",),
        ("global", "a", "b"),
        (),
        "fn",
        None,
    ):
        assert function_key(model, "init.lua", ref) is None, ref


def test_e201_registrations_made_by_requiring_a_helper_and_by_its_options(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local shaping = require 'policy-extras.shaping'
            local util = require 'util'
            local shaper = shaping:setup_with_automation {
              publish = { 'http://127.0.0.1:8008' },
              no_default_files = true,
            }
            kumo.on('kumo.tsa.suspension.subscriber', function(args) end)
            kumo.on('make.http://127.0.0.1:8008.tsa.kumomta', function(domain) end)
            kumo.on('make.http://127.0.0.1:9999.tsa.kumomta', function(domain) end)
            """,
            # required twice: the module's top level (and its kumo.on calls) runs once
            "util.lua": "local shaping = require 'policy-extras.shaping'\nreturn {}\n",
        },
    )
    result = audit(tmp_path)
    # every event the helper registers when required counts, not only the first one; the
    # event named from the `publish` list collides, one for another URL does not
    assert codes_at(result.findings, "E201") == [("E201", 7, 9), ("E201", 8, 9)]
    keys = sorted(f.key for f in result.findings if f.code == "E201")
    assert keys == [
        "kumo.tsa.suspension.subscriber kumo.on after require 'policy-extras.shaping'",
        "make.http://127.0.0.1:8008.tsa.kumomta kumo.on after shaping:setup_with_automation",
    ]


def test_e202_key_names_every_handler_the_setup_runs_in(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local shaping = require 'policy-extras.shaping'
            local function late()
              shaping:setup { }
            end
            kumo.on('smtp_server_ehlo', function() late() end)
            kumo.on('smtp_server_mail_from', function() late() end)
            """
        },
    )
    result = audit(tmp_path)
    assert codes_at(result.findings, "E202") == [("E202", 3, 3)]
    (finding,) = [f for f in result.findings if f.code == "E202"]
    assert finding.key == "shaping:setup in smtp_server_ehlo,smtp_server_mail_from"


def test_e204_other_modules_and_calls_of_the_helper_module_do_not_stop_the_check(
    tmp_path: Path,
) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local util = require 'util'
            local shaping = require 'policy-extras.shaping'
            util.foo.bar()
            local a = shaping().x
            kumo.define_egress_source { name = 'x' }
            local z = shaping.nope
            """,
            "util.lua": "return {}\n",
        },
    )
    result = audit(tmp_path)
    # a member of a non-helper module and a member of what calling the helper module returns
    # are not helper members: nothing to report there, and the uses after them are checked
    assert codes_at(result.findings, "E204") == [("E204", 5, 1), ("E204", 6, 11)]


def test_e204_suggestion_cutoff(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local a = kumo.spawn_txyz { }
            local b = kumo.spawn { }
            """
        },
    )
    result = audit(tmp_path)
    assert codes_at(result.findings, "E204") == [("E204", 1, 11), ("E204", 2, 11)]
    by_line = {f.line: f for f in result.findings if f.code == "E204"}
    # similarity 0.7 to spawn_task (the last that is suggested), then 0.67 (not suggested)
    assert "kumo.spawn_task" in by_line[1].message and "kumo.spawn_task" in by_line[1].fix
    assert "spawn_task" not in by_line[2].message and "spawn_task" not in by_line[2].fix


def test_e206_key_of_a_nested_struct_names_its_parents(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.start_esmtp_listener {
                listen = '0.0.0.0:25',
                peer = { ['10.1.0.0/16'] = { bannr = 'hi' } },
              }
            end)
            """
        },
    )
    result = audit(tmp_path)
    assert codes_at(result.findings, "E206") == [("E206", 4, 34)]
    (finding,) = [f for f in result.findings if f.code == "E206"]
    assert finding.key == "kumo.start_esmtp_listener peer['10.1.0.0/16'].bannr"


# ----- load order across modules (LoadOrder) ------------------------------------------------------------


def test_e201_a_required_module_runs_at_its_require_not_at_its_line(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            require 'a'
            require 'b'
            kumo.on('smtp_server_ehlo', function() end)
            """,
            "a.lua": "return {}\n",
            # b's handler is on line 5 of b.lua, but b.lua runs at init.lua line 2
            "b.lua": "\n\n\n\nkumo.on('smtp_server_ehlo', function() end)\nreturn {}\n",
        },
    )
    result = audit(tmp_path)
    assert [(f.path, f.line, f.column) for f in result.findings if f.code == "E201"] == [
        ("init.lua", 3, 9)
    ]


def test_e201_only_a_require_that_runs_places_a_module(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local function never() require 'b' end
            require 'a'
            kumo.on('smtp_server_ehlo', function() end)
            require 'b'
            """,
            "a.lua": "return {}\n",
            "b.lua": "kumo.on('smtp_server_ehlo', function() end)\nreturn {}\n",
        },
    )
    result = audit(tmp_path)
    # b runs at line 4 (the require in `never` never runs; a's require is not b's)
    assert [(f.path, f.line, f.column) for f in result.findings if f.code == "E201"] == [
        ("b.lua", 1, 9)
    ]


@pytest.mark.parametrize("first", ["", "kumo.on('smtp_server_mail_from', function() end)\n"])
def test_e201_through_a_require_cycle(tmp_path: Path, first: str) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            require 'a'
            kumo.on('smtp_server_ehlo', function() end)
            """,
            # with a handler in a.lua, a's place is looked up before b's, from inside the cycle
            "a.lua": first + "require 'b'\nreturn {}\n",
            "b.lua": "require 'a'\nkumo.on('smtp_server_ehlo', function() end)\nreturn {}\n",
        },
    )
    result = audit(tmp_path)
    # the load order walks the cycle once; which of the two comes first is not defined (Lua
    # cannot load a cycle: E105), but the duplicate is reported once
    assert sorted(f.code for f in result.findings if f.code in ("E105", "E201")) == ["E105", "E201"]


def test_e203_a_required_module_configures_first(tmp_path: Path) -> None:
    module = (
        "local log_hooks = require 'policy-extras.log_hooks'\n"
        "local shaping = require 'policy-extras.shaping'\n"
        "{pad}log_hooks:new {{ name = 'a', constructor = function() end }}\n"
        "kumo.configure_log_hook {{ name = 'b' }}\n"
        "shaping:setup {{ }}\n"
    )
    write_tree(
        tmp_path,
        {
            "init.lua": "require 'm'\n" + module.format(pad=""),
            "m.lua": module.format(pad="\n" * 8) + "return {}\n",
        },
    )
    result = audit(tmp_path)
    # m.lua runs at init.lua line 1, so the setups in init.lua (lines 4-6) are the second ones
    assert [(f.path, f.line, f.column) for f in result.findings if f.code == "E203"] == [
        ("init.lua", 4, 1),
        ("init.lua", 5, 1),
        ("init.lua", 6, 1),
    ]


# ----- branches of E201 / E202 / E203 -------------------------------------------------------------------


def test_e201_conditional_registrations(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E201",
        {
            "init.lua": """
            kumo.on('smtp_server_ehlo', function() end)
            if os.getenv('X') then
              kumo.on('smtp_server_ehlo', function() end)
            end
            if os.getenv('Y') then
              kumo.on('smtp_server_mail_from', function() end)
            else
              kumo.on('smtp_server_mail_from', function() end)
            end
            kumo.on('smtp_server_mail_from', function() end)
            if os.getenv('Z') then
              kumo.on('smtp_server_rcpt_to', function() end)
            end
            kumo.on('smtp_server_rcpt_to', function() end)
            """
        },
    )
    # quiet only when both registrations are conditional; one after two exclusive ones is not
    assert got == [("E201", 3, 11), ("E201", 10, 9), ("E201", 14, 9)]


def test_e201_registrations_after_ones_made_inside_handlers(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E201",
        {
            "init.lua": """
            kumo.on('init', function() kumo.on('smtp_server_ehlo', function() end) end)
            local function in_init()
              local log_hooks = require 'policy-extras.log_hooks'
              log_hooks:new { name = 'early', constructor = function() end }
            end
            kumo.on('pre_init', in_init)
            local log_hooks = require 'policy-extras.log_hooks'
            log_hooks:new { name = 'late', constructor = function() end }
            kumo.on('make.late.log_hook', function() end)
            kumo.on('smtp_server_mail_from', function() end)
            kumo.on('smtp_server_mail_from', function() end)
            """
        },
    )
    # registrations inside handlers are E202's; the file-level ones after them still count
    assert got == [("E201", 9, 9), ("E201", 11, 9)]


def test_e201_dynamic_events_only_from_string_options(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E201",
        {
            "init.lua": """
            local shaping = require 'policy-extras.shaping'
            local shaper = shaping:setup_with_automation {
              publish = { 8008, 'http://t' },
              no_default_files = true,
            }
            kumo.on('make.http://t.tsa.kumomta', function() end)
            kumo.on('make.8008.tsa.kumomta', function() end)
            """
        },
    )
    assert got == [("E201", 6, 9)]


def test_e202_keys_name_handlers_and_event_and_skip_other_modules(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local function reg()
              kumo.on('smtp_server_ehlo', function() end)
              kumo.on(os.getenv('EVENT'), function() end)
              local u = require 'util'
              local s = require 'policy-extras.shaping'
            end
            kumo.on('smtp_server_mail_from', function() reg() end)
            kumo.on('smtp_server_rcpt_to', function() reg() end)
            """,
            "util.lua": "return {}\n",
        },
    )
    result = audit(tmp_path)
    got = sorted((f.line, f.column, f.key) for f in result.findings if f.code == "E202")
    # a computed event name is keyed as '?'; requiring a module that is not a helper is fine
    assert got == [
        (2, 3, "kumo.on in smtp_server_mail_from,smtp_server_rcpt_to smtp_server_ehlo"),
        (3, 3, "kumo.on in smtp_server_mail_from,smtp_server_rcpt_to ?"),
        (5, 13, "require policy-extras.shaping in smtp_server_mail_from,smtp_server_rcpt_to"),
    ]


def test_e203_conditional_setups_after_a_log_hook(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "E203",
        {
            "init.lua": """
            local shaping = require 'policy-extras.shaping'
            local log_hooks = require 'policy-extras.log_hooks'
            log_hooks:new { name = 'x', constructor = function() end }
            shaping:setup { }
            if os.getenv('A') then
              shaping:setup { }
            end
            if os.getenv('B') then
              log_hooks:new { name = 'y', constructor = function() end }
            else
              log_hooks:new { name = 'y', constructor = function() end }
            end
            log_hooks:new_disposition_hook { name = 'x', hook = function() end }
            """
        },
    )
    # a conditional second setup after an unconditional first is reported; two exclusive ones
    # are not; the helper refuses a name any of its methods configured
    assert got == [("E203", 6, 3), ("E203", 13, 1)]


# ----- events the policy defines in helper data ---------------------------------------------------------


def _nested(depth: int, leaf: dict[str, str]) -> object:
    value: object = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize(("depth", "found"), [(61, True), (62, False)])
def test_e205_custom_events_from_helper_data(tmp_path: Path, depth: int, found: bool) -> None:
    import json

    data = {
        "queue": {
            "example.com": {
                "protocol": {"custom_lua": {"constructor": "custom_delivery"}},
                "egress_pool": "pool_name_not_an_event",
            }
        },
        # the walk stops 64 levels down: this constructor is at level 3 + depth
        "tenant": {"t": {"x": _nested(depth, {"constructor": "deep_event"})}},
    }
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local queue = require 'policy-extras.queue'
            local q = queue:setup_with_options {
              file_names = { '/opt/kumomta/etc/policy/queues.json' },
            }
            kumo.on('custom_delivery', function(domain, tenant, campaign) end)
            kumo.on('pool_name_not_an_event', function() end)
            kumo.on('deep_event', function() end)
            """,
            "queues.json": json.dumps(data),
        },
    )
    result = audit(tmp_path)
    expected = [("E205", 6, 9)] + ([] if found else [("E205", 7, 9)])
    assert codes_at(result.findings, "E205") == expected


def test_e201_each_log_hooks_method_registers_its_own_event(tmp_path: Path) -> None:
    # new / new_json register the constructor make.<name>.log_hook; new_disposition_hook
    # registers log_disposition_<name> (K:assets/policy-extras/log_hooks.lua), not both
    got = findings(
        tmp_path,
        "E201",
        {
            "init.lua": """
            local log_hooks = require 'policy-extras.log_hooks'
            log_hooks:new { name = 'events', constructor = function() end }
            log_hooks:new_disposition_hook { name = 'audit', hook = function(msg, record) end }
            kumo.on('log_disposition_events', function(msg, record) end)
            kumo.on('make.audit.log_hook', function() end)
            kumo.on('make.events.log_hook', function() end)
            kumo.on('log_disposition_audit', function(msg, record) end)
            """
        },
    )
    assert got == [("E201", 6, 9), ("E201", 7, 9)]


def test_e204_e207_keys_name_exactly_the_bad_member_or_element(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local shaping = require 'policy-extras.shaping'
            local shaper = shaping:setup_with_automation { no_default_files = true }
            local x = shaper.bogus.field
            local y = shaper.get_queue_config.field
            local z = shaping.get_queue_config.field
            local w = shaping.nope.field
            kumo.on('init', function()
              kumo.configure_local_logs { log_dir = '/var/log/kumomta', per_record = { Delivery = 5 } }
              local a = kumo.build_local_logs { }
            end)
            """
        },
    )
    result = audit(tmp_path)
    got = sorted((f.code, f.line, f.column, f.key) for f in result.findings if f.code[:3] == "E20")
    # the key stops at the member that is wrong, not at what is read from it
    assert got == [
        ("E204", 3, 11, "helper policy-extras.shaping.setup_with_automation.().bogus"),
        ("E204", 4, 11, "helper policy-extras.shaping.setup_with_automation.().get_queue_config"),
        ("E204", 5, 11, "helper policy-extras.shaping.get_queue_config"),
        ("E204", 6, 11, "helper policy-extras.shaping.nope"),
        ("E204", 9, 13, "unknown kumo.build_local_logs"),
        ("E207", 8, 87, "kumo.configure_local_logs per_record['Delivery']"),
    ]
    (build,) = [f for f in result.findings if f.code == "E204" and f.line == 9]
    # the same object with another verb (no name is similar enough to suggest otherwise)
    assert "kumo.configure_local_logs" in build.fix
