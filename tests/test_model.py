"""The policy model: require resolution, aliases, scopes through the literal call graph, helpers, data files."""

from __future__ import annotations

from pathlib import Path

from auditor.kumo.api import load_api
from auditor.kumo.loader import PolicyLoader
from auditor.kumo.model import FILE, PolicyModel
from auditor.kumo.paths import PathMap
from auditor.source.snapshot import FsSnapshot
from tests.conftest import write_tree

POLICY = """
local kumo = require 'kumo'
local k = kumo
local shaping = require 'policy-extras.shaping'
local queue_module = require 'policy-extras.queue'
local sources = require 'policy-extras.sources'
local auth = require 'auth'
local SPOOL = '/var/spool/kumomta'

local shaper = shaping:setup_with_automation {
  extra_files = { '/opt/kumomta/etc/policy/shaping.toml' },
}
local queue_helper = queue_module:setup_with_options {
  file_names = { '/opt/kumomta/etc/policy/queues.toml' },
}
sources:setup { '/opt/kumomta/etc/policy/sources.toml' }

local function listeners()
  k.start_esmtp_listener { listen = '0.0.0.0:25' }
end

kumo.on('init', function()
  kumo.define_spool { name = 'data', path = SPOOL .. '/data' }
  listeners()
  shaper.setup_publish()
end)

kumo.on('get_egress_path_config', shaper.get_egress_path_config)
kumo.on('smtp_server_auth_plain', auth.check)
local lookup = kumo.memoize(function(user) return user end, { name = 'user.lookup', ttl = '5 minutes' })
kumo.on('smtp_server_message_received', function(msg)
  queue_helper:apply(msg)
  lookup('x')
end)
"""

AUTH = """
local kumo = require 'kumo'
local M = {}
function M.check(authz, authc, password, conn_meta)
  kumo.log_info('auth attempt')
  return false
end
return M
"""


def build(root: Path) -> PolicyModel:
    loader = PolicyLoader(
        FsSnapshot(root), "policy/init.lua", PathMap.default_for("policy/init.lua"), load_api()
    )
    return loader.load().model


def test_require_resolves_into_the_tree_through_package_path(tmp_path: Path) -> None:
    write_tree(tmp_path, {"policy/init.lua": POLICY, "policy/auth.lua": AUTH})
    model = build(tmp_path)
    assert sorted(model.modules) == ["policy/auth.lua", "policy/init.lua"]
    auth_edge = next(e for e in model.requires if e.name == "auth")
    assert auth_edge.target == "policy/auth.lua"
    assert auth_edge.contexts == {FILE}
    assert next(e for e in model.requires if e.name == "policy-extras.queue").helper is not None


def test_scopes_follow_aliases_local_functions_and_modules(tmp_path: Path) -> None:
    write_tree(tmp_path, {"policy/init.lua": POLICY, "policy/auth.lua": AUTH})
    model = build(tmp_path)
    (listener,) = model.calls_to("kumo.start_esmtp_listener")
    assert listener.contexts == {"init"}
    assert listener.call.span.line == 18
    (log,) = model.calls_to("kumo.log_info")
    assert log.module == "policy/auth.lua"
    assert log.contexts == {"smtp_server_auth_plain"}
    (spool,) = model.calls_to("kumo.define_spool")
    assert spool.table_arg().get("path").value == "/var/spool/kumomta/data"  # type: ignore[union-attr]


def test_memoized_function_runs_where_it_is_called(tmp_path: Path) -> None:
    write_tree(tmp_path, {"policy/init.lua": POLICY, "policy/auth.lua": AUTH})
    model = build(tmp_path)
    memo_fn = next(
        f for f in model.modules["policy/init.lua"].facts.functions if f.params == ["user"]
    )
    assert model.contexts_of("policy/init.lua", memo_fn.id) == {"smtp_server_message_received"}


def test_helper_setups_register_handlers_and_name_data_files(tmp_path: Path) -> None:
    write_tree(tmp_path, {"policy/init.lua": POLICY, "policy/auth.lua": AUTH})
    model = build(tmp_path)
    origins = {(h.event, h.origin) for h in model.handlers}
    assert ("get_egress_source", "helper:sources") in origins
    assert ("get_egress_pool", "helper:sources") in origins
    assert ("get_queue_config", "helper:queue") in origins
    assert ("init", "policy") in origins
    refs = {(r.written, r.tree_path, r.data_format) for r in model.data_refs}
    assert ("/opt/kumomta/etc/policy/sources.toml", "policy/sources.toml", "sources") in refs
    assert ("/opt/kumomta/etc/policy/queues.toml", "policy/queues.toml", "queues") in refs
    assert ("/opt/kumomta/etc/policy/shaping.toml", "policy/shaping.toml", "shaping") in refs
    bundled = next(r for r in model.data_refs if r.implicit)
    assert bundled.tree_path is None  # /opt/kumomta/share is not part of the tree


def test_globals_are_recorded_with_their_context(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "kumo.on('init', function() counter = 1 end)\nflag = true\n"})
    loader = PolicyLoader(
        FsSnapshot(tmp_path), "init.lua", PathMap.default_for("init.lua"), load_api()
    )
    model = loader.load().model
    assert {
        (g.name, g.span.line, g.span.column, tuple(sorted(g.contexts))) for g in model.globals
    } == {
        ("counter", 1, 28, ("init",)),
        ("flag", 2, 1, ("file",)),
    }


def test_path_map_defaults_and_overrides() -> None:
    nested = PathMap.default_for("policy/init.lua")
    assert nested.to_tree("/opt/kumomta/etc/policy/a.toml") == "policy/a.toml"
    assert nested.to_tree("/opt/kumomta/etc/dkim/x.key") == "dkim/x.key"
    assert nested.to_tree("/opt/kumomta/share/policy-extras/shaping.toml") is None
    flat = PathMap.default_for("init.lua")
    assert flat.to_tree("/opt/kumomta/etc/policy/a.toml") == "a.toml"
    custom = flat.with_overrides({"/srv/kumo": "conf"})
    assert custom.to_tree("/srv/kumo/x.toml") == "conf/x.toml"
    assert custom.to_tree("/srv/kumo/../../etc/passwd") is None
    assert nested.to_deployed("policy/queues.toml") == "/opt/kumomta/etc/policy/queues.toml"
