"""Rxxx hot-reload rules on small real policy trees, run through the whole check pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.kumo.monitor import DEFAULT_GLOBS as DEFAULT_MONITOR_GLOBS
from auditor.kumo.monitor import glob_matches
from tests.conftest import audit, codes_at, write_tree

FIXTURES = Path(__file__).parent / "fixtures" / "rules_reload"


def findings(tmp_path: Path, code: str, files: dict[str, str]) -> list[tuple[str, int, int]]:
    write_tree(tmp_path, files)
    return codes_at(audit(tmp_path).findings, code)


# ----- R101 ----------------------------------------------------------------------------------------------


def test_r101_init_only_calls_at_file_level_and_in_realtime_handlers(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R101",
        {
            "init.lua": """
            kumo.configure_bounce_classifier { files = { '/opt/kumomta/share/iana.toml' } }
            local function start()
              kumo.start_http_listener { listen = '127.0.0.1:8000' }
            end
            kumo.on('smtp_server_ehlo', function() start() end)
            kumo.on('init', function()
              kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data' }
            end)
            """
        },
    )
    assert got == [("R101", 1, 1), ("R101", 3, 3)]


def test_r101_quiet_inside_init_and_pre_init(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R101",
        {
            "init.lua": """
            local function listeners()
              kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
            end
            kumo.on('init', function()
              listeners()
              kumo.spawn_task { event_name = 'poll', args = {} }
            end)
            kumo.on('poll', function(args) end)
            local function never_called() kumo.define_spool { name = 'x', path = '/x' } end
            """
        },
    )
    assert got == []


# ----- R102 ----------------------------------------------------------------------------------------------


def test_r102_pre_init_settings_late(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R102",
        {
            "init.lua": """
            kumo.set_memory_hard_limit(1024 * 1024 * 1024)
            kumo.on('init', function()
              kumo.set_spoolin_threads(4)
              kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
              kumo.set_smtpsrv_threads(16)
            end)
            kumo.on('smtp_server_ehlo', function()
              kumo.set_lruttl_cache_capacity('dns_resolver_mx', 1000)
            end)
            """
        },
    )
    assert got == [("R102", 1, 1), ("R102", 5, 3), ("R102", 8, 3)]


def test_r102_quiet_in_pre_init(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R102",
        {
            "init.lua": """
            kumo.on('pre_init', function()
              kumo.set_smtpsrv_threads(16)
              kumo.set_memory_hard_limit(1024 * 1024 * 1024)
            end)
            """
        },
    )
    assert got == []


# ----- R103 ----------------------------------------------------------------------------------------------


def test_r103_global_values_and_functions_in_handlers(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R103",
        {
            "init.lua": """
            HOSTNAME = 'mx.example.net'
            function helper() return 1 end
            kumo.on('smtp_server_message_received', function(msg)
              count = (count or 0) + 1
              function late_helper() end
            end)
            """,
        },
    )
    assert got == [("R103", 1, 1), ("R103", 4, 3), ("R103", 5, 12)]


def test_r103_quiet_for_locals_and_file_level_functions(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R103",
        {
            "init.lua": """
            local HOSTNAME = 'mx.example.net'
            local count
            function helper() return HOSTNAME end
            kumo.on('smtp_server_message_received', function(msg)
              count = (count or 0) + 1
              local n = helper()
            end)
            local function unused() never_set = 1 end
            """,
        },
    )
    assert got == []


# ----- R104 ----------------------------------------------------------------------------------------------


def test_r104_blocking_io_in_realtime_and_uncached_glob_at_file_level(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R104",
        {
            "init.lua": """
            local files = kumo.uncached_glob '/opt/kumomta/etc/policy/*.toml'
            kumo.on('smtp_server_mail_from', function(sender)
              local f = io.open('/opt/kumomta/etc/policy/blocked.txt')
              local text = f:read('*a')
              f:close()
            end)
            """,
        },
    )
    assert got == [("R104", 1, 15), ("R104", 3, 13)]


def test_r104_quiet_in_init_and_for_async_readers(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R104",
        {
            "init.lua": """
            local files = kumo.fs.glob '/opt/kumomta/etc/policy/*.toml'
            kumo.on('init', function()
              local f = io.open('/opt/kumomta/etc/policy/motd.txt')
              local more = kumo.uncached_glob '/opt/kumomta/etc/policy/*.json'
            end)
            kumo.on('smtp_server_mail_from', function(sender)
              local data = kumo.serde.json_load '/opt/kumomta/etc/policy/blocked.json'
            end)
            """,
        },
    )
    assert got == []


# ----- R105 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        (DEFAULT_MONITOR_GLOBS[0], "/opt/kumomta/etc/policy/init.lua", True),
        (DEFAULT_MONITOR_GLOBS[0], "/opt/kumomta/etc/init.lua", True),
        (DEFAULT_MONITOR_GLOBS[0], "/opt/kumomta/etc/policy/queues.yml", False),
        (DEFAULT_MONITOR_GLOBS[0], "/opt/kumomta/share/policy-extras/shaping.toml", False),
        ("/opt/kumomta/etc/policy/*.toml", "/opt/kumomta/etc/policy/a/b.toml", False),
        ("/opt/kumomta/etc/policy/*.toml", "/opt/kumomta/etc/policy/b.toml", True),
        ("/opt/kumomta/etc/**", "/opt/kumomta/etc/policy/x", True),
        ("/opt/kumomta/{etc/policy,share}/*.lua", "/opt/kumomta/share/x.lua", True),
        ("/opt/kumomta/etc/policy/[ab].toml", "/opt/kumomta/etc/policy/b.toml", True),
        ("/opt/kumomta/etc/policy/[!ab].toml", "/opt/kumomta/etc/policy/b.toml", False),
        ("/opt/kumomta/etc/policy/?.toml", "/opt/kumomta/etc/policy/ab.toml", False),
        ("opt/kumomta/etc/*.lua", "/opt/kumomta/etc/init.lua", True),
    ],
)
def test_monitor_glob_semantics(pattern: str, path: str, expected: bool) -> None:
    assert glob_matches(pattern, path) is expected


def test_r105_narrow_globs_leave_entry_and_data_unwatched(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R105",
        {
            "policy/init.lua": """
            local sources = require 'policy-extras.sources'
            sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
            kumo.on('init', function()
              kumo.set_config_monitor_globs { '/opt/kumomta/etc/policy/*.json' }
            end)
            """,
            "policy/sources.toml": "[source.'a']\nsource_address = '10.0.0.1'\n",
        },
    )
    assert got == [("R105", 2, 17), ("R105", 4, 3)]


def test_r105_default_globs_miss_a_yml_data_file(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R105",
        {
            "policy/init.lua": """
            kumo.on('smtp_server_mail_from', function(sender)
              local blocked = kumo.serde.yaml_load '/opt/kumomta/etc/policy/blocked.yml'
            end)
            """,
            "policy/blocked.yml": "a: 1\n",
        },
    )
    assert got == [("R105", 2, 19)]


def test_r105_quiet_with_covering_globs_and_init_only_reads(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R105",
        {
            "policy/init.lua": """
            local sources = require 'policy-extras.sources'
            sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
            kumo.on('init', function()
              local motd = kumo.serde.yaml_load '/opt/kumomta/etc/policy/motd.yml'
              kumo.set_config_monitor_globs { '/opt/kumomta/etc/**/*.{lua,toml}' }
            end)
            """,
            "policy/sources.toml": "[source.'a']\nsource_address = '10.0.0.1'\n",
            "policy/motd.yml": "a: 1\n",
        },
    )
    assert got == []


# ----- R106 ----------------------------------------------------------------------------------------------


def test_r106_handlers_after_the_queue_helper(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R106",
        {
            "init.lua": """
            local queue_module = require 'policy-extras.queue'
            local log_hooks = require 'policy-extras.log_hooks'
            local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
            kumo.on('get_queue_config', function(domain) end)
            log_hooks:new_json { name = 'events', url = 'http://127.0.0.1:8090/' }
            """,
            "queues.toml": "[queue.default]\nmax_age = '1 day'\n",
        },
    )
    assert got == [("R106", 4, 9), ("R106", 5, 1)]


def test_r106_quiet_when_handlers_come_first_or_hook_skipped(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R106",
        {
            "init.lua": """
            local queue_module = require 'policy-extras.queue'
            local shaping = require 'policy-extras.shaping'
            kumo.on('get_queue_config', function(domain) end)
            local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
            kumo.on('get_egress_path_config', shaping:setup { '/opt/kumomta/etc/policy/shaping.toml' })
            """,
            "queues.toml": "[queue.default]\nmax_age = '1 day'\n",
            "shaping.toml": "['default']\nconnection_limit = 3\n",
        },
    )
    assert got == []
    got = findings(
        tmp_path,
        "R106",
        {
            "init.lua": """
            local queue_module = require 'policy-extras.queue'
            local q = queue_module:setup_with_options {
              file_names = { '/opt/kumomta/etc/policy/queues.toml' },
              skip_queue_config_hook = true,
            }
            kumo.on('get_queue_config', function(domain) return q:resolve_config(domain) end)
            """,
        },
    )
    assert got == []


# ----- R107 ----------------------------------------------------------------------------------------------


def test_r107_memoize_names_that_clash(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R107",
        {
            "init.lua": """
            local function a() return 1 end
            local function b() return 2 end
            local x = kumo.memoize(a, { name = 'dns_resolver_mx', ttl = 60, capacity = 1 })
            local y = kumo.memoize(a, { name = 'sources_data', ttl = 60, capacity = 1 })
            local z1 = kumo.memoize(a, { name = 'user.lookup', ttl = 60, capacity = 1 })
            local z2 = kumo.memoize(b, { name = 'user.lookup', ttl = 60, capacity = 1 })
            """,
        },
    )
    assert got == [("R107", 3, 36), ("R107", 4, 36), ("R107", 6, 37)]


def test_r107_quiet_for_distinct_user_names(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R107",
        {
            "init.lua": """
            local function a() return 1 end
            local x = kumo.memoize(a, { name = 'user.a', ttl = 60, capacity = 1 })
            local y = kumo.memoize(a, { name = 'user.b', ttl = 60, capacity = 1 })
            """,
        },
    )
    assert got == []


# ----- R108 ----------------------------------------------------------------------------------------------


def test_r108_queue_helper_and_memoized_loader_without_epoch(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R108",
        {
            "init.lua": """
            local queue_module = require 'policy-extras.queue'
            local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
            local function load() return kumo.serde.toml_load '/opt/kumomta/etc/policy/x.toml' end
            local cached = kumo.memoize(load, { name = 'user.x', ttl = '5 minutes', capacity = 1 })
            """,
            "queues.toml": "[queue.default]\nmax_age = '1 day'\n",
            "x.toml": "a = 1\n",
        },
    )
    assert got == [("R108", 2, 22), ("R108", 4, 16)]


def test_r108_quiet_with_invalidate_with_epoch(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R108",
        {
            "init.lua": """
            local queue_module = require 'policy-extras.queue'
            local sources = require 'policy-extras.sources'
            sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
            local queue_helper = queue_module:setup_with_options {
              file_names = { '/opt/kumomta/etc/policy/queues.toml' },
              invalidate_with_epoch = true,
            }
            local function load() return kumo.serde.toml_load '/opt/kumomta/etc/policy/x.toml' end
            local cached = kumo.memoize(load, {
              name = 'user.x', ttl = '5 minutes', capacity = 1, invalidate_with_epoch = true,
            })
            """,
            "queues.toml": "[queue.default]\nmax_age = '1 day'\n",
            "sources.toml": "[source.'a']\nsource_address = '10.0.0.1'\n",
            "x.toml": "a = 1\n",
        },
    )
    assert got == []


# ----- documented practice -------------------------------------------------------------------------------


def test_documented_practice_policy_has_no_findings_from_these_rules() -> None:
    result = audit(FIXTURES / "documented")
    mine = [f for f in result.findings if f.code[:2] in ("E2", "R1")]
    assert mine == [], [(f.code, f.path, f.line, f.message) for f in mine]


def test_clean_example_policy_has_no_errors_from_these_rules() -> None:
    root = Path(__file__).parent.parent / "examples" / "clean-policy"
    result = audit(root)
    errors = [
        f for f in result.findings if f.code[:2] in ("E2", "R1") and f.severity.value == "error"
    ]
    assert errors == []


@pytest.mark.parametrize(
    ("code", "severity"),
    [
        ("R101", "error"),
        ("R102", "warning"),
        ("R103", "warning"),
        ("R104", "warning"),
        ("R105", "warning"),
        ("R106", "warning"),
        ("R107", "error"),
        ("R108", "info"),
    ],
)
def test_rule_metadata_is_complete(code: str, severity: str) -> None:
    import auditor.rules  # noqa: F401
    from auditor.rules.registry import get

    rule_obj = get(code)
    assert rule_obj is not None and rule_obj.check is not None
    meta = rule_obj.meta
    assert meta.category == "reload" and meta.severity.value == severity
    assert all([meta.summary, meta.bad, meta.good, meta.fix]) and len(meta.doc) > 200


# ----- edges found by mutation testing -------------------------------------------------------------------


def test_r102_names_the_first_starter_among_several(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.start_esmtp_listener { listen = '0.0.0.0:26' }
              kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
              kumo.set_smtpsrv_threads(16)
            end)
            """
        },
    )
    result = audit(tmp_path)
    assert codes_at(result.findings, "R102") == [("R102", 4, 3)]
    [message] = [f.message for f in result.findings if f.code == "R102"]
    assert "init.lua:2" in message and "init.lua:3" not in message


