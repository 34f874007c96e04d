"""Sxxx security rules on small real policy trees, run through the whole check pipeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from auditor.config.settings import Config, Thresholds
from auditor.core.findings import Severity
from tests.conftest import audit, codes_at, run_cli, write_tree

FIXTURES = Path(__file__).parent / "fixtures" / "rules_security"

SPOOLS = """
kumo.on('init', function()
  kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data' }
  kumo.define_spool { name = 'meta', path = '/var/spool/kumomta/meta' }
end)
"""


def findings(
    tmp_path: Path, code: str, files: dict[str, str], **kwargs: object
) -> list[tuple[str, int, int]]:
    write_tree(tmp_path, files)
    return codes_at(audit(tmp_path, **kwargs).findings, code)


def messages(tmp_path: Path, code: str) -> list[str]:
    return [f.message for f in audit(tmp_path).findings if f.code == code]


# ----- S101 open-relay -----------------------------------------------------------------------------------


def test_s101_open_and_wide_relay_hosts_point_at_the_element(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S101",
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.start_esmtp_listener {
                listen = '0.0.0.0:25',
                relay_hosts = { '127.0.0.1', '0.0.0.0/0', '10.0.0.0/8', '10.1.2.0/24' },
              }
              kumo.start_esmtp_listener { listen = '[::]:25', relay_hosts = { '::/0', '0/0' } }
              kumo.start_esmtp_listener { listen = '0.0.0.0:26', relay_hosts = { 'any' } }
            end)
            """
        },
    )
    assert got == [
        ("S101", 4, 34),
        ("S101", 4, 47),
        ("S101", 6, 67),
        ("S101", 6, 75),
        ("S101", 7, 70),
    ]
    text = " ".join(messages(tmp_path, "S101"))
    assert "open relay" in text and "/8 is wider than /16" in text


