"""Dxxx delivery rules on small real policy trees, run through the whole check pipeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from auditor.config.settings import Bound, Config, Thresholds
from auditor.core.findings import Severity
from tests.conftest import audit, codes_at, write_tree

FIXTURES = Path(__file__).parent / "fixtures" / "rules_delivery"


def findings(
    tmp_path: Path, code: str, files: dict[str, str], **kwargs: object
) -> list[tuple[str, int, int]]:
    write_tree(tmp_path, files)
    return codes_at(audit(tmp_path, **kwargs).findings, code)


def messages(tmp_path: Path, code: str, **kwargs: object) -> list[str]:
    return [f.message for f in audit(tmp_path, **kwargs).findings if f.code == code]


# ----- D101 missing-spool --------------------------------------------------------------------------------


def test_d101_listener_without_spools(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "D101",
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data' }
              kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
              kumo.start_http_listener { listen = '127.0.0.1:8000' }
            end)
            """
        },
    )
    assert got == [("D101", 3, 3)]
    (message,) = messages(tmp_path, "D101")
    assert "meta spool" in message and "data" not in message.split("spool")[0]


def test_d101_spool_defined_outside_init(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "D101",
        {
            "init.lua": """
            kumo.define_spool { name = 'meta', path = '/var/spool/kumomta/meta' }
            kumo.on('init', function()
              kumo.start_http_listener { listen = '127.0.0.1:8000' }
              kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data' }
            end)
            """
        },
    )
    assert got == [("D101", 3, 3)]
    assert "meta is defined, but not in init" in messages(tmp_path, "D101")[0]


def test_d101_quiet_with_both_spools_or_no_listener_or_computed_name(tmp_path: Path) -> None:
    both = {
        "init.lua": """
        local function spools()
          for _, name in ipairs { 'data', 'meta' } do end
          kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data' }
          kumo.define_spool { name = 'meta', path = '/var/spool/kumomta/meta' }
        end
        kumo.on('init', function()
          spools()
          kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
        end)
        """
    }
    assert findings(tmp_path / "a", "D101", both) == []
    no_listener = {"init.lua": "kumo.on('init', function() end)\n"}
    assert findings(tmp_path / "b", "D101", no_listener) == []
    computed = {
        "init.lua": """
        kumo.on('init', function()
          for _, name in ipairs { 'data', 'meta' } do
            kumo.define_spool { name = name, path = '/var/spool/kumomta/' .. name }
          end
          kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
        end)
        """
    }
    assert findings(tmp_path / "c", "D101", computed) == []


# ----- D102 deferred-spool -------------------------------------------------------------------------------


