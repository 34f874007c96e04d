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