def test_s101_peer_via_and_dynamic_parameters(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S101",
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.start_esmtp_listener {
                listen = '0.0.0.0:25',
                peer = {
                  ['10.1.2.0/24'] = { relay_hosts = { '0/0' } },
                  ['0.0.0.0/0'] = { relay_hosts = { '172.16.0.0/12' } },
                },
                via = { ['10.0.0.1'] = { relay_hosts = { '::/0' } } },
              }
            end)
            kumo.on('smtp_server_get_dynamic_parameters', function(listener, conn_meta)
              if listener == '10.0.0.2:25' then
                return { relay_hosts = { '192.168.0.0/16' } }
              end
              return { peer = { ['0/0'] = { relay_hosts = { '0.0.0.0/0' } } } }
            end)
            """
        },
    )
    # the /24 peer block narrows 0/0 to itself; /12 inside the 0/0 peer block is too wide
    assert got == [("S101", 6, 41), ("S101", 8, 46), ("S101", 15, 49)]


def test_s101_quiet_for_narrow_and_default_relay_hosts(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S101",
        {
            "init.lua": """
            local hosts = os.getenv('RELAY')
            kumo.on('init', function()
              kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
              kumo.start_esmtp_listener {
                listen = '0.0.0.0:587',
                relay_hosts = { '127.0.0.1', '::1', '192.168.1.0/24', '2001:db8::/48' },
              }
              kumo.start_esmtp_listener { listen = '0.0.0.0:588', relay_hosts = hosts }
              kumo.start_esmtp_listener { listen = '0.0.0.0:589', relay_hosts = { '10.0.0.1/8' } }
            end)
            """
        },
    )
    assert got == []


def test_s101_threshold_comes_from_configuration(tmp_path: Path) -> None:
    files = {
        "init.lua": """
        kumo.on('init', function()
          kumo.start_esmtp_listener { relay_hosts = { '10.0.0.0/8' } }
        end)
        """
    }
    loose = Config(thresholds=Thresholds(relay_ipv4_min_prefix=8))
    assert findings(tmp_path, "S101", files, config=loose) == []
    assert findings(tmp_path, "S101", files) == [("S101", 2, 47)]


# ----- S102 wildcard-relay-to ----------------------------------------------------------------------------

LISTENER_DOMAINS_LUA = """
local listener_domains = require 'policy-extras.listener_domains'
kumo.on('get_listener_domain', listener_domains:setup { '/opt/kumomta/etc/policy/%s' })
"""


def test_s102_wildcard_relay_to_in_toml(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S102",
        {
            "policy/init.lua": LISTENER_DOMAINS_LUA % "listener_domains.toml",
            "policy/listener_domains.toml": """
            ["*"]
            relay_to = true

            ["*.example.com"]
            relay_to = true

            ["support.example.com"]
            relay_to = true

            ["*.example.net"]
            relay_to = false

            [listener."0.0.0.0:25"."*"]
            relay_to = true
            """,
        },
    )
    assert got == [("S102", 2, 1), ("S102", 5, 1), ("S102", 14, 1)]


def test_s102_wildcard_relay_to_in_json(tmp_path: Path) -> None:
    data = {
        "*": {"log_oob": True},
        "*.example.org": {"relay_to": True},
        "a.example": {"relay_to": True},
    }
    got = findings(
        tmp_path,
        "S102",
        {
            "policy/init.lua": LISTENER_DOMAINS_LUA % "listener_domains.json",
            "policy/listener_domains.json": json.dumps(data, indent=2),
        },
    )
    assert got == [("S102", 6, 5)]


def test_s102_unconditional_make_listener_domain(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S102",
        {
            "init.lua": """
            kumo.on('get_listener_domain', function(domain, listener, conn_meta)
              if domain == 'support.example.com' then
                return kumo.make_listener_domain { relay_to = true }
              end
              return kumo.make_listener_domain { relay_to = true, log_oob = true }
            end)
            """
        },
    )
    assert got == [("S102", 5, 38)]


# ----- S103 wide-relay-from ------------------------------------------------------------------------------


def test_s103_wide_relay_from_in_toml_and_json(tmp_path: Path) -> None:
    data = {"b.example": {"relay_from": ["203.0.113.0/24", "::/0"]}}
    got = findings(
        tmp_path,
        "S103",
        {
            "policy/init.lua": """
            local listener_domains = require 'policy-extras.listener_domains'
            kumo.on('get_listener_domain', listener_domains:setup {
              '/opt/kumomta/etc/policy/ld.toml',
              '/opt/kumomta/etc/policy/ld.json',
            })
            """,
            "policy/ld.toml": """
            ["a.example"]
            relay_from = ["203.0.113.128/28", "0.0.0.0/0", "10.0.0.0/12"]
            """,
            "policy/ld.json": json.dumps(data, indent=2),
        },
    )
    assert sorted(got) == [("S103", 2, 35), ("S103", 2, 48), ("S103", 5, 7)]


def test_s103_every_wide_network_after_an_unknown_one(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S103",
        {
            "init.lua": """
            kumo.on('get_listener_domain', function(domain)
              return kumo.make_listener_domain { relay_from = { trusted, 42, '0/0' } }
            end)
            """
        },
    )
    assert got == [("S103", 2, 66)]


def test_s103_lua_make_listener_domain_and_quiet_cases(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S103",
        {
            "init.lua": """
            kumo.on('get_listener_domain', function(domain)
              if domain == 'a.example' then
                return kumo.make_listener_domain { relay_from = { '0/0' } }
              end
              return kumo.make_listener_domain { relay_from = { '10.0.0.0/24', '2001:db8:1::/48' } }
            end)
            """
        },
    )
    assert got == [("S103", 3, 55)]


# ----- S104 / S105 ---------------------------------------------------------------------------------------


def test_s104_s105_http_listener_beyond_loopback(tmp_path: Path) -> None:
    files = {
        "init.lua": """
        kumo.on('init', function()
          kumo.start_http_listener { listen = '0.0.0.0:8000', trusted_hosts = { '127.0.0.1', '10.0.0.0/8' } }
          kumo.start_http_listener { listen = '[::]:8001', use_tls = false, trusted_hosts = { '::/0' } }
          kumo.start_http_listener { listen = 'mta.example.com:8002', use_tls = true }
          kumo.start_http_listener { listen = '127.0.0.1:8003', trusted_hosts = { '0/0' } }
          kumo.start_http_listener { trusted_hosts = { '0/0' } }
          kumo.start_http_listener { listen = 'localhost:8004' }
        end)
        """
    }
    assert findings(tmp_path, "S104", files) == [("S104", 2, 86), ("S104", 3, 87)]
    assert codes_at(audit(tmp_path).findings, "S105") == [("S105", 2, 39), ("S105", 3, 52)]


def test_s104_s105_quiet_for_documented_listeners(tmp_path: Path) -> None:
    files = {
        "init.lua": """
        kumo.on('init', function()
          kumo.start_http_listener { listen = '127.0.0.1:8000', trusted_hosts = { '127.0.0.1', '::1' } }
          kumo.start_http_listener {
            listen = '0.0.0.0:8001', use_tls = true, trusted_hosts = { '127.0.0.1', '::1' },
          }
        end)
        """
    }
    write_tree(tmp_path, files)
    result = audit(tmp_path)
    assert codes_at(result.findings, "S104") == [] and codes_at(result.findings, "S105") == []


# ----- S106 hardcoded-secret -----------------------------------------------------------------------------


def test_s106_auth_handlers_comparing_with_literals(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S106",
        {
            "init.lua": """
            local API_PASSWORD = 'correct horse'
            kumo.on('http_server_validate_auth_basic', function(user, password)
              return user == 'api' and password == API_PASSWORD
            end)
            kumo.on('smtp_server_auth_plain', function(authz, authc, pw, conn_meta)
              local users = { daniel = 'tiger' }
              if pw == '' then return false end
              return users[authc] == pw
            end)
            kumo.on('http_server_validate_auth_bearer', function(token)
              return 'sekrit-token' == token
            end)
            """
        },
    )
    assert got == [("S106", 1, 22), ("S106", 6, 17), ("S106", 11, 10)]
    for message in messages(tmp_path, "S106"):
        assert "tiger" not in message and "sekrit" not in message and "horse" not in message


def test_s106_literal_credentials_in_lua_tables(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S106",
        {
            "init.lua": """
            kumo.on('get_egress_path_config', function(domain)
              return kumo.make_egress_path {
                smtp_auth_plain_username = 'relay',
                smtp_auth_plain_password = 'p4ssw0rd',
              }
            end)
            kumo.on('get_egress_source', function(name)
              return kumo.make_egress_source { name = name, socks5_proxy_password = 'pw' }
            end)
            kumo.on('smtp_server_message_received', function(msg)
              local signer = kumo.dkim.rsa_sha256_signer {
                domain = 'example.com', selector = 's1',
                key = { key_data = '-----BEGIN PRIVATE KEY-----' },
              }
              msg:dkim_sign(signer)
            end)
            """
        },
    )
    assert got == [("S106", 4, 5), ("S106", 8, 49), ("S106", 13, 13)]
    for message in messages(tmp_path, "S106"):
        assert "p4ssw0rd" not in message and "BEGIN" not in message


def test_s106_quiet_for_key_sources_and_credential_lookups(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S106",
        {
            "init.lua": """
            local creds = require 'creds'
            kumo.on('http_server_validate_auth_basic', function(user, password)
              if password == nil or password == '' then return false end
              return creds.check(user, password)
            end)
            kumo.on('get_egress_path_config', function(domain)
              return kumo.make_egress_path {
                smtp_auth_plain_password = '/opt/kumomta/etc/secrets/relay.pw',
                tls_private_key = { vault_mount = 'secret', vault_path = 'tls/' .. domain },
              }
            end)
            kumo.on('smtp_server_message_received', function(msg)
              local signer = kumo.dkim.rsa_sha256_signer {
                key = { key_data = creds.dkim_key(msg) },
              }
            end)
            """,
            "creds.lua": "return { check = function() return false end, dkim_key = function() end }\n",
        },
    )
    assert got == []


def test_s106_secrets_in_data_files(tmp_path: Path) -> None:
    data = {
        "source": {
            "proxy-1": {"socks5_proxy_server": "10.0.0.9:1080", "socks5_proxy_password": "x1"}
        }
    }
    got = findings(
        tmp_path,
        "S106",
        {
            "policy/init.lua": """
            local shaping = require 'policy-extras.shaping'
            local sources = require 'policy-extras.sources'
            sources:setup { '/opt/kumomta/etc/policy/sources.json' }
            kumo.on('get_egress_path_config', shaping:setup { '/opt/kumomta/etc/policy/shaping.toml' })
            """,
            "policy/shaping.toml": """
            ["smarthost.example"]
            smtp_auth_plain_username = "relay"
            smtp_auth_plain_password = "hunter2"

            ["other.example"]
            smtp_auth_plain_password = { vault_mount = "secret", vault_path = "relay" }
            """,
            "policy/sources.json": json.dumps(data, indent=2),
        },
    )
    assert got == [("S106", 3, 1), ("S106", 5, 7)]
    for message in messages(tmp_path, "S106"):
        assert "hunter2" not in message and "x1" not in message.split()


# ----- S107 unsafe-listener-option -----------------------------------------------------------------------


def test_s107_options_outside_a_narrow_peer_block(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S107",
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.start_esmtp_listener {
                listen = '0.0.0.0:25',
                allow_xclient = true,
                peer = {
                  ['10.0.5.10'] = { require_proxy_protocol = true, allow_xclient = true },
                  ['0.0.0.0/0'] = { require_proxy_protocol = true },
                },
                via = { ['10.0.0.1'] = { allow_xclient = true } },
              }
              kumo.start_esmtp_listener { listen = '127.0.0.1:2026', deferred_queue = true }
            end)
            kumo.on('smtp_server_get_dynamic_parameters', function(listener, conn_meta)
              if conn_meta:get_meta('received_from') == '10.0.5.11:1234' then
                return { allow_xclient = true }
              end
              return { require_proxy_protocol = true }
            end)
            """
        },
    )
    assert got == [
        ("S107", 4, 5),
        ("S107", 7, 25),
        ("S107", 9, 30),
        ("S107", 11, 58),
        ("S107", 17, 12),
    ]


