"""Values real policies compute: `os.getenv('X') or 'default'`, concatenation with unknown parts,
single-assignment locals, loops over literal tables; findings on a default say so."""

from __future__ import annotations

from pathlib import Path

from auditor.lua.literal import Lit, Unknown
from tests.conftest import audit, write_tree
from tests.test_lua_literal import evaluate


def test_getenv_or_default_is_the_default_when_unset() -> None:
    for expr in ("os.getenv('X') or 8", "os.getenv 'X' or 8", "(os.getenv('X')) or 8"):
        value = evaluate(expr)
        assert isinstance(value, Lit), expr
        assert (value.value, value.when) == (8, "X is unset"), expr


def test_or_on_known_values_picks_like_lua() -> None:
    assert (evaluate("nil or 'a'").value, evaluate("nil or 'a'").when) == ("a", None)
    assert evaluate("'a' or 'b'").value == "a"
    assert evaluate("false or 5").value == 5
    any_or = evaluate("params.port or 25")
    assert isinstance(any_or, Lit) and any_or.when == "params.port is nil"
    assert isinstance(evaluate("os.getenv('X') or y"), Unknown)  # no default: stays unknown


def test_concatenation_keeps_known_prefix_and_suffix() -> None:
    listen = evaluate("'0.0.0.0:' .. port")
    assert isinstance(listen, Unknown) and (listen.prefix, listen.suffix) == ("0.0.0.0:", "")
    path = evaluate("'/opt/kumomta/etc/policy/' .. name .. '.toml'")
    assert isinstance(path, Unknown)
    assert (path.prefix, path.suffix) == ("/opt/kumomta/etc/policy/", ".toml")
    assert evaluate("'a' .. tostring(25)").value == "a25"
    defaulted = evaluate("'0.0.0.0:' .. (os.getenv('PORT') or '25')")
    assert isinstance(defaulted, Lit)
    assert (defaulted.value, defaulted.when) == ("0.0.0.0:25", "PORT is unset")


def test_getenv_alone_is_unknown_with_its_variable() -> None:
    value = evaluate("os.getenv('KUMO_LISTEN')")
    assert isinstance(value, Unknown) and value.env == "KUMO_LISTEN"


HTTP = """
local kumo = require 'kumo'
local listen = os.getenv('KUMO_HTTP') or '{default}'
kumo.on('init', function()
  kumo.start_http_listener { listen = listen, trusted_hosts = { '10.0.0.0/8' } }
end)
"""