def test_r104_every_realtime_call_after_one_that_is_not(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R104",
        {
            "init.lua": """
            kumo.on('init', function()
              local f = io.open('/opt/kumomta/etc/policy/motd.txt')
            end)
            local t = {}
            kumo.on('smtp_server_mail_from', function(sender)
              t[1]('x')
              local g = io.open('/opt/kumomta/etc/policy/blocked.txt')
            end)
            """,
        },
    )
    assert got == [("R104", 7, 13)]


def test_r106_a_second_queue_helper_is_not_a_dead_handler(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R106",
        {
            "init.lua": """
            local queue_module = require 'policy-extras.queue'
            local first = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
            local second = queue_module:setup { '/opt/kumomta/etc/policy/more.toml' }
            """,
            "queues.toml": "[queue.default]\nmax_age = '1 day'\n",
            "more.toml": "[queue.default]\nmax_age = '2 days'\n",
        },
    )
    assert got == []


def test_r101_fingerprints_follow_the_listener_not_its_place(tmp_path: Path) -> None:
    """A finding keeps its fingerprint (baselines, introduced/resolved) when code is added above it:
    calls of one function are told apart by their listen address, spool or hook name."""
    one = "kumo.start_esmtp_listener { listen = '0.0.0.0:25' }\n"
    other = "kumo.start_esmtp_listener { listen = '0.0.0.0:587' }\n"

    def prints(init: str, where: str) -> dict[int, str]:
        write_tree(tmp_path / where, {"init.lua": init})
        return {f.line: f.fingerprint for f in audit(tmp_path / where).findings if f.code == "R101"}

    alone = prints(one, "alone")
    both = prints(other + one, "both")
    assert list(alone) == [1] and sorted(both) == [1, 2]
    assert both[2] == alone[1] and both[1] != alone[1]