def test_s107_quiet_for_false_and_peer_scoped_options(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S107",
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.start_esmtp_listener {
                listen = '0.0.0.0:25',
                allow_xclient = false,
                deferred_queue = false,
                peer = { ['192.168.10.0/24'] = { require_proxy_protocol = true } },
              }
            end)
            """
        },
    )
    assert got == []


# ----- S108 insecure-tls ---------------------------------------------------------------------------------


def test_s108_lua_default_scope_and_auth_without_tls(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S108",
        {
            "init.lua": """
            kumo.on('get_egress_path_config', function(domain, site_name)
              if domain == 'sink.internal' then
                return kumo.make_egress_path { enable_tls = 'Disabled', allow_smtp_auth_plain_without_tls = true }
              end
              return kumo.make_egress_path { enable_tls = 'OpportunisticInsecure' }
            end)
            local function never_used()
              return kumo.make_egress_path { enable_tls = 'Disabled' }
            end
            """
        },
    )
    assert got == [("S108", 3, 61), ("S108", 5, 34)]


def test_s108_shaping_default_section_toml_and_json(tmp_path: Path) -> None:
    overrides = {
        "default": {"enable_tls": "RequiredInsecure"},
        "partner.example": {"enable_tls": "Disabled"},
    }
    got = findings(
        tmp_path,
        "S108",
        {
            "policy/init.lua": """
            local shaping = require 'policy-extras.shaping'
            kumo.on('get_egress_path_config', shaping:setup {
              '/opt/kumomta/etc/policy/shaping.toml',
              '/opt/kumomta/etc/policy/overrides.json',
            })
            """,
            "policy/shaping.toml": """
            ["default"]
            connection_limit = 10
            enable_tls = "Disabled"

            ["smarthost.example"]
            enable_tls = "OpportunisticInsecure"
            allow_smtp_auth_plain_without_tls = true
            """,
            "policy/overrides.json": json.dumps(overrides, indent=2),
        },
    )
    # shaping.toml: default enable_tls (3:1) and the smarthost's AUTH without TLS (7:1);
    # overrides.json: default enable_tls (3:5); per-domain insecure modes are not a default scope
    assert got == [("S108", 3, 1), ("S108", 3, 5), ("S108", 7, 1)]


def test_s108_quiet_for_secure_defaults(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S108",
        {
            "init.lua": """
            kumo.on('get_egress_path_config', function(domain, site_name)
              return kumo.make_egress_path { enable_tls = 'Opportunistic', allow_smtp_auth_plain_without_tls = false }
            end)
            """
        },
    )
    assert got == []


# ----- S109 process-control ------------------------------------------------------------------------------


def test_s109_process_control_anywhere(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S109",
        {
            "init.lua": """
            local util = require 'util'
            kumo.on('smtp_server_message_received', function(msg)
              os.execute('logger received')
            end)
            local function unused()
              local p = io.popen('hostname')
              pcall(os.exit, 1)
            end
            """,
            "util.lua": "if os.getenv('X') then os.exit(1) end\nreturn {}\n",
        },
    )
    assert got == [("S109", 1, 24), ("S109", 3, 3), ("S109", 6, 13), ("S109", 7, 9)]


def test_s109_quiet_for_harmless_os_and_io_calls(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S109",
        {
            "init.lua": "local t = os.time()\nlocal h = os.getenv('HOSTNAME')\nlocal d = os.date('%Y')\n"
        },
    )
    assert got == []


# ----- S110 loop-protection-removed ----------------------------------------------------------------------


def test_s110_prohibited_hosts_overrides(tmp_path: Path) -> None:
    data = {
        "default": {"prohibited_hosts": ["127.0.0.0/8", "::1", "0.0.0.0", "::"]},
        "x.example": {"prohibited_hosts": ["127.0.0.1"]},
    }
    got = findings(
        tmp_path,
        "S110",
        {
            "policy/init.lua": """
            local shaping = require 'policy-extras.shaping'
            kumo.on('get_egress_path_config', shaping:setup {
              '/opt/kumomta/etc/policy/shaping.toml', '/opt/kumomta/etc/policy/more.json',
            })
            kumo.on('get_queue_config', function(domain)
              local p = kumo.make_egress_path { prohibited_hosts = { '127.0.0.0/8' } }
              local q = kumo.make_egress_path { prohibited_hosts = { '0.0.0.0/0', '::/0' } }
            end)
            """,
            "policy/shaping.toml": """
            ["default"]
            prohibited_hosts = ["127.0.0.0/8", "192.0.2.0/24"]

            ["b.example"]
            prohibited_hosts = ["127.0.0.0/8", "::1", "0.0.0.0", "::", "198.51.100.0/24"]
            """,
            "policy/more.json": json.dumps(data, indent=2),
        },
    )
    assert sorted(got) == [("S110", 2, 1), ("S110", 6, 37), ("S110", 11, 5)]
    text = " ".join(messages(tmp_path, "S110"))
    assert "::1, 0.0.0.0, ::" in text


# ----- documented practice -------------------------------------------------------------------------------


def test_documented_policy_has_no_security_errors(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "documented", tmp_path / "repo")
    result = audit(tmp_path / "repo")
    mine = [f for f in result.findings if f.code[0] in "SD" and f.severity is Severity.ERROR]
    assert mine == []
    # the plain-HTTP admin listener of the documented example is a warning, nothing else
    assert codes_at(result.findings, "S") == [("S105", 28, 14)]


def test_secrets_never_reach_cli_output(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            kumo.on('http_server_validate_auth_basic', function(user, password)
              return password == 'Zq9-secret-value'
            end)
            kumo.on('get_egress_path_config', function(domain)
              return kumo.make_egress_path { smtp_auth_plain_password = 'Zq9-other-secret' }
            end)
            """
        },
    )
    for fmt in ("text", "json", "sarif"):
        proc = run_cli("check", str(tmp_path), "--format", fmt)
        assert "S106" in proc.stdout, proc.stderr
        assert "Zq9" not in proc.stdout + proc.stderr


