"""False errors and wrong warnings that KumoMTA's own repository showed, each fixed against KumoMTA's
docs or source (the reference is in each test's comment); every fix fires and does not fire."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import audit, codes_at, write_tree


def _found(root: Path, prefix: str, **kwargs):  # type: ignore[no-untyped-def]
    return [
        (f.code, f.line, f.column, f.severity.value)
        for f in audit(root, **kwargs).findings
        if f.code.startswith(prefix) and not f.suppressed
    ]


# K:docs/reference/kumo/configure_local_logs/filter_event.md: filter_event names an event kumod fires
# to decide whether a record goes to that log.
FILTER_EVENT = """
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.configure_local_logs { log_dir = '/var/log/kumo', filter_event = 'should_log_smtp' }
end)
kumo.on('{event}', function(msg) return true end)
"""


def test_filter_event_handler_is_a_known_event(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": FILTER_EVENT.replace("{event}", "should_log_smtp")})
    assert _found(tmp_path, "E205") == []


def test_handler_for_an_event_no_filter_event_names_is_unknown(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": FILTER_EVENT.replace("{event}", "should_log_smpt")})
    assert _found(tmp_path, "E205") == [("E205", 5, 9, "error")]


# K:assets/policy-extras/queue.lua memoizes resolve_provider as 'queue.lua_resolve_provider': the
# helper's own cache, not a clash with the helper.
MEMOIZE = """
local kumo = require 'kumo'
local function resolve(domain) return domain end
local cached = kumo.memoize(resolve, { name = 'queue.lua_resolve_provider', ttl = '5m', capacity = 10 })
return {}
"""


def test_memoize_name_in_the_helper_that_owns_it_is_no_clash(tmp_path: Path) -> None:
    """The helper's own file audited alone uses its own cache name (a policy's `require` of the
    helper never loads a tree copy: see the R107 tests in test_rules_reload.py for copies in a tree)."""
    write_tree(tmp_path, {"queue.lua": MEMOIZE})
    assert _found(tmp_path, "R107", entry="queue.lua") == []
    write_tree(tmp_path, {"other.lua": MEMOIZE})
    assert _found(tmp_path, "R107", entry="other.lua") == [("R107", 3, 47, "error")]


def test_memoize_name_of_a_helper_in_the_policy_is_a_clash(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": MEMOIZE})
    assert _found(tmp_path, "R107") == [("R107", 3, 47, "error")]


# K:docs/reference/kumo/start_esmtp_listener/deferred_queue.md and
# K:docs/reference/events/smtp_server_message_deferred_inject.md: signing and queue assignment belong
# in smtp_server_message_deferred_inject; only for listeners whose connections are all trusted.
DEFERRED = """
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.define_spool { name = 'data', path = '/var/spool/kumo/data' }
  kumo.define_spool { name = 'meta', path = '/var/spool/kumo/meta' }
  kumo.start_esmtp_listener { listen = '{listen}', deferred_queue = true }
end)
"""
DEFERRED_HANDLER = "kumo.on('smtp_server_message_deferred_inject', function(msg) end)\n"


def test_deferred_queue_on_loopback_with_its_handler_is_info(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": DEFERRED.replace("{listen}", "127.0.0.1:25")})
    with (tmp_path / "init.lua").open("a") as f:
        f.write(DEFERRED_HANDLER)
    result = audit(tmp_path)
    (finding,) = [f for f in result.findings if f.code == "S107"]
    assert (finding.line, finding.column, finding.severity.value) == (5, 56, "info")
    assert "handles smtp_server_message_deferred_inject" in finding.message


def test_deferred_queue_on_a_public_listener_without_handler_is_a_warning(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": DEFERRED.replace("{listen}", "0.0.0.0:25")})
    result = audit(tmp_path)
    (finding,) = [f for f in result.findings if f.code == "S107"]
    assert (finding.line, finding.column, finding.severity.value) == (5, 54, "warning")
    assert "no smtp_server_message_deferred_inject handler" in finding.message
    assert "never on the public internet" in finding.message


# K:docs/reference/kumo.dns/load_resolv_conf.md: reads a file and returns a table; callable anywhere.
def test_load_resolv_conf_at_top_level_is_not_init_only(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"init.lua": "local kumo = require 'kumo'\nlocal cfg = kumo.dns.load_resolv_conf()\n"},
    )
    assert _found(tmp_path, "R101") == []


def test_configure_resolver_at_top_level_is_still_init_only(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": "local kumo = require 'kumo'\n"
            "local cfg = kumo.dns.load_resolv_conf()\n"
            "kumo.dns.configure_resolver(cfg)\n"
        },
    )
    assert _found(tmp_path, "R101") == [("R101", 3, 1, "error")]


# K:assets/policy-extras/log_hooks.lua: new/new_json register get_queue_config and
# should_enqueue_log_record; new_disposition_hook registers only pre_init (and its own event).
LOG_HOOKS = """
local kumo = require 'kumo'
local queue_module = require 'policy-extras.queue'
local log_hooks = require 'policy-extras.log_hooks'
queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
log_hooks:{method} { name = 'audit', {option} }
"""


def test_disposition_hook_after_the_queue_helper_registers_no_queue_handler(
    tmp_path: Path,
) -> None:
    policy = LOG_HOOKS.replace("{method}", "new_disposition_hook").replace(
        "{option}", "hook = function(msg) end"
    )
    write_tree(tmp_path, {"init.lua": policy, "queues.toml": ""})
    assert _found(tmp_path, "R106") == []


def test_log_hook_after_the_queue_helper_is_a_dead_handler(tmp_path: Path) -> None:
    policy = LOG_HOOKS.replace("{method}", "new").replace(
        "{option}", "constructor = function(domain) end"
    )
    write_tree(tmp_path, {"init.lua": policy, "queues.toml": ""})
    assert _found(tmp_path, "R106") == [("R106", 5, 1, "warning")]


# K:docs/reference/kumo/configure_log_hook.md: the documented example calls it in init.
LOG_HOOK_IN_INIT = """
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.start_esmtp_listener { listen = '127.0.0.1:25' }
  kumo.{call}