def found(tmp_path: Path, code: str, files: dict[str, str], **kwargs: object) -> list[tuple]:
    """(code, line, column, severity) of the unsuppressed findings of one rule."""
    write_tree(tmp_path, files)
    return sorted(
        (f.code, f.line, f.column, f.severity.value)
        for f in audit(tmp_path, **kwargs).findings
        if f.code == code and not f.suppressed
    )


# R101: a module audited alone. Only a call that runs at its top level and nowhere else depends on
# where the policy requires the module (a warning); a call in a realtime handler is an error
# wherever the module is required.
def test_r101_module_alone_top_level_is_a_warning_realtime_an_error(tmp_path: Path) -> None:
    got = found(
        tmp_path,
        "R101",
        {
            "listeners.lua": """
            local M = {}
            local function logs() kumo.configure_local_logs { log_dir = '/var/log/kumo' } end
            logs()
            kumo.on('smtp_server_ehlo', function() logs() end)
            kumo.on('smtp_server_mail_from', function()
              kumo.configure_bounce_classifier { files = { '/opt/kumomta/share/iana.toml' } }
            end)
            kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
            return M
            """
        },
        entry="listeners.lua",
    )
    assert got == [
        ("R101", 2, 23, "error"),  # top level and a realtime handler
        ("R101", 6, 3, "error"),  # a realtime handler only
        ("R101", 8, 1, "warning"),  # top level only
    ]