def test_finding_on_a_default_says_by_default(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": HTTP.replace("{default}", "0.0.0.0:8000")})
    found = {f.code: f for f in audit(tmp_path).findings}
    s104 = found["S104"]
    assert (s104.line, s104.column, s104.severity.value) == (4, 65, "error")
    assert s104.message.endswith("; this holds by default (when KUMO_HTTP is unset)")
    s105 = found["S105"]
    assert (s105.line, s105.column) == (4, 39)
    assert "by default (when KUMO_HTTP is unset)" in s105.message


def test_loopback_default_is_no_finding(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": HTTP.replace("{default}", "127.0.0.1:8000")})
    assert [f.code for f in audit(tmp_path).findings if f.code.startswith("S10")] == []


LOOP = """
local kumo = require 'kumo'
kumo.on('init', function()
  for _, port in ipairs { 2025 } do
    kumo.start_esmtp_listener {
      listen = '{host}:' .. tostring(port),
      relay_hosts = { '0.0.0.0/0' },
    }
  end
end)
"""


def test_loop_over_a_literal_table_gives_the_listen_address(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": LOOP.replace("{host}", "0.0.0.0")})
    (s101,) = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert (s101.line, s101.column, s101.severity.value) == (6, 23, "error")
    assert "listener 0.0.0.0:2025 " in s101.message


def test_loop_with_a_loopback_host_is_a_warning(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": LOOP.replace("{host}", "127.0.0.1")})
    (s101,) = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert (s101.line, s101.column, s101.severity.value) == (6, 23, "warning")


def test_computed_port_with_a_known_host(tmp_path: Path) -> None:
    policy = LOOP.replace("ipairs { 2025 }", "ipairs(ports)").replace("{host}", "{h}")
    write_tree(tmp_path, {"init.lua": policy.replace("{h}", "0.0.0.0")})
    (s101,) = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert s101.severity.value == "error" and "listener 0.0.0.0:<port> " in s101.message
    write_tree(tmp_path, {"init.lua": policy.replace("{h}", "127.0.0.1")})
    (s101,) = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert s101.severity.value == "warning"


def test_relay_list_checked_element_by_element(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local kumo = require 'kumo'
            kumo.on('init', function()
              kumo.start_esmtp_listener {
                listen = '0.0.0.0:25',
                relay_hosts = { '10.0.0.0/24', os.getenv('RELAY_NET') or '0.0.0.0/0', peer_net },
              }
            end)
            """
        },
    )
    found = [f for f in audit(tmp_path).findings if f.code.startswith("S1")]
    assert [(f.code, f.line, f.column, f.severity.value) for f in found] == [
        ("S101", 5, 36, "error"),
        ("S101", 5, 75, "info"),  # peer_net: known only at run time, named rather than guessed
    ]
    assert found[0].message.endswith("by default (when RELAY_NET is unset)")


def test_reassigned_local_is_not_followed(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local kumo = require 'kumo'
            local listen = '0.0.0.0:8000'
            listen = compute()
            kumo.on('init', function()
              kumo.start_http_listener { listen = listen, trusted_hosts = { '10.0.0.0/8' } }
            end)
            """
        },
    )
    assert [f.code for f in audit(tmp_path).findings if f.code.startswith("S10")] == []


BUILT = """
local kumo = require 'kumo'
kumo.on('init', function()
  local params = { listen = '0.0.0.0:25' }
  {assign}
  kumo.start_esmtp_listener(params)
end)
"""


def _relay(tmp_path: Path, assign: str) -> list[tuple[str, int, int, str]]:
    write_tree(tmp_path, {"init.lua": BUILT.replace("{assign}", assign)})
    return [
        (f.code, f.line, f.column, f.severity.value)
        for f in audit(tmp_path).findings
        if f.code.startswith("S1")
    ]


def test_table_built_field_by_field_is_checked(tmp_path: Path) -> None:
    assert _relay(tmp_path, "params.relay_hosts = { '0.0.0.0/0' }") == [("S101", 4, 26, "error")]
    assert _relay(tmp_path, "params['relay_hosts'] = { '0.0.0.0/0' }") == [("S101", 4, 29, "error")]


def test_field_set_conditionally_or_after_a_call_is_not_guessed(tmp_path: Path) -> None:
    assert _relay(tmp_path, "if x then params.relay_hosts = { '0.0.0.0/0' } end") == []
    assert _relay(tmp_path, "merge(params, x); params.relay_hosts = { '0.0.0.0/0' }") == []
    assert _relay(tmp_path, "params.relay_hosts = { '10.0.0.0/24' }") == []


def test_field_set_to_nil_is_removed(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local kumo = require 'kumo'
            kumo.on('get_queue_config', function(domain)
              local params = { retry_interval = '1m', protocol = 5 }
              params.protocol = nil
              return kumo.make_queue_config(params)
            end)
            """
        },
    )
    assert [f.code for f in audit(tmp_path).findings if f.code.startswith("E2")] == []


FUNCTIONS = """
local kumo = require 'kumo'
local function listen_address()
  return '{listen}'
end
local function relay()
  if x then
    return '{first}'
  end
  return '0.0.0.0/0'
end
kumo.on('init', function()
  kumo.start_esmtp_listener { listen = listen_address(), relay_hosts = { {relay} } }
end)
"""


def _policy(listen: str, first: str, relay: str) -> str:
    return FUNCTIONS.replace("{listen}", listen).replace("{first}", first).replace("{relay}", relay)


def test_local_function_returning_a_literal_gives_its_value(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": _policy("0.0.0.0:25", "0.0.0.0/0", "relay()")})
    (s101,) = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert (s101.line, s101.column, s101.severity.value) == (12, 74, "error")
    assert "listener 0.0.0.0:25 " in s101.message
    write_tree(tmp_path, {"init.lua": _policy("127.0.0.1:25", "0.0.0.0/0", "relay()")})
    (s101,) = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert s101.severity.value == "warning"


def test_function_returning_one_of_several_values_is_not_guessed(tmp_path: Path) -> None:
    """Neither of its values is taken for the element: it is named as known only at run time."""
    write_tree(tmp_path, {"init.lua": _policy("0.0.0.0:25", "10.0.0.0/8", "relay()")})
    found = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert [(f.line, f.column, f.severity.value) for f in found] == [(12, 74, "info")]


# Monitor-glob lists computed by the policy, checked element by element (R105).
# K:docs/reference/kumo/set_config_monitor_globs.md: GLOBS is an array-style table of globs that
# replaces the default '/opt/kumomta/etc/**/*.{lua,json,toml,yaml}'.
GLOBS = """
local kumo = require 'kumo'
local sources = require 'policy-extras.sources'
sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
kumo.on('init', function()
  local globs = { '/opt/kumomta/etc/policy/*.lua' }
  {build}
  kumo.set_config_monitor_globs(globs)
end)
"""
SOURCES = "[source.'a']\nsource_address = '10.0.0.1'\n"


def _r105(tmp_path: Path, build: str) -> list[tuple[str, int, int, str]]:
    write_tree(
        tmp_path,
        {"policy/init.lua": GLOBS.replace("{build}", build), "policy/sources.toml": SOURCES},
    )
    return [
        (f.code, f.line, f.column, f.severity.value)
        for f in audit(tmp_path).findings
        if f.code == "R105"
    ]


def test_glob_list_built_with_table_insert_is_checked(tmp_path: Path) -> None:
    assert _r105(tmp_path, "table.insert(globs, '/opt/kumomta/etc/policy/*.json')") == [
        ("R105", 3, 17, "warning")
    ]
    assert _r105(tmp_path, "table.insert(globs, '/opt/kumomta/etc/policy/*.toml')") == []


def test_glob_list_appended_by_length_and_in_a_loop(tmp_path: Path) -> None:
    loop = "for _, ext in ipairs { 'json', '{ext}' } do globs[#globs + 1] = '/opt/kumomta/etc/policy/*.' .. ext end"
    assert _r105(tmp_path, loop.replace("{ext}", "yaml")) == [("R105", 3, 17, "warning")]
    assert _r105(tmp_path, loop.replace("{ext}", "toml")) == []
    local = "local exts = { 'json', '{ext}' }\n  for _, e in ipairs(exts) do table.insert(globs, '/opt/kumomta/etc/policy/*.' .. e) end"
    assert _r105(tmp_path, local.replace("{ext}", "yaml")) == [("R105", 3, 17, "warning")]
    assert _r105(tmp_path, local.replace("{ext}", "toml")) == []


def test_computed_glob_that_may_cover_a_file_is_an_info(tmp_path: Path) -> None:
    # the prefix and suffix known of the computed glob allow it to match sources.toml
    maybe = "table.insert(globs, '/opt/kumomta/etc/policy/' .. os.getenv('DATA_GLOB'))"
    found = _r105(tmp_path, maybe)
    assert found == [("R105", 3, 17, "info")]
    (finding,) = [f for f in audit(tmp_path).findings if f.code == "R105"]
    assert "whether '/opt/kumomta/etc/policy/' .. os.getenv('DATA_GLOB') does" in finding.message
    # a computed glob under another directory cannot cover it: the warning stays
    elsewhere = "table.insert(globs, '/srv/other/' .. os.getenv('DATA_GLOB'))"
    assert _r105(tmp_path, elsewhere) == [("R105", 3, 17, "warning")]
    # added only when a condition holds: what it would add may cover it
    conditional = "if extra then table.insert(globs, '/opt/kumomta/etc/**/*.toml') end"
    assert _r105(tmp_path, conditional) == [("R105", 3, 17, "info")]


def test_glob_list_passed_to_unknown_code_is_not_guessed(tmp_path: Path) -> None:
    assert _r105(tmp_path, "extend(globs)") == []
    assert _r105(tmp_path, "table.insert(globs, 1, '/opt/kumomta/etc/policy/*.json')") == []


def test_concatenated_glob_with_a_known_directory(tmp_path: Path) -> None:
    build = "local dir = '/opt/kumomta/etc/' .. 'policy/'\n  table.insert(globs, dir .. '{ext}')"
    assert _r105(tmp_path, build.replace("{ext}", "*.json")) == [("R105", 3, 17, "warning")]
    assert _r105(tmp_path, build.replace("{ext}", "*.toml")) == []


# K:docs/reference/kumo/start_esmtp_listener/relay_hosts.md; trusted hosts:
# K:docs/reference/kumo/start_http_listener/trusted_hosts.md
def test_relay_and_trusted_lists_built_by_insert_are_checked(tmp_path: Path) -> None:
    policy = """
    local kumo = require 'kumo'
    kumo.on('init', function()
      local relay = { '127.0.0.1' }
      for _, net in ipairs { '10.0.0.0/24', '{net}' } do
        table.insert(relay, net)
      end
      local trusted = {}
      trusted[#trusted + 1] = '{trusted}'
      kumo.start_esmtp_listener { listen = '0.0.0.0:25', relay_hosts = relay }
      kumo.start_http_listener { listen = '0.0.0.0:8000', use_tls = true, trusted_hosts = trusted }
    end)
    """
    write_tree(
        tmp_path,
        {"init.lua": policy.replace("{net}", "0.0.0.0/0").replace("{trusted}", "10.1.0.0/16")},
    )
    found = [f for f in audit(tmp_path).findings if f.code in ("S101", "S104")]
    assert [(f.code, f.line, f.column, f.severity.value) for f in found] == [
        ("S101", 4, 41, "error"),
        ("S104", 8, 27, "error"),
    ]
    write_tree(
        tmp_path,
        {"init.lua": policy.replace("{net}", "10.0.1.0/24").replace("{trusted}", "127.0.0.1")},
    )
    assert [f.code for f in audit(tmp_path).findings if f.code in ("S101", "S104")] == []


def test_tonumber_of_getenv_keeps_the_variable() -> None:
    # K:docs/userguide/configuration/example.md style: ports and limits read from the environment
    port = evaluate("tonumber(os.getenv 'PORT') or 2025")
    assert isinstance(port, Lit) and (port.value, port.when) == (2025, "PORT is unset")
    assert evaluate("tonumber('25')").value == 25
    assert evaluate("tonumber(25.5)").value == 25.5
    assert isinstance(evaluate("tonumber('many')"), Unknown)
    assert isinstance(evaluate("tonumber(x) or 25"), Lit)


ENV_LISTENER = """
local kumo = require 'kumo'
local LISTEN = os.getenv 'KUMO_LISTEN' or '{listen}'
local RELAY = os.getenv "RELAY" or "{relay}"
kumo.on('init', function()
  kumo.start_esmtp_listener { listen = LISTEN, relay_hosts = { RELAY } }
end)
"""


def test_finding_on_two_defaults_names_both(tmp_path: Path) -> None:
    # K:docs/reference/kumo/start_esmtp_listener/relay_hosts.md; listen.md
    policy = ENV_LISTENER.replace("{listen}", "0.0.0.0:25").replace("{relay}", "0.0.0.0/0")
    write_tree(tmp_path, {"init.lua": policy})
    (s101,) = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert (s101.line, s101.column, s101.severity.value) == (5, 64, "error")
    assert s101.message.endswith(
        "; this holds by default (when KUMO_LISTEN is unset and RELAY is unset)"
    )
    policy = ENV_LISTENER.replace("{listen}", "0.0.0.0:25").replace("{relay}", "10.0.0.0/24")
    write_tree(tmp_path, {"init.lua": policy})
    assert [f.code for f in audit(tmp_path).findings if f.code == "S101"] == []


# A data path computed with a known directory and extension (K:docs/reference/kumo/toml_load.md;
# monitoring: K:docs/reference/configuration.md, "Configuration Monitoring").
COMPUTED_PATH = """
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.set_config_monitor_globs { {globs} }
end)
kumo.on('smtp_server_mail_from', function(sender)
  local rules = kumo.toml_load('/opt/kumomta/etc/policy/' .. sender.domain .. '{ext}')
end)
"""


def _computed_path(tmp_path: Path, globs: str, ext: str) -> list[tuple[str, int, int, str]]:
    policy = COMPUTED_PATH.replace("{globs}", globs).replace("{ext}", ext)
    write_tree(tmp_path, {"policy/init.lua": policy})
    return [
        (f.code, f.line, f.column, f.severity.value)
        for f in audit(tmp_path).findings
        if f.code == "R105"
    ]


def test_computed_data_path_outside_the_globs_is_unmonitored(tmp_path: Path) -> None:
    narrow = "'/opt/kumomta/etc/policy/*.lua'"
    assert _computed_path(tmp_path, narrow, ".toml") == [("R105", 6, 32, "warning")]
    (finding,) = [f for f in audit(tmp_path).findings if f.code == "R105"]
    assert "/opt/kumomta/etc/policy/....toml" in finding.message
    wide = "'/opt/kumomta/etc/**/*.{lua,toml}'"
    assert _computed_path(tmp_path, wide, ".toml") == []


def test_computed_data_path_that_a_glob_may_cover_is_an_info(tmp_path: Path) -> None:
    # only files named a*.toml are watched: whether the computed name is one is known at run time
    partial = "'/opt/kumomta/etc/policy/*.lua', '/opt/kumomta/etc/policy/a*.toml'"
    assert _computed_path(tmp_path, partial, ".toml") == [("R105", 6, 32, "info")]


def test_conditional_expression_names_its_condition() -> None:
    # Lua 5.4 manual 3.4.5: `c and a or b` is a when c is true, b when c is false or nil
    value = evaluate("is_prod and '127.0.0.1:25' or '0.0.0.0:25'")
    assert isinstance(value, Lit)
    assert (value.value, value.when) == ("0.0.0.0:25", "is_prod is false or nil")
    assert evaluate("true and 'a' or 'b'").value == "a"
    assert evaluate("false and 'a' or 'b'").value == "b"
    assert evaluate("nil and 1").value is None
    assert isinstance(evaluate("x and 'a'"), Unknown)


def test_finding_on_a_conditional_listener_names_the_variable(tmp_path: Path) -> None:
    # K:docs/reference/kumo/start_esmtp_listener/relay_hosts.md
    policy = """
    local kumo = require 'kumo'
    local prod = os.getenv('PROD')
    kumo.on('init', function()
      kumo.start_esmtp_listener {
        listen = prod and '127.0.0.1:25' or '{other}',
        relay_hosts = { '0.0.0.0/0' },
      }
    end)
    """
    write_tree(tmp_path, {"init.lua": policy.replace("{other}", "0.0.0.0:25")})
    (s101,) = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert (s101.line, s101.column, s101.severity.value) == (6, 21, "error")
    assert s101.message.endswith("; this holds by default (when PROD is unset)")
    write_tree(tmp_path, {"init.lua": policy.replace("{other}", "127.0.0.2:25")})
    (s101,) = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert s101.severity.value == "warning"


# K:docs/reference/kumo/define_spool/_index.md: kumod needs the `data` and `meta` spools; a loop over a
# literal list of names defines one spool per element.
SPOOL_LOOP = """
local kumo = require 'kumo'
kumo.on('init', function()
  for _, name in ipairs { {names} } do
    kumo.define_spool { name = name, path = '/var/spool/kumomta/' .. name }
  end
  kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
end)
"""


def test_loop_over_literal_names_defines_each_spool(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": SPOOL_LOOP.replace("{names}", "'data', 'meta'")})
    assert [f.code for f in audit(tmp_path).findings if f.code == "D101"] == []
    write_tree(tmp_path, {"init.lua": SPOOL_LOOP.replace("{names}", "'data', 'metadata'")})
    (d101,) = [f for f in audit(tmp_path).findings if f.code == "D101"]
    assert (d101.line, d101.column) == (6, 3)
    assert "does not define the meta spool" in d101.message


def test_listeners_started_in_a_loop_are_checked_one_by_one(tmp_path: Path) -> None:
    # K:docs/reference/kumo/start_esmtp_listener/relay_hosts.md
    policy = """
    local kumo = require 'kumo'
    kumo.on('init', function()
      for _, listen in ipairs { '127.0.0.1:25', '{second}' } do
        kumo.start_esmtp_listener { listen = listen, relay_hosts = { '0.0.0.0/0' } }
      end
    end)
    """
    write_tree(tmp_path, {"init.lua": policy.replace("{second}", "0.0.0.0:587")})
    found = sorted(
        (f.line, f.column, f.severity.value, "0.0.0.0:587" in f.message)
        for f in audit(tmp_path).findings
        if f.code == "S101"
    )
    assert found == [(4, 66, "error", True), (4, 66, "warning", False)]
    write_tree(tmp_path, {"init.lua": policy.replace("{second}", "[::1]:587")})
    found = [f.severity.value for f in audit(tmp_path).findings if f.code == "S101"]
    assert found == ["warning", "warning"]