def test_d102_deferred_spool(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "D102",
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.start_esmtp_listener { listen = '0.0.0.0:25', deferred_spool = true }
              kumo.start_esmtp_listener {
                listen = '0.0.0.0:26',
                deferred_spool = false,
                peer = { ['10.0.0.0/24'] = { deferred_spool = true } },
              }
            end)
            kumo.on('smtp_server_get_dynamic_parameters', function(listener, conn_meta)
              return { deferred_spool = true }
            end)
            """
        },
    )
    assert got == [("D102", 2, 54), ("D102", 6, 34), ("D102", 10, 12)]


# ----- D103 retry-ladder ---------------------------------------------------------------------------------


def test_d103_lua_make_queue_config(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "D103",
        {
            "init.lua": """
            kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
              if domain == 'a.example' then
                return kumo.make_queue_config { retry_interval = '30m', max_retry_interval = '10m' }
              end
              if domain == 'b.example' then
                return kumo.make_queue_config { max_age = '10 minutes' }
              end
              if domain == 'c.example' then
                return kumo.make_queue_config { max_age = 3600 }
              end
              return kumo.make_queue_config {
                retry_interval = '5 minutes', max_retry_interval = '2 hours', max_age = '3 days',
              }
            end)
            """
        },
    )
    # a: cap below the interval; b: max_age below the default 20 minute interval and the minimum;
    # c: one hour is below the one-day minimum
    assert got == [("D103", 3, 61), ("D103", 6, 37), ("D103", 6, 37), ("D103", 9, 37)]


def test_d103_queues_toml_with_inheritance(tmp_path: Path) -> None:
    files = {
        "policy/init.lua": """
        local queue_module = require 'policy-extras.queue'
        local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
        """,
        "policy/queues.toml": """
        [queue.default]
        retry_interval = "10 minutes"
        max_retry_interval = "4 hours"
        max_age = "3 days"

        [queue.'yahoo.com']
        retry_interval = "30 minutes"
        max_retry_interval = "20 minutes"

        [queue.'outlook.com']
        retry_interval = "5 hours"

        [queue.'outlook.com'.'acme']
        max_age = "2 days"

        [tenant.'fast']
        max_age = "2 hours"
        """,
    }
    got = findings(tmp_path, "D103", files)
    # yahoo: cap below interval (at max_retry_interval); outlook: interval above the inherited
    # 4 hour cap (at retry_interval); tenant fast: below the minimum
    assert got == [("D103", 8, 1), ("D103", 11, 1), ("D103", 17, 1)]
    relaxed = Config(thresholds=Thresholds(min_max_age="1 hour"))
    assert codes_at(audit(tmp_path, config=relaxed).findings, "D103") == [
        ("D103", 8, 1),
        ("D103", 11, 1),
    ]


def test_d103_queues_json(tmp_path: Path) -> None:
    data = {
        "queue": {
            "default": {"retry_interval": "20 minutes"},
            "example.com": {"max_age": "15 minutes"},
        }
    }
    got = findings(
        tmp_path,
        "D103",
        {
            "policy/init.lua": """
            local queue_module = require 'policy-extras.queue'
            local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.json' }
            """,
            "policy/queues.json": json.dumps(data, indent=2),
        },
    )
    assert got == [("D103", 7, 7), ("D103", 7, 7)]
    text = " ".join(messages(tmp_path, "D103"))
    assert "15 minutes" in text and "20 minutes" in text and "1 day" in text


def test_d103_quiet_for_a_sound_ladder(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "D103",
        {
            "policy/init.lua": """
            local queue_module = require 'policy-extras.queue'
            local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
            kumo.on('get_queue_config', function(domain)
              return kumo.make_queue_config { retry_interval = '1m', max_retry_interval = '1h', max_age = os.getenv('AGE') }
            end)
            """,
            "policy/queues.toml": """
            [queue.default]
            retry_interval = "20 minutes"
            max_retry_interval = "8 hours"

            [queue.'gmail.com']
            max_age = "5 days"
            """,
        },
    )
    assert got == []


# ----- D104 shaping-bounds -------------------------------------------------------------------------------

SHAPING_LUA = """
local shaping = require 'policy-extras.shaping'
kumo.on('get_egress_path_config', shaping:setup { '/opt/kumomta/etc/policy/%s' })
"""

BOUNDS = Config(
    bounds=[
        Bound(key="connection_limit", provider="yahoo", max=20, reason="Yahoo defers above 20"),
        Bound(key="max_message_rate", domain="*.example", max="600/min"),
        Bound(key="max_deliveries_per_connection", min=10),
        Bound(key="idle_timeout", max="2 minutes"),
    ]
)


def test_d104_shaping_bounds_toml(tmp_path: Path) -> None:
    files = {
        "policy/init.lua": SHAPING_LUA % "shaping.toml",
        "policy/shaping.toml": """
        ["default"]
        max_deliveries_per_connection = 5
        idle_timeout = "5 minutes"

        ["a.example"]
        max_message_rate = "20/s"

        ["b.example"]
        max_message_rate = "1000/h"

        [provider."yahoo"]
        match = [{ MXSuffix = ".yahoodns.net" }]
        connection_limit = "1,000"

        [provider."yahoo".sources."ip-1"]
        connection_limit = 5

        [provider."other"]
        match = [{ MXSuffix = ".other.example" }]
        connection_limit = 500
        """,
    }
    got = findings(tmp_path, "D104", files, config=BOUNDS)
    assert got == [("D104", 2, 1), ("D104", 3, 1), ("D104", 6, 1), ("D104", 13, 1)]
    text = " ".join(messages(tmp_path, "D104", config=BOUNDS))
    assert "Yahoo defers above 20" in text and "above the maximum of 600/min" in text
    assert findings(tmp_path, "D104", files) == []  # no bounds configured


def test_d104_shaping_bounds_json(tmp_path: Path) -> None:
    data = {
        "provider": {"yahoo": {"match": [{"MXSuffix": ".yahoodns.net"}], "connection_limit": 50}}
    }
    got = findings(
        tmp_path,
        "D104",
        {
            "policy/init.lua": SHAPING_LUA % "shaping.json",
            "policy/shaping.json": json.dumps(data, indent=2),
        },
        config=BOUNDS,
    )
    assert got == [("D104", 9, 7)]


# ----- documented practice -------------------------------------------------------------------------------


def test_documented_policy_has_no_delivery_findings(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "documented", tmp_path / "repo")
    result = audit(tmp_path / "repo")
    assert codes_at(result.findings, "D") == []
    assert [f for f in result.findings if f.code[0] in "SD" and f.severity is Severity.ERROR] == []


@pytest.mark.parametrize(
    ("bound", "value", "reported"),
    [
        (Bound(key="connection_limit", max=20), "20", False),  # the bound's max: allowed
        (Bound(key="connection_limit", max=20), "21", True),  # max + 1
        (Bound(key="connection_limit", min=5), "5", False),
        (Bound(key="connection_limit", min=5), "4", True),
        (
            Bound(key="connection_limit", max="20"),
            "21",
            True,
        ),  # a string bound, parsed as the value
        (Bound(key="max_message_rate", max="600/min"), '"10/s"', False),  # the same rate
        (Bound(key="max_message_rate", max="600/min"), '"11/s"', True),
        (Bound(key="max_message_rate", max=10), '"600/min"', False),  # a number: per second
        (Bound(key="max_message_rate", max=10), '"601/min"', True),
        (Bound(key="idle_timeout", max="2 minutes"), '"120s"', False),
        (Bound(key="idle_timeout", max="2 minutes"), '"121s"', True),
        (Bound(key="idle_timeout", max="no idea"), '"1 day"', False),  # an unreadable bound
        (Bound(key="connection_limit", max=20), '"lots"', False),  # an invalid value: E302
        (Bound(key="connection_limit", max=20, domain="*.EXAMPLE"), "21", True),  # any case
        (Bound(key="connection_limit", max=20, domain="other.*"), "21", False),
        (Bound(key="connection_limit", max=20, provider="big"), "21", False),  # not a provider
    ],
)
def test_d104_bounds_at_their_edges(
    tmp_path: Path, bound: Bound, value: str, reported: bool
) -> None:
    files = {
        "policy/init.lua": SHAPING_LUA % "shaping.toml",
        "policy/shaping.toml": f'["a.example"]\n{bound.key} = {value}\n',
    }
    got = findings(tmp_path, "D104", files, config=Config(bounds=[bound]))
    assert got == ([("D104", 2, 1)] if reported else [])


def test_d103_inherited_problems_are_reported_where_they_are_written(tmp_path: Path) -> None:
    files = {
        "policy/init.lua": """
        local queue_module = require 'policy-extras.queue'
        local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
        """,
        "policy/queues.toml": """
        [queue.default]
        retry_interval = "2 hours"
        max_age = "1 day"
        max_retry_interval = "1 hour"

        [queue.'a.example']
        egress_pool = "pool-a"
        """,
    }
    # one problem, once, at the default section that writes it; not again where it is inherited
    assert findings(tmp_path, "D103", files) == [("D103", 4, 1)]
    files["policy/queues.toml"] = (
        files["policy/queues.toml"]
        .replace('max_retry_interval = "1 hour"', "")
        .replace('max_age = "1 day"', 'max_age = "1 hour"')
    )
    # below the interval and below the one-day minimum: two problems of the one key
    assert findings(tmp_path / "age", "D103", files) == [("D103", 3, 1), ("D103", 3, 1)]


def test_d103_a_cap_equal_to_the_interval_is_allowed(tmp_path: Path) -> None:
    files = {
        "policy/init.lua": """
        local queue_module = require 'policy-extras.queue'
        local queue_helper = queue_module:setup { '/opt/kumomta/etc/policy/queues.toml' }
        """,
        "policy/queues.toml": """
        [queue.'a.example']
        retry_interval = "1 hour"
        max_retry_interval = "1 hour"
        max_age = "1 hour"
        """,
    }
    # equal is not below: neither the cap nor max_age is a problem (max_age is below the minimum)
    got = findings(tmp_path, "D103", files)
    assert got == [("D103", 4, 1)]
    files["policy/queues.toml"] = files["policy/queues.toml"].replace(
        'max_retry_interval = "1 hour"', 'max_retry_interval = "59 minutes"'
    )
    assert findings(tmp_path / "below", "D103", files) == [("D103", 3, 1), ("D103", 4, 1)]