@pytest.mark.parametrize(
    "call",
    [
        "kumo.configure_local_logs { log_dir = '/var/log/{x}' }",
        "kumo.define_spool { name = '{x}', path = '/var/spool/{x}' }",
        "kumo.spawn_task { event_name = '{x}', args = {} }",
        "kumo.configure_log_hook { name = '{x}' }",
        "kumo.configure_accounting_db_path '/var/db/{x}.db'",
    ],
)
def test_r101_fingerprints_told_apart_by_each_identifying_argument(
    tmp_path: Path, call: str
) -> None:
    """Log directory, spool or hook name, task event, or a plain string argument: each tells the
    calls of one function apart, so a finding keeps its fingerprint when another call is added."""

    def prints(init: str, where: str) -> dict[int, str]:
        write_tree(tmp_path / where, {"init.lua": init})
        return {f.line: f.fingerprint for f in audit(tmp_path / where).findings if f.code == "R101"}

    one, other = call.replace("{x}", "a") + "\n", call.replace("{x}", "b") + "\n"
    alone = prints(one, "alone")
    both = prints(other + one, "both")
    assert list(alone) == [1] and sorted(both) == [1, 2]
    assert both[2] == alone[1] and both[1] != alone[1]


def test_r103_global_after_one_in_a_function_never_called(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R103",
        {
            "init.lua": """
            local function unused() never_set = 1 end
            HOSTNAME = 'mx.example.net'
            """,
        },
    )
    assert got == [("R103", 2, 1)]