def test_s101_inline_suppression_with_reason(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data' }
              kumo.define_spool { name = 'meta', path = '/var/spool/kumomta/meta' }
              -- kumo-audit: allow(S101) reason="isolated lab network, no route to the internet"
              kumo.start_esmtp_listener { relay_hosts = { '0.0.0.0/0' } }
            end)
            """
        },
    )
    result = audit(tmp_path)
    (finding,) = [f for f in result.findings if f.code == "S101"]
    assert finding.suppressed and finding.suppression is not None
    assert "lab network" in finding.suppression.reason


def test_s106_secrets_by_name_shape_and_use(tmp_path: Path) -> None:
    """One notion of a secret (auditor.core.secrets), shared with the change set's redaction."""
    got = findings(
        tmp_path,
        "S106",
        {
            "init.lua": """
            local smtp_auth_plain_password = 'hunter2hunter2'
            local cert_path = '/etc/ssl/key.pem'
            local api_token_file = '/run/token'
            local pem = '-----BEGIN RSA PRIVATE KEY-----\\nMIIE'
            local redis = 'redis://:pw123456@10.0.0.1:6379'
            local cfg = { client_secret = 'abc123', username = 'ops' }
            cfg.socks5_proxy_password = 'x1'
            local greeting = 'hello world, no secret here'
            """
        },
    )
    assert got == [
        ("S106", 1, 34),
        ("S106", 4, 13),
        ("S106", 5, 15),
        ("S106", 6, 31),
        ("S106", 7, 29),
    ]