end)
"""


def test_configure_log_hook_in_init_after_a_listener_is_fine(tmp_path: Path) -> None:
    policy = LOG_HOOK_IN_INIT.replace("{call}", "configure_log_hook { name = 'webhook' }")
    write_tree(tmp_path, {"init.lua": policy})
    assert _found(tmp_path, "R102") == []
    assert _found(tmp_path, "R101") == []


def test_thread_setting_in_init_after_a_listener_is_late(tmp_path: Path) -> None:
    policy = LOG_HOOK_IN_INIT.replace("{call}", "set_smtpsrv_threads(8)")
    write_tree(tmp_path, {"init.lua": policy})
    assert _found(tmp_path, "R102") == [("R102", 4, 3, "warning")]


# K:crates/config/src/lib.rs load_config: kumod reads the policy (and what it opens by a relative
# path) from its working directory.
RELATIVE = """
local kumo = require 'kumo'
local sources = require 'policy-extras.sources'
sources:setup { '{path}' }
"""


def test_relative_data_path_found_from_the_audited_root(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "policy/init.lua": RELATIVE.replace("{path}", "data/sources.toml"),
            "data/sources.toml": '[source."a"]\nsource_address = "10.0.0.1"\n',
        },
    )
    assert _found(tmp_path, "E104") == []


def test_relative_data_path_found_nowhere_depends_on_the_working_directory(
    tmp_path: Path,
) -> None:
    write_tree(tmp_path, {"init.lua": RELATIVE.replace("{path}", "data/sources.toml")})
    result = audit(tmp_path)
    (finding,) = [f for f in result.findings if f.code == "E104"]
    assert (finding.line, finding.column, finding.severity.value) == (3, 17, "warning")
    assert "depends on where kumod is started" in finding.message


def test_absolute_data_path_missing_is_an_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": RELATIVE.replace("{path}", "/opt/kumomta/etc/sources.toml")})
    assert _found(tmp_path, "E104") == [("E104", 3, 17, "error")]


# Reachability (K:docs/reference/kumo/start_esmtp_listener/relay_hosts.md; listen.md): a listener
# bound to loopback is reachable only from the host itself.
RELAY = """
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.start_esmtp_listener { listen = '{listen}', relay_hosts = { '0.0.0.0/0' } }
end)
kumo.on('get_listener_domain', function(domain)
  return kumo.make_listener_domain { relay_to = true }
end)
"""


def test_open_relay_on_a_loopback_listener_is_a_warning(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": RELAY.replace("{listen}", "127.0.0.1:2025")})
    assert _found(tmp_path, "S10") == [("S101", 3, 74, "warning"), ("S102", 6, 38, "warning")]
    (finding,) = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert "bound to loopback only (127.0.0.1:2025)" in finding.message


def test_open_relay_on_every_interface_is_an_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": RELAY.replace("{listen}", "0.0.0.0:25")})
    assert _found(tmp_path, "S10") == [("S101", 3, 70, "error"), ("S102", 6, 38, "error")]


# A table constructor never stores nil (Lua 5.4 manual 3.4.9): `{ protocol = nil }` has no protocol;
# K:crates/integration-tests/mta-sts.lua passes `protocol = nil` to make_queue_config.
QUEUE_CONFIG = """
local kumo = require 'kumo'
kumo.on('get_queue_config', function(domain)
  return kumo.make_queue_config { protocol = {value}, retry_interval = '1m' }
end)
"""


def test_nil_field_is_not_passed(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": QUEUE_CONFIG.replace("{value}", "nil")})
    assert codes_at(audit(tmp_path).findings, "E20") == []


def test_wrong_typed_field_is_still_invalid(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": QUEUE_CONFIG.replace("{value}", "5")})
    assert codes_at(audit(tmp_path).findings, "E20") == [("E207", 3, 46)]


# K:docs/reference/kumo/make_egress_path/additional_source_selection_rates.md: a computed key.
def test_computed_table_key_is_no_internal_error(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local kumo = require 'kumo'
            kumo.on('get_egress_path_config', function(domain, source_name, site_name)
              return kumo.make_egress_path {
                additional_source_selection_rates = {
                  [string.format('overall-source-limit-%s', source_name)] = '10,000/day',
                },
              }
            end)
            """
        },
    )
    assert codes_at(audit(tmp_path).findings) == []


# Reachability for S107 (K:docs/reference/kumo/start_esmtp_listener/allow_xclient.md: use it only in
# a peer block; a listener bound to loopback is reachable only from the host itself).
XCLIENT = """
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.start_esmtp_listener { listen = '{listen}', allow_xclient = true }
end)
"""


def test_xclient_on_a_loopback_listener_is_a_warning(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": XCLIENT.replace("{listen}", "127.0.0.1:2025")})
    assert _found(tmp_path, "S107") == [("S107", 3, 58, "warning")]
    (finding,) = [f for f in audit(tmp_path).findings if f.code == "S107"]
    assert "bound to loopback only (127.0.0.1:2025)" in finding.message


def test_xclient_on_every_interface_is_an_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": XCLIENT.replace("{listen}", "0.0.0.0:25")})
    assert _found(tmp_path, "S107") == [("S107", 3, 54, "error")]