# R105: a data file read after one the loop skips (the helper's implicit default file).
def test_r105_data_file_after_an_implicit_helper_file(tmp_path: Path) -> None:
    got = found(
        tmp_path,
        "R105",
        {
            "policy/init.lua": """
            local shaping = require 'policy-extras.shaping'
            local shaper = shaping:setup_with_automation {
              extra_files = { '/opt/kumomta/etc/policy/shaping.toml' },
            }
            local blocked = kumo.serde.yaml_load '/opt/kumomta/etc/policy/blocked.yml'
            """,
            "policy/shaping.toml": "['default']\nconnection_limit = 3\n",
            "policy/blocked.yml": "a: 1\n",
        },
    )
    assert got == [("R105", 5, 17, "warning")]


# R105, data paths computed with a known directory and extension: a literal path, a relative
# computed one and one read only in init are skipped; the computed path after them is checked.
COMPUTED_AFTER_OTHERS = """
kumo.on('init', function()
  kumo.set_config_monitor_globs { '/opt/kumomta/etc/policy/*.lua' }
  local once = kumo.toml_load('/opt/kumomta/etc/other/' .. os.getenv('SITE') .. '.toml')
end)
kumo.on('smtp_server_mail_from', function(sender)
  local known = kumo.json_load '/opt/kumomta/etc/policy/*.lua'
  local relative = kumo.toml_load('rules/' .. sender.domain .. '.toml')
  local rules = kumo.toml_load('/opt/kumomta/etc/policy/' .. sender.domain .. '{ext}')
end)
"""


def test_r105_computed_data_path_after_paths_it_skips(tmp_path: Path) -> None:
    policy = COMPUTED_AFTER_OTHERS.replace("{ext}", ".toml")
    assert found(tmp_path, "R105", {"policy/init.lua": policy}) == [("R105", 8, 32, "warning")]
    # the same read with an extension the globs watch is covered
    policy = COMPUTED_AFTER_OTHERS.replace("{ext}", ".lua")
    assert found(tmp_path, "R105", {"policy/init.lua": policy}) == []


# R107 details: which names count, and in which order the memoize calls run.
def test_r107_names_that_are_not_strings_are_not_compared(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R107",
        {
            "init.lua": """
            local function a() return 1 end
            local x = kumo.memoize(a, { name = 5, ttl = 60, capacity = 1 })
            local y = kumo.memoize(a, { name = 5, ttl = 60, capacity = 1 })
            local z = kumo.memoize(a, { ttl = 60, capacity = 1 })
            local w = kumo.memoize(a)
            """,
        },
    )
    assert got == []