def test_secret_names() -> None:
    from auditor.core.secrets import secret_name, secret_reason, secret_shape

    for name in (
        "password",
        "smtp_auth_plain_password",
        "vault_token",
        "apiKey",
        "client_secret",
        "private_key",
        "db_passwd",
        "key_data",
        "socks5_proxy_password",
        "AccessKey",
    ):
        assert secret_name(name), name
    for name in (
        "username",
        "password_file",
        "token_path",
        "key",
        "source_address",
        "tokens_dir",
        "keyword",
        "secretary_name",
        7,
        None,
        "",
    ):
        assert not secret_name(name), name
    assert secret_name("private_key_pem") and secret_name("client_api_key_value")
    from auditor.core.secrets import may_hold_secrets

    for name in (
        "password",
        "vault_token",
        "apiKey",
        "api-key",
        "access.key",
        "key_data",
        "clientSecret",
        "private_key",
        "db_passwd",
        "credentials",
    ):
        assert secret_name(name) and may_hold_secrets(f"local {name} = 'x'"), name
    assert not may_hold_secrets("local greeting = 'hello'")
    assert secret_reason("smtp_auth_plain_password", "/etc/kumo/pw") is None
    assert secret_reason("key_data", "/not/a/path") == "written inline"
    assert secret_reason("password", "") is None and secret_reason("password", 5) is None
    assert secret_shape("postgres://user:pa55@db/x") and not secret_shape("https://example.com/a@b")
    assert secret_shape("-----BEGIN OPENSSH PRIVATE KEY-----") and not secret_shape(
        "-----BEGIN CERTIFICATE-----"
    )


def test_redactor_markers_compare_without_revealing() -> None:
    from auditor.core.secrets import Redactor, is_marker

    one, other = Redactor(b"salt-one"), Redactor(b"salt-two")
    assert one.marker("tiger") == one.marker("tiger") != one.marker("tiger2")
    assert one.marker("tiger") != other.marker("tiger")
    assert is_marker(one.marker("tiger")) and "tiger" not in one.marker("tiger")
    value = {"a": {"password": "p4ss", "n": 3}, "l": ["postgres://u:p@h/db"], "user": "ops"}
    red = one.value(value)
    assert red["a"]["password"] == one.marker("p4ss") and red["a"]["n"] == 3
    assert is_marker(red["l"][0]) and red["user"] == "ops"
    assert (
        one.text("local x = 'longsecret'", {"longsecret"})
        == f"local x = '{one.marker('longsecret')}'"
    )
    cut = one.text("local k = 'BEGINabcdefgh...", {"BEGINabcdefghijklmnop"})
    assert "BEGIN" not in cut and cut.endswith("...")
    assert one.text("k = 'abcd", {"abcdefgh"}) == f"k = '{one.marker('abcdefgh')}"  # 4 chars: cut
    assert one.text("k = 'abc", {"abcdefgh"}) == "k = 'abc"  # 3 chars: too short to tell


