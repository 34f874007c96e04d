"""The generated version table: the generator on a small fixture repository, the committed table's
ranges against KumoMTA's changelogs, and its consistency with api.toml and the curated overlay."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.core.errors import ConfigError
from auditor.kumo.api import load_api
from auditor.kumo.versions import load_overlay, load_versions
from tests.conftest import ROOT
from tests.gitrepo import Repo

SCRIPT = ROOT / "scripts" / "gen_api_versions.py"


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_api_versions", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_api_versions"] = module
    spec.loader.exec_module(module)
    return module


RUST_V1 = """
use config::{get_or_create_module, get_or_create_sub_module};

#[derive(Deserialize)]
pub struct ListenerParams {
    pub listen: String,
    #[serde(default = "default_timeout")]
    pub client_timeout: Duration,
    #[serde(default = "default_limit")]
    pub max_things: usize,
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_limit() -> usize {
    10 * 1024
}

pub fn register(lua: &Lua) -> anyhow::Result<()> {
    let kumo_mod = get_or_create_module(lua, "kumo")?;
    kumo_mod.set(
        "start_listener",
        lua.create_function(move |lua, params: Value| {
            let params: ListenerParams = from_lua_value(lua, params)?;
            Ok(())
        })?,
    )?;
    kumo_mod.set("define_thing", lua.create_function(|_, name: String| Ok(()))?)?;
    let dns_mod = get_or_create_sub_module(lua, "dns")?;
    dns_mod.set("lookup", lua.create_function(|_, name: String| Ok(()))?)?;
    Ok(())
}

fn dispatch(config: &mut LuaConfig) {
    config.async_call_callback("got_mail", ());
}
"""

RUST_V2 = """
use config::{get_or_create_module, get_or_create_sub_module};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerParams {
    pub listen: String,
    #[serde(default = "default_timeout")]
    pub client_timeout: Duration,
    #[serde(flatten)]
    pub limits: Limits,
}

#[derive(Deserialize)]
pub struct Limits {
    #[serde(default = "default_limit", rename = "max_things")]
    pub things: usize,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_limit() -> usize {
    10 * 1024
}

declare_event! {
static GOT_MAIL: Multiple("got_mail", message: Message) -> ();
}

pub fn register(lua: &Lua) -> anyhow::Result<()> {
    let kumo_mod = get_or_create_module(lua, "kumo")?;
    kumo_mod.set(
        "start_listener",
        lua.create_function(move |lua, params: Value| {
            let params: ListenerParams = from_lua_value(lua, params)?;
            Ok(())
        })?,
    )?;
    kumo_mod.set("make_thing", lua.create_function(|_, name: String| Ok(()))?)?;
    let dns_mod = get_or_create_sub_module(lua, "dns")?;
    dns_mod.set("lookup", lua.create_function(|_, name: String| Ok(()))?)?;
    Ok(())
}
"""

HELPER_V1 = """
local mod = {}
local typing = require 'policy-extras.typing'
local Record = typing.record
local Entry = Record('Entry', {
  weight = typing.option(typing.number),
  nested = Record('Inner', { deep = typing.string }),
})
function mod:setup(files)
  return {
    old_method = function() end,
  }
end
return mod
"""

HELPER_V2 = """
local mod = {}
local typing = require 'policy-extras.typing'
local Record = typing.record
local Entry = Record('Entry', {
  weight = typing.option(typing.number),
  ['max-rate'] = typing.string,
})
function mod:setup(files) end
function mod.setup_with_options(options) end
return mod
"""


@pytest.fixture(scope="module")
def fixture_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = Repo(tmp_path_factory.mktemp("kumomta"))
    repo.commit(
        {
            "crates/kumod/src/mod_kumo.rs": RUST_V1,
            "docs/reference/kumo/start_listener/_index.md": "# start_listener\n",
            "docs/reference/kumo/start_listener/banner.md": "# banner\n",
            "docs/reference/kumo/define_thing.md": "# define_thing\n",
            "docs/reference/events/got_mail.md": "# got_mail\n",
            "docs/reference/events/planned_event.md": "# planned\n",
            "assets/policy-extras/things.lua": HELPER_V1,
        }
    )
    repo.git("tag", "2024.01.02-aaaaaaaa")
    (repo.path / "docs/reference/kumo/define_thing.md").unlink()
    repo.commit(
        {
            "crates/kumod/src/mod_kumo.rs": RUST_V2,
            "docs/reference/kumo/make_thing.md": "# make_thing\n",
            "docs/reference/kumo/dns_old.md": (
                "---\nstatus: deprecated\n---\n# kumo.dns_old\n"
                "Moved to [kumo.dns.lookup](../kumo.dns/lookup.md).\n"
            ),
            "assets/policy-extras/things.lua": HELPER_V2,
        }
    )
    repo.git("tag", "2024.03.04-bbbbbbbb")
    repo.git("tag", "not-a-release")
    repo.commit({"crates/kumod/src/extra.rs": 'fn f() { config.call_callback("later", ()); }\n'})
    return repo.path


def test_generator_on_fixture_tree(fixture_repo: Path) -> None:
    gen = _generator()
    table = gen.generate(fixture_repo)
    assert table["releases"] == ["2024.01.02-aaaaaaaa", "2024.03.04-bbbbbbbb", "main"]
    fns = table["functions"]
    assert fns["kumo.define_thing"]["since"] == "2024.01.02-aaaaaaaa"
    assert fns["kumo.define_thing"]["removed"] == "2024.03.04-bbbbbbbb"
    assert fns["kumo.make_thing"]["since"] == "2024.03.04-bbbbbbbb"
    assert fns["kumo.dns.lookup"] == {
        **fns["kumo.dns.lookup"],
        "since": "2024.01.02-aaaaaaaa",
        "removed": "",
    }
    assert fns["kumo.dns_old"]["deprecated"] == "2024.03.04-bbbbbbbb"
    assert fns["kumo.dns_old"]["replacement"] == "kumo.dns.lookup"
    listener = fns["kumo.start_listener"]
    assert listener["struct"] == "ListenerParams"
    assert listener["strict_since"] == "2024.03.04-bbbbbbbb"
    params = listener["params"]
    assert set(params) == {"listen", "client_timeout", "max_things", "banner"}
    assert params["client_timeout"]["default"] == "30s"
    assert params["client_timeout"]["default_changed"] == [
        {"release": "2024.03.04-bbbbbbbb", "from": "60s", "to": "30s"}
    ]
    # flattened and renamed, same default: no change recorded
    assert params["max_things"]["default"] == "10240"
    assert "default_changed" not in params["max_things"]
    events = table["events"]
    assert events["got_mail"]["since"] == "2024.01.02-aaaaaaaa"
    assert events["got_mail"]["multiple_since"] == "2024.03.04-bbbbbbbb"
    assert events["later"]["since"] == "main"
    # documented only, never dispatched by any release's sources: the page counts
    assert events["planned_event"]["since"] == "2024.01.02-aaaaaaaa"
    helper = table["helpers"]["things"]
    assert helper["members"]["old_method"]["removed"] == "2024.03.04-bbbbbbbb"
    assert helper["members"]["setup_with_options"]["since"] == "2024.03.04-bbbbbbbb"
    assert helper["data_keys"]["Entry.nested"]["removed"] == "2024.03.04-bbbbbbbb"
    assert helper["data_keys"]["Entry.max-rate"]["since"] == "2024.03.04-bbbbbbbb"
    assert "Inner.deep" in helper["data_keys"]


def test_generator_is_deterministic_and_runs_as_a_script(
    fixture_repo: Path, tmp_path: Path
) -> None:
    out1, out2 = tmp_path / "a.json", tmp_path / "b.json"
    for out in (out1, out2):
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), "--repo", str(fixture_repo), "--out", str(out)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    assert out1.read_bytes() == out2.read_bytes()
    assert json.loads(out1.read_text())["format"] == 1


def test_normalised_defaults() -> None:
    gen = _generator()
    assert gen.normalize_default("Duration::from_secs(5 * 60)") == "300s"
    assert gen.normalize_default(" Some(1_024) ") == "1024"
    assert gen.normalize_default('"KumoMTA".to_string()') == '"KumoMTA"'
    assert gen.normalize_default("true") == "true"
    assert gen.normalize_default("compute_something()") == ""


# ----- the committed table against KumoMTA's changelogs ---------------------------------------------

# The releases that have a changelog page (docs/changelog/<release>.md; `main` is the unreleased
# mainline). A fact announced in changelog R appeared in a tag after the previous changelog's release
# and no later than R (several tags can share one changelog, e.g. 2024.09.01 and 2024.09.02).
CHANGELOGS = [
    "2023.03.31-36aa20de",
    "2023.05.10-e88ad036",
    "2023.06.22-51b72a83",
    "2023.08.22-4d895015",
    "2023.11.28-b5252a41",
    "2023.12.28-63cde9c7",
    "2024.06.10-84e84b89",
    "2024.09.02-c5476b89",
    "2024.11.08-d383b033",
    "2025.01.23-7273d2bc",
    "2025.01.29-833f82a8",
    "2025.03.19-1d3f1f67",
    "2025.05.06-b29689af",
    "2025.10.06-5ec871ab",
    "2025.12.02-67ee9e96",
    "2026.03.04-bb93ecb1",
    "2026.04.09-ea3b2a9b",
    "2026.05.12-a6845223",
    "2026.06.23-f3af1cd0",
    "main",
]

# (kind, name, field, changelog release that announces it): each read in that changelog.
SAMPLE = [
    ("function", "kumo.make_egress_source", "since", "2023.06.22-51b72a83"),
    ("function", "kumo.make_egress_pool", "since", "2023.06.22-51b72a83"),
    ("function", "kumo.define_egress_source", "removed", "2023.06.22-51b72a83"),
    ("function", "kumo.define_egress_pool", "removed", "2023.06.22-51b72a83"),
    ("function", "kumo.make_listener_domain", "since", "2023.06.22-51b72a83"),
    ("function", "kumo.dns.set_mx_timeout", "since", "2025.03.19-1d3f1f67"),
    ("function", "kumo.dns.set_mx_concurrency_limit", "since", "2025.05.06-b29689af"),
    ("function", "kumo.dns.set_mta_sts_enabled", "since", "main"),
    ("function", "kumo.serde.json_load", "since", "2024.09.02-c5476b89"),
    ("event", "pre_init", "since", "2023.11.28-b5252a41"),
    ("event", "smtp_client_rewrite_delivery_status", "since", "2023.11.28-b5252a41"),
    ("event", "rebind_message", "since", "2024.09.02-c5476b89"),
    ("event", "requeue_message", "since", "2024.11.08-d383b033"),
    ("event", "message_requeued", "removed", "2024.11.08-d383b033"),
    ("event", "smtp_server_connection_accepted", "since", "2025.05.06-b29689af"),
    ("event", "smtp_server_data", "since", "2025.12.02-67ee9e96"),
    ("event", "smtp_server_rewrite_response", "since", "2025.12.02-67ee9e96"),
    ("event", "xfer_message_received", "since", "2025.12.02-67ee9e96"),
    ("param", "kumo.configure_log_hook:name", "since", "2023.08.22-4d895015"),
    ("param", "kumo.start_esmtp_listener:data_processing_timeout", "since", "2025.03.19-1d3f1f67"),
    ("param", "kumo.start_esmtp_listener:allow_xclient", "since", "2025.10.06-5ec871ab"),
    ("param", "kumo.start_esmtp_listener:tls_required_client_ca", "since", "2025.10.06-5ec871ab"),
    ("param", "kumo.start_esmtp_listener:batch_handling", "since", "2025.12.02-67ee9e96"),
    ("param", "kumo.start_esmtp_listener:require_proxy_protocol", "since", "2025.12.02-67ee9e96"),
    ("param", "kumo.make_egress_path:ip_lookup_strategy", "since", "2026.04.09-ea3b2a9b"),
    (
        "param",
        "kumo.make_egress_path:allow_smtp_auth_plain_without_valid_certificate",
        "since",
        "main",
    ),
    ("member", "shaping:get_queue_config", "removed", "2025.03.19-1d3f1f67"),
    ("member", "shaping:should_enqueue_log_record", "removed", "2025.03.19-1d3f1f67"),
]


def _entry(kind: str, name: str) -> dict:
    table = load_versions()
    if kind == "function":
        return table.functions[name]
    if kind == "event":
        return table.events[name]
    owner, _, item = name.partition(":")
    if kind == "param":
        return table.functions[owner]["params"][item]
    return table.helpers[owner]["members"][item]


@pytest.mark.parametrize(("kind", "name", "field", "changelog"), SAMPLE)
def test_ranges_match_changelogs(kind: str, name: str, field: str, changelog: str) -> None:
    table = load_versions()
    value = _entry(kind, name)[field]
    assert value, f"{name} has no {field}"
    position = CHANGELOGS.index(changelog)
    previous = CHANGELOGS[position - 1] if position else ""
    idx = table.index(value)
    assert table.index(changelog) >= idx, f"{name} {field} {value} is after {changelog}"
    if previous:
        assert idx > table.index(previous), f"{name} {field} {value} is before {previous}"


def test_sample_is_large_enough() -> None:
    kinds = {k for k, *_ in SAMPLE}
    assert len(SAMPLE) >= 20 and kinds == {"function", "event", "param", "member"}
    fields = {f for *_, f, _ in SAMPLE}
    assert fields == {"since", "removed"}


def test_table_covers_every_release_tag() -> None:
    table = load_versions()
    tags = [r for r in table.releases if r != "main"]
    assert tags == sorted(tags) and len(tags) >= 26
    assert tags[0] == "2023.03.30-427c74f0" and table.releases[-1] == "main"
    # every changelog release is a release of the table
    assert set(CHANGELOGS) <= set(table.releases)


# ----- consistency: api.toml (newest), the generated table and the overlay ----------------------


def test_newest_api_table_agrees_with_generated_table() -> None:
    api, table, overlay = load_api(), load_versions(), load_overlay()
    curated = overlay["curated_only"]
    newest = table.newest
    for name in api.functions:
        if name in curated["functions"]:
            continue
        assert table.present(table.functions.get(name), newest), f"{name} is not in {newest}"
    for name, spec in api.events.items():
        if name in curated["events"]:
            assert name not in table.events or spec.obsolete
            continue
        entry = table.events.get(name)
        assert entry is not None, f"event {name} unknown to the generated table"
        if spec.obsolete:
            assert not table.present(entry, newest)
        else:
            assert table.present(entry, newest), name
            if entry["handlers"]:
                assert spec.handlers == entry["handlers"], name
    for key, spec in api.helpers.items():
        assert table.present(table.helpers.get(key), newest), key
        members = table.helpers[key]["members"]
        for member, why in spec.removed_members.items():
            assert members[member]["removed"], (key, member, why)


def test_overlay_entries_exist_and_cite_sources() -> None:
    api, table, overlay = load_api(), load_versions(), load_overlay()
    for kind in ("functions", "events", "helpers"):
        for name, entry in overlay.get(kind, {}).items():
            assert entry.get("ref", "").startswith("K:"), (kind, name)
            assert name in getattr(table, kind), (kind, name)
    for name, entry in overlay["functions"].items():
        assert table.functions[name]["removed"], name
        assert entry["replaced_by"] in api.functions
        assert entry["where"] in ("init", "pre_init", "top_level", "realtime", "anywhere")
    for entry in overlay["events"].values():
        assert entry["replaced_by"] in api.events
    for key, entry in overlay["helpers"].items():
        assert list(api.helpers[key].registers) == entry["registers"], key
    assert overlay["curated_only"]["ref"].startswith("K:")


# ----- per-release views ------------------------------------------------------------------------


def test_release_views() -> None:
    newest = load_api()
    assert load_api("main") is newest and load_api("newest") is newest
    old = load_api("2023.05.10")
    assert old.release == "2023.05.10-e88ad036"
    assert "kumo.define_egress_source" in old.functions
    assert "kumo.make_egress_source" not in old.functions
    assert old.event("pre_init") is None
    assert not old.is_multi("get_queue_config")
    mid = load_api("2024.09.02-c5476b89")
    assert mid.event("message_requeued") is not None and not mid.event("message_requeued").obsolete
    assert mid.is_multi("message_requeued")
    assert "data_processing_timeout" not in mid.functions["kumo.start_esmtp_listener"].params
    shaping = load_api("2025.01.29").helpers["shaping"]
    assert "get_queue_config" in shaping.object_members and not shaping.removed_members
    assert load_api("kumod 2025.03.19-1d3f1f67").release == "2025.03.19-1d3f1f67"
    assert load_api("2025.03.19").api_hash() != newest.api_hash()


def test_unknown_release_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError) as err:
        load_api("1999.01.01")
    assert "unknown KumoMTA release" in str(err.value) and "\n" not in str(err.value)