def test_r107_memoize_that_never_runs_is_not_the_first_user(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R107",
        {
            "init.lua": """
            local function a() return 1 end
            local function never() return kumo.memoize(a, { name = 'user.x', ttl = 60, capacity = 1 }) end
            local x = kumo.memoize(a, { name = 'user.x', ttl = 60, capacity = 1 })
            """,
        },
    )
    assert got == []


def test_r107_second_user_in_load_order_across_modules(tmp_path: Path) -> None:
    """A required module's top level runs at its require: the clash is reported on the call that
    runs second, whichever file it is in."""
    memoize = (
        "local m = kumo.memoize(function() end, { name = 'user.x', ttl = 60, capacity = 1 })\n"
    )
    write_tree(
        tmp_path / "first",
        {"init.lua": "local z = require 'zlib'\n" + memoize, "zlib.lua": memoize + "return {}\n"},
    )
    assert [
        (f.path, f.line, f.column) for f in audit(tmp_path / "first").findings if f.code == "R107"
    ] == [("init.lua", 2, 49)]
    write_tree(
        tmp_path / "later",
        {"init.lua": memoize + "local z = require 'zlib'\n", "zlib.lua": memoize + "return {}\n"},
    )
    assert [
        (f.path, f.line, f.column) for f in audit(tmp_path / "later").findings if f.code == "R107"
    ] == [("zlib.lua", 1, 49)]


# K:assets/policy-extras/queue.lua memoizes resolve_provider as 'queue.lua_resolve_provider'.
HELPER_MEMOIZE = """
local kumo = require 'kumo'
local function resolve(domain) return domain end
local cached = kumo.memoize(resolve, { name = 'queue.lua_resolve_provider', ttl = '5m', capacity = 10 })
return {}
"""


@pytest.mark.parametrize(
    ("files", "entry", "expected"),
    [
        # a copy of the helper laid out under its package path, required under another name
        (
            {
                "init.lua": "local q = require 'lib.policy-extras.queue'\n",
                "lib/policy-extras/queue.lua": HELPER_MEMOIZE,
            },
            None,
            [],
        ),
        # the helper's file audited alone, under its package path or only its file name
        ({"assets/policy-extras/queue.lua": HELPER_MEMOIZE}, "assets/policy-extras/queue.lua", []),
        ({"x/queue.lua": HELPER_MEMOIZE}, "x/queue.lua", []),
        # a directory whose name only ends like the package's
        (
            {
                "init.lua": "local q = require 'libpolicy-extras.queue'\n",
                "libpolicy-extras/queue.lua": HELPER_MEMOIZE,
            },
            None,
            [("libpolicy-extras/queue.lua", 3, 47)],
        ),
        # the same file name, but not the audited entry
        (
            {"init.lua": "local q = require 'lib.queue'\n", "lib/queue.lua": HELPER_MEMOIZE},
            None,
            [("lib/queue.lua", 3, 47)],
        ),
        (
            {
                "queue.lua": "local q = require 'lib.queue'\nreturn {}\n",
                "lib/queue.lua": HELPER_MEMOIZE,
            },
            "queue.lua",
            [("lib/queue.lua", 3, 47)],
        ),
        # another file audited alone
        ({"other.lua": HELPER_MEMOIZE}, "other.lua", [("other.lua", 3, 47)]),
    ],
)
def test_r107_helper_cache_name_is_no_clash_only_in_the_helper_itself(
    tmp_path: Path, files: dict[str, str], entry: str | None, expected: list[tuple]
) -> None:
    write_tree(tmp_path, files)
    result = audit(tmp_path, **({"entry": entry} if entry else {}))
    got = [(f.path, f.line, f.column) for f in result.findings if f.code == "R107"]
    assert got == expected
    assert all(f.severity.value == "error" for f in result.findings if f.code == "R107")