def test_repository_salt_is_kept_in_the_git_dir(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from auditor.core.secrets import FIXED_SALT, SALT_ENV, repository_salt

    monkeypatch.delenv(SALT_ENV, raising=False)
    assert repository_salt(tmp_path) == FIXED_SALT  # not in a repository
    (tmp_path / ".git").mkdir()
    first = repository_salt(tmp_path / "sub")
    assert first != FIXED_SALT and repository_salt(tmp_path) == first
    assert (tmp_path / ".git" / "kumo-audit" / "secret-salt").stat().st_mode & 0o077 == 0
    monkeypatch.setenv(SALT_ENV, "shared")
    assert repository_salt(tmp_path) == b"shared"


def test_linked_worktrees_share_the_repository_salt(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from auditor.core.secrets import FIXED_SALT, SALT_ENV, repository_salt

    monkeypatch.delenv(SALT_ENV, raising=False)
    main = tmp_path / "main"
    main.mkdir()
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"}
    run = {"cwd": main, "env": env, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "-q"], **run)  # type: ignore[call-overload]
    subprocess.run(  # type: ignore[call-overload]
        [
            "git",
            "-c",
            "user.name=a",
            "-c",
            "user.email=a@b",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "i",
        ],
        **run,
    )
    subprocess.run(["git", "worktree", "add", "-q", str(tmp_path / "wt")], **run)  # type: ignore[call-overload]
    salt = repository_salt(main)
    assert salt != FIXED_SALT and repository_salt(tmp_path / "wt") == salt


def test_s106_auth_comparison_with_an_innocently_named_local(tmp_path: Path) -> None:
    got = findings(
        tmp_path,
        "S106",
        {
            "init.lua": """
            local expected = 'opensesame'
            kumo.on('http_server_validate_auth_basic', function(user, password)
              return password == expected
            end)
            """
        },
    )
    assert got == [("S106", 1, 18)]


# ----- the secret values of a state (what the change set redacts) ----------------------------------------


def test_secret_values_as_written_and_as_read(tmp_path: Path) -> None:
    from auditor.rules.security import secret_values

    write_tree(
        tmp_path,
        {
            "policy/init.lua": r"""
            local sources = require 'policy-extras.sources'
            sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
            local smtp_auth_plain_password = 'pa\x73s-lua'
            local ALLOWED = { 'tok\x31', 'tok2', '' }
            kumo.on('smtp_server_auth_plain', function(authz, authc, password, meta)
              if password == 'hun\x74er2' then return true end
              return password == ALLOWED[authc]
            end)
            kumo.on('smtp_server_message_received', function(msg)
              msg:set_meta('password', '')
            end)
            """,
            "policy/sources.toml": """
            [source."a"]
            source_address = "10.0.0.1"
            socks5_proxy_server = "10.0.0.2:1080"
            socks5_proxy_password = "data-pw"
            """,
        },
    )
    ctx = audit(tmp_path).context
    assert secret_values(ctx.model, ctx.data, ctx.api) == {
        "pass-lua",
        r"pa\x73s-lua",
        "hunter2",
        r"hun\x74er2",
        "tok1",
        "tok2",
        r"tok\x31",
        "data-pw",
    }


# ----- edges found by mutation testing -------------------------------------------------------------------


def _relay_policy(listen: str) -> dict[str, str]:
    return {
        "init.lua": SPOOLS
        + f"""
kumo.on('init', function()
  kumo.start_esmtp_listener {{ listen = '{listen}', relay_hosts = {{ '0.0.0.0/0' }} }}
end)
kumo.on('get_listener_domain', function(domain, listener, conn_meta)
  return kumo.make_listener_domain {{ relay_to = true }}
end)
"""
    }


def test_s101_s102_error_unless_every_listener_is_bound_to_loopback(tmp_path: Path) -> None:
    public, local = tmp_path / "public", tmp_path / "local"
    write_tree(public, _relay_policy("10.0.0.1:25"))
    write_tree(local, _relay_policy("127.0.0.1:25"))
    for root, column, severity in ((public, 71, Severity.ERROR), (local, 72, Severity.WARNING)):
        result = audit(root)
        assert codes_at(result.findings, "S10") == [("S101", 7, column), ("S102", 10, 38)]
        assert [f.severity for f in result.findings if f.code in ("S101", "S102")] == [
            severity,
            severity,
        ], root.name


def test_s106_s108_keys_name_the_nested_key_and_the_lua_source(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            kumo.on('get_egress_path_config', function(domain, site_name)
              return kumo.make_egress_path { allow_smtp_auth_plain_without_tls = true }
            end)
            kumo.on('smtp_server_message_received', function(msg)
              local signer = kumo.dkim.rsa_sha256_signer {
                domain = 'example.com', selector = 's1',
                key = { key_data = '-----BEGIN PRIVATE KEY-----' },
              }
              msg:dkim_sign(signer)
            end)
            """
        },
    )
    result = audit(tmp_path)
    got = [(f.code, f.line, f.column, f.key) for f in result.findings if f.code in ("S106", "S108")]
    assert sorted(got) == [
        ("S106", 7, 13, "kumo.dkim.rsa_sha256_signer arg0 key.key_data"),
        ("S108", 2, 34, "lua allow_smtp_auth_plain_without_tls"),
    ]


def test_s101_names_relay_hosts_elements_known_only_at_run_time(tmp_path: Path) -> None:
    """An element read from the environment or computed is an info finding at the element (its
    width cannot be checked); literal elements and a wholly computed list stay as they were."""
    listener = (
        "kumo.start_esmtp_listener { listen = '0.0.0.0:25', relay_hosts = "
        "{ '10.1.0.0/16', os.getenv('RELAY_NET'), '10.' .. extra, extra } }\n"
    )
    write_tree(
        tmp_path,
        {
            "init.lua": "local extra = get()\n"
            + SPOOLS
            + "kumo.on('init', function()\n"
            + listener
            + "end)\n"
        },
    )
    result = audit(tmp_path)
    relay = [f for f in result.findings if f.code == "S101"]
    line = 1 + SPOOLS.count("\n") + 2
    assert [(f.line, f.column, f.severity, f.key) for f in relay] == [
        (line, 83, Severity.INFO, "0.0.0.0:25  relay_hosts computed RELAY_NET"),
        (line, 107, Severity.INFO, "0.0.0.0:25  relay_hosts computed 3"),
        (line, 123, Severity.INFO, "0.0.0.0:25  relay_hosts computed 4"),
    ]
    assert "RELAY_NET" in relay[0].message
    assert "`'10.' .. extra`" in relay[1].message and "`extra`" in relay[2].message
    # the whole list computed: nothing to point at, as before
    write_tree(
        tmp_path,
        {
            "init.lua": "local nets = get()\n"
            + SPOOLS
            + "kumo.on('init', function()\n"
            + "kumo.start_esmtp_listener { listen = '0.0.0.0:25', relay_hosts = nets }\n"
            + "end)\n"
        },
    )
    assert [f for f in audit(tmp_path).findings if f.code == "S101"] == []


def test_s104_names_trusted_hosts_elements_known_only_at_run_time(tmp_path: Path) -> None:
    listener = (
        "kumo.start_http_listener { listen = '0.0.0.0:8000', trusted_hosts = "
        "{ '127.0.0.1', os.getenv('ADMIN_NET'), extra } }\n"
    )
    write_tree(
        tmp_path,
        {"init.lua": "local extra = get()\nkumo.on('init', function()\n" + listener + "end)\n"},
    )
    found = [f for f in audit(tmp_path).findings if f.code == "S104"]
    assert [(f.line, f.column, f.severity, f.key) for f in found] == [
        (3, 84, Severity.INFO, "http 0.0.0.0:8000 trusted_hosts computed ADMIN_NET"),
        (3, 108, Severity.INFO, "http 0.0.0.0:8000 trusted_hosts computed 3"),
    ]
    # a listener on loopback is not exposed, whatever it trusts
    write_tree(tmp_path, {"init.lua": "local extra = get()\nkumo.on('init', function()\n"
                          + listener.replace("0.0.0.0:8000", "127.0.0.1:8000") + "end)\n"})  # fmt: skip
    assert [f for f in audit(tmp_path).findings if f.code == "S104"] == []


def findings_of(root: Path, prefix: str = "S") -> list[tuple[str, str, int, int, str, str]]:
    """(code, path, line, column, key, severity) of the findings whose code starts with prefix."""
    result = audit(root)
    chosen = [f for f in result.findings if f.code.startswith(prefix) and not f.suppressed]
    return sorted((f.code, f.path, f.line, f.column, f.key, f.severity.value) for f in chosen)


def test_s101_entries_skipped_before_the_reported_ones(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.start_esmtp_listener {
                listen = '10.0.0.1:25',
                relay_hosts = { 42, 'not-a-cidr', '0.0.0.0/0' },
                peer = { ['10.0.0.0/8'] = { relay_hosts = { '192.168.0.0/16', '::/0', '10.0.0.0/8' } } },
              }
            end)
            """
        },
    )
    # a number, a malformed network, a network outside the peer block (same or other IP
    # version) never match a peer of that block: skipped, and the entries after them checked
    assert findings_of(tmp_path, "S101") == [
        ("S101", "init.lua", 4, 39, "10.0.0.1:25  relay_hosts 0.0.0.0/0", "error"),
        ("S101", "init.lua", 5, 75, "10.0.0.1:25 peer 10.0.0.0/8 relay_hosts 10.0.0.0/8", "error"),
    ]