# R108: memoized functions that read files through Lua's io, after one that reads none; each
# finding carries the fix for its own case.
def test_r108_memoized_io_readers_after_a_function_that_reads_nothing(tmp_path: Path) -> None:
    got = found(
        tmp_path,
        "R108",
        {
            "init.lua": """
            local function plain() return 1 end
            local function reader()
              local f = io.open('/opt/kumomta/etc/policy/x.txt')
              return f:read('*a')
            end
            local function lines()
              for l in io.lines('/opt/kumomta/etc/policy/y.txt') do end
            end
            local a = kumo.memoize(plain, { name = 'user.plain', ttl = 60, capacity = 1 })
            local b = kumo.memoize(reader, { name = 'user.reader', ttl = 60, capacity = 1 })
            local c = kumo.memoize(lines, { name = 'user.lines', ttl = 60, capacity = 1 })
            """,
        },
    )
    assert got == [("R108", 10, 11, "info"), ("R108", 11, 11, "info")]


def test_r108_findings_carry_a_fix_for_their_own_case(tmp_path: Path) -> None:
    from auditor.rules.reload import TTL_ONLY_RELOAD

    write_tree(
        tmp_path,
        {
            "init.lua": """
            local queue_module = require 'policy-extras.queue'
            local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
            local function reader() return kumo.toml_load '/opt/kumomta/etc/policy/x.toml' end
            local c = kumo.memoize(reader, { name = 'user.reader', ttl = 60, capacity = 1 })
            """,
            "queues.toml": "[queue.default]\nmax_age = '1 day'\n",
            "x.toml": "a = 1\n",
        },
    )
    queue, memoize = sorted(
        (f for f in audit(tmp_path).findings if f.code == "R108"), key=lambda f: f.line
    )
    assert (queue.line, memoize.line) == (2, 4)
    # the queue helper's: its own setup method; the memoize's: not the helper's method
    assert queue.fix != TTL_ONLY_RELOAD.fix and "setup_with_options" in queue.fix
    assert memoize.fix != TTL_ONLY_RELOAD.fix and "setup_with_options" not in memoize.fix


# ----- more edges (mutants of other samples) -------------------------------------------------------------


def test_r106_shaping_publishing_to_tsa_after_the_queue_helper(tmp_path: Path) -> None:
    """Shaping registers a get_queue_config handler for its TSA queue only when it publishes."""
    policy = """
    local queue_module = require 'policy-extras.queue'
    local shaping = require 'policy-extras.shaping'
    local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
    local shaper = shaping:setup_with_automation {
      {publish}
      extra_files = { '/opt/kumomta/etc/policy/shaping.toml' },
    }
    """
    data = {
        "queues.toml": "[queue.default]\nmax_age = '1 day'\n",
        "shaping.toml": "['default']\nconnection_limit = 3\n",
    }
    publish = "publish = { 'http://127.0.0.1:8008' },"
    files = {"init.lua": policy.replace("{publish}", publish), **data}
    assert found(tmp_path, "R106", files) == [("R106", 4, 16, "warning")]
    for quiet in ("publish = {},", ""):
        files = {"init.lua": policy.replace("{publish}", quiet), **data}
        assert found(tmp_path, "R106", files) == []


def test_r102_module_alone_pre_init_handler_is_fine_top_level_is_late(tmp_path: Path) -> None:
    got = found(
        tmp_path,
        "R102",
        {
            "threads.lua": """
            kumo.on('pre_init', function() kumo.set_smtpsrv_threads(16) end)
            kumo.set_spoolin_threads(4)
            return {}
            """
        },
        entry="threads.lua",
    )
    assert got == [("R102", 2, 1, "warning")]


def test_r104_blocking_call_after_a_call_of_a_global_function(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "R104",
        {
            "init.lua": """
            function helper() return 1 end
            kumo.on('smtp_server_mail_from', function(sender)
              helper()
              local g = io.open('/opt/kumomta/etc/policy/blocked.txt')
            end)
            """,
        },
    )
    assert got == [("R104", 4, 13)]


def test_r105_computed_paths_covered_maybe_covered_and_never_covered(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "policy/init.lua": """
            kumo.on('init', function()
              kumo.set_config_monitor_globs {
                '/opt/kumomta/etc/policy/*.lua', '/opt/kumomta/etc/policy/a*.json',
              }
            end)
            kumo.on('smtp_server_mail_from', function(sender)
              local covered = kumo.toml_load('/opt/kumomta/etc/policy/' .. sender.domain .. '.lua')
              local maybe = kumo.toml_load('/opt/kumomta/etc/policy/' .. sender.domain .. '.json')
              local never = kumo.toml_load('/opt/kumomta/etc/policy/' .. sender.domain .. '.toml')
            end)
            """
        },
    )
    result = audit(tmp_path)
    # codes_at also checks that each finding names its file and has a key
    assert codes_at(result.findings, "R105") == [("R105", 8, 32), ("R105", 9, 32)]
    assert [(f.path, f.severity.value) for f in result.findings if f.code == "R105"] == [
        ("policy/init.lua", "info"),
        ("policy/init.lua", "warning"),
    ]


def test_r105_a_file_read_twice_is_reported_once(tmp_path: Path) -> None:
    got = found(
        tmp_path,
        "R105",
        {
            "policy/init.lua": """
            local a = kumo.serde.yaml_load '/opt/kumomta/etc/policy/blocked.yml'
            kumo.on('smtp_server_mail_from', function(sender)
              local b = kumo.serde.yaml_load '/opt/kumomta/etc/policy/blocked.yml'
            end)
            """,
            "policy/blocked.yml": "a: 1\n",
        },
    )
    assert got == [("R105", 1, 11, "warning")]


@pytest.mark.parametrize(
    ("globs", "severity"),
    [
        # only a computed glob: whether it covers the files is known at run time
        ("{ os.getenv('GLOB') }", "info"),
        # an empty list watches nothing
        ("{}", "warning"),
    ],
)
def test_r105_glob_list_without_literal_globs(tmp_path: Path, globs: str, severity: str) -> None:
    got = found(
        tmp_path,
        "R105",
        {
            "policy/init.lua": f"""
            kumo.on('init', function()
              kumo.set_config_monitor_globs {globs}
            end)
            local a = kumo.serde.yaml_load '/opt/kumomta/etc/policy/blocked.yml'
            """,
            "policy/blocked.yml": "a: 1\n",
        },
    )
    assert got == [("R105", 2, 3, severity), ("R105", 4, 11, severity)]


def test_r105_the_last_glob_list_set_is_in_force(tmp_path: Path) -> None:
    narrow = "kumo.set_config_monitor_globs { '/opt/kumomta/etc/policy/*.toml' }"
    wide = "kumo.set_config_monitor_globs { '/opt/kumomta/etc/**/*.{lua,toml}' }"

    def policy(first: str, second: str) -> dict[str, str]:
        return {"policy/init.lua": f"kumo.on('init', function()\n  {first}\n  {second}\nend)\n"}

    assert found(tmp_path, "R105", policy(wide, narrow)) == [("R105", 3, 3, "warning")]
    assert found(tmp_path, "R105", policy(narrow, wide)) == []


def test_r108_memoize_without_arguments_or_calling_module_functions(tmp_path: Path) -> None:
    """A memoized function that calls a required module's function reads no file the rule knows."""
    got = findings(
        tmp_path,
        "R108",
        {
            "init.lua": """
            local util = require 'util'
            local function build() return util.transform('x') end
            local m = kumo.memoize(build, { name = 'user.build', ttl = 60, capacity = 1 })
            local n = kumo.memoize()
            """,
            "util.lua": "local M = {}\nfunction M.transform(x) return x end\nreturn M\n",
        },
    )
    assert got == []


def test_r108_memoize_fingerprints_follow_the_cache_name(tmp_path: Path) -> None:
    reader = (
        "local function load_{x}() return kumo.toml_load '/opt/kumomta/etc/policy/{x}.toml' end\n"
    )
    memoize = (
        "local m_{x} = kumo.memoize(load_{x}, { name = 'user.{x}', ttl = 60, capacity = 1 })\n"
    )

    def prints(names: list[str], where: str) -> dict[int, str]:
        text = "".join(reader.replace("{x}", n) for n in names)
        text += "".join(memoize.replace("{x}", n) for n in names)
        write_tree(tmp_path / where, {"init.lua": text})
        return {f.line: f.fingerprint for f in audit(tmp_path / where).findings if f.code == "R108"}

    alone = prints(["b"], "alone")
    both = prints(["a", "b"], "both")
    assert list(alone) == [2] and sorted(both) == [3, 4]
    assert both[4] == alone[2] and both[3] != alone[2]