@pytest.mark.parametrize(
    ("listen", "handler", "option_severity", "deferred_severity"),
    [
        ("10.0.0.1:25", False, "error", "warning"),
        ("10.0.0.1:25", True, "error", "warning"),
        ("127.0.0.1:25", False, "warning", "warning"),
        ("127.0.0.1:25", True, "warning", "info"),
    ],
)
def test_s107_severity_by_reach_and_deferred_inject_handler(
    tmp_path: Path, listen: str, handler: bool, option_severity: str, deferred_severity: str
) -> None:
    policy = (
        "kumo.on('init', function()\n"
        f"  kumo.start_esmtp_listener {{ listen = '{listen}', allow_xclient = true, "
        "require_proxy_protocol = true, deferred_queue = true }\n"
        "end)\n"
    )
    if handler:
        policy += "kumo.on('smtp_server_message_deferred_inject', function(msg) end)\n"
    write_tree(tmp_path, {"init.lua": policy})
    shift = len(listen) - len("10.0.0.1:25")
    assert findings_of(tmp_path, "S107") == [
        ("S107", "init.lua", 2, 55 + shift, f"{listen}  allow_xclient", option_severity),
        ("S107", "init.lua", 2, 77 + shift, f"{listen}  require_proxy_protocol", option_severity),
        ("S107", "init.lua", 2, 108 + shift, f"{listen}  deferred_queue", deferred_severity),
    ]


def test_s102_s103_listener_sections_and_lua_tables_past_skipped_entries(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local listener_domains = require 'policy-extras.listener_domains'
            kumo.on('get_listener_domain', listener_domains:setup { '/opt/kumomta/etc/policy/domains.toml' })
            local function never()
              return kumo.make_listener_domain { relay_to = true, relay_from = { '0.0.0.0/0' } }
            end
            local function answer(domain)
              if domain == 'x' then
                return kumo.make_listener_domain { relay_to = true }
              end
              local plain = kumo.make_listener_domain { log_oob = true }
              return kumo.make_listener_domain { relay_to = true, relay_from = { 42, 'bad', '10.0.0.0/8' } }
            end
            kumo.on('smtp_server_rcpt_to', function(r) answer(r) end)
            kumo.on('smtp_server_mail_from', function(s) answer(s) end)
            local function never2()
              return kumo.make_listener_domain { relay_to = true }
            end
            """,
            "domains.toml": """
            version = 1

            [listener."0.0.0.0:25"]
            x = 1

            [listener."0.0.0.0:25"."*"]
            relay_to = true
            relay_from = ["bad", "10.0.0.0/8"]

            ["*.example.com"]
            relay_from = ["not-cidr", "0.0.0.0/0"]
            """,
        },
    )
    # S102 in Lua: only the unconditional, reached make_listener_domain (keyed by the handlers
    # it runs in); S103 looks at every literal table, reached or not
    assert findings_of(tmp_path, "S10") == [
        ("S102", "domains.toml", 7, 1, "listener/0.0.0.0:25/* relay_to", "error"),
        (
            "S102",
            "init.lua",
            11,
            38,
            "make_listener_domain relay_to smtp_server_mail_from,smtp_server_rcpt_to",
            "error",
        ),
        ("S103", "domains.toml", 8, 22, "listener/0.0.0.0:25/* relay_from 10.0.0.0/8", "warning"),
        ("S103", "domains.toml", 11, 27, "*.example.com relay_from 0.0.0.0/0", "warning"),
        ("S103", "init.lua", 4, 70, "make_listener_domain relay_from 0.0.0.0/0", "warning"),
        ("S103", "init.lua", 11, 81, "make_listener_domain relay_from 10.0.0.0/8", "warning"),
    ]


def test_s102_a_listener_of_unknown_address_is_not_loopback_only(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": SPOOLS
            + """
kumo.on('init', function()
  kumo.start_esmtp_listener { listen = '127.0.0.1:25' }
  kumo.start_esmtp_listener(LISTENER_PARAMS)
end)
kumo.on('get_listener_domain', function(domain, listener, conn_meta)
  return kumo.make_listener_domain { relay_to = true }
end)
"""
        },
    )
    assert [(c, line, s) for c, _, line, _, _, s in findings_of(tmp_path, "S102")] == [
        ("S102", 11, "error")
    ]


def test_s104_s105_http_listeners_past_skipped_ones(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            kumo.on('init', function()
              kumo.start_http_listener { }
              kumo.start_http_listener { listen = os.getenv('HTTP') }
              kumo.start_http_listener { listen = '0.0.0.0:8001', use_tls = true, trusted_hosts = { '10.9.0.0/16' } }
              kumo.start_http_listener { listen = '0.0.0.0:8002', use_tls = os.getenv('TLS') }
              kumo.start_http_listener { listen = '0.0.0.0:8003' }
              kumo.start_http_listener { listen = '0.0.0.0:8000', trusted_hosts = { 42, 'bad', '127.0.0.1', '10.0.0.0/8' } }
            end)
            """
        },
    )
    assert findings_of(tmp_path, "S10") == [
        ("S104", "init.lua", 4, 89, "http 0.0.0.0:8001 trusted_hosts 10.9.0.0/16", "error"),
        ("S104", "init.lua", 7, 97, "http 0.0.0.0:8000 trusted_hosts 10.0.0.0/8", "error"),
        ("S105", "init.lua", 6, 39, "http 0.0.0.0:8003 use_tls", "warning"),
        ("S105", "init.lua", 7, 39, "http 0.0.0.0:8000 use_tls", "warning"),
    ]


def test_s109_s110_keys_and_entries_past_skipped_ones(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local shaping = require 'policy-extras.shaping'
            local shaper = shaping:setup_with_automation {
              no_default_files = true,
              extra_files = { '/opt/kumomta/etc/policy/shaping.toml' },
            }
            kumo.on('get_egress_path_config', function(domain)
              if domain == 'a' then return kumo.make_egress_path { prohibited_hosts = os.getenv('P') } end
              if domain == 'b' then return kumo.make_egress_path { prohibited_hosts = { os.getenv('P') } } end
              return kumo.make_egress_path { prohibited_hosts = { '10.0.0.0/8' } }
            end)
            local ok = pcall(os.execute, 'true')
            os.exit(1)
            """,
            "shaping.toml": """
            ["a.example"]
            max_deliveries_per_connection = 10

            ["b.example"]
            prohibited_hosts = ["10.0.0.0/8"]
            """,
        },
    )
    # a computed list (or element) may hold the defaults: not reported
    assert findings_of(tmp_path, "S1") == [
        ("S109", "init.lua", 11, 18, "os.execute", "error"),
        ("S109", "init.lua", 12, 1, "os.exit", "error"),
        ("S110", "init.lua", 9, 34, "lua prohibited_hosts 127.0.0.0/8,::1,0.0.0.0,::", "warning"),
        ("S110", "shaping.toml", 5, 1, "domain b.example prohibited_hosts", "warning"),
    ]


def test_s101_never_quotes_a_computed_element_that_may_hold_a_secret(tmp_path: Path) -> None:
    listener = (
        "kumo.start_esmtp_listener { listen = '0.0.0.0:25', relay_hosts = "
        "{ lookup('token-9f8e7d6c5b4a') } }\n"
    )
    write_tree(
        tmp_path, {"init.lua": SPOOLS + "kumo.on('init', function()\n" + listener + "end)\n"}
    )
    (finding,) = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert finding.severity == Severity.INFO
    assert "9f8e7d6c5b4a" not in finding.message and "lookup" not in finding.message


def test_s101_never_quotes_a_computed_element_showing_a_token(tmp_path: Path) -> None:
    """No secret word in sight, but the code itself shows a secret's shape (an access key id)."""
    listener = (
        "kumo.start_esmtp_listener { listen = '0.0.0.0:25', relay_hosts = "
        "{ lookup('AKIAQ7TESTKEYID12345') } }\n"
    )
    write_tree(
        tmp_path, {"init.lua": SPOOLS + "kumo.on('init', function()\n" + listener + "end)\n"}
    )
    (finding,) = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert "AKIAQ7TESTKEYID12345" not in finding.message and "lookup" not in finding.message
    assert "a value computed at run time" in finding.message
    write_tree(
        tmp_path,
        {
            "init.lua": SPOOLS
            + "kumo.on('init', function()\n"
            + listener.replace("AKIAQ7TESTKEYID12345", "relay-nets")
            + "end)\n"
        },
    )
    (finding,) = [f for f in audit(tmp_path).findings if f.code == "S101"]
    assert "`lookup('relay-nets')`" in finding.message  # plain code is still quoted


def test_s106_auth_comparison_with_a_local_declared_after_an_attributed_one(
    tmp_path: Path,
) -> None:
    # Lua 5.4 attributes (<const>, <close>) sit between the names of a local declaration
    got = findings(
        tmp_path,
        "S106",
        {
            "init.lua": """
            kumo.on('http_server_validate_auth_basic', function(user, password)
              local name <const>, expected = 'api', 'opensesame'
              return user == name and password == expected
            end)
            """
        },
    )
    assert got == [("S106", 2, 41)]


def test_s106_secret_named_local_after_an_attributed_one_is_paired_with_its_own_value(
    tmp_path: Path,
) -> None:
    # the attribute of the first name must not shift the pairing of names and values
    got = findings(
        tmp_path,
        "S106",
        {
            "init.lua": """
            local label <const>, smtp_password = 'relay', 'tiger-lion'
            local other, --[[ note ]] auth_password = 'x', --[[ note ]] 'opensesame'
            local secret_name <const>, plain = 'unused', 'not-secret'
            """
        },
    )
    assert got == [("S106", 1, 47), ("S106", 2, 61)]
