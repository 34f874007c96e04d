"""Change-set behaviours pinned one by one (each found untested by mutation testing)."""

from __future__ import annotations

from pathlib import Path

from auditor.change import audit_change
from auditor.source.snapshot import FsSnapshot
from tests.conftest import write_tree
from tests.test_change_audit import POLICY


def change(tmp_path: Path, edits: dict[str, str], base_files: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    base_files = base_files or {k.removeprefix("policy/"): v for k, v in POLICY.items()}
    write_tree(tmp_path / "base", base_files)
    write_tree(tmp_path / "head", {**base_files, **edits})
    return audit_change(FsSnapshot(tmp_path / "base"), FsSnapshot(tmp_path / "head"))


def files() -> dict[str, str]:
    return {k.removeprefix("policy/"): v for k, v in POLICY.items()}


def test_c102_log_dir_changed(tmp_path: Path) -> None:
    init = files()["init.lua"]
    moved = init.replace("log_dir = '/var/log/kumomta'", "log_dir = '/srv/log/kumo'")
    result = change(tmp_path, {"init.lua": moved})
    c102 = [f for f in result.introduced if f.code == "C102"]
    head_lines = (tmp_path / "head" / "init.lua").read_text().splitlines()
    line = next(n for n, text in enumerate(head_lines, 1) if "configure_local_logs" in text)
    assert [(f.path, f.span.line) for f in c102] == [("init.lua", line)]
    unchanged = change(tmp_path / "2", {"init.lua": init.replace("0.0.0.0:25", "0.0.0.0:2525")})
    assert [f for f in unchanged.introduced if f.code == "C102"] == []


def test_data_additions_and_removals_are_in_the_change_set(tmp_path: Path) -> None:
    shaping = files()["shaping.toml"]
    edited = shaping.replace('["example.com"]\nmax_message_rate = "10/s"\n', "") + (
        '\n["new.example"]\nmax_message_rate = "5/s"\n'
    )
    result = change(tmp_path, {"shaping.toml": edited})
    values = {(v.path, v.key): (v.before, v.after) for v in result.change.value_changes}
    assert values == {
        ("shaping.toml", ("example.com",)): ({"max_message_rate": "10/s"}, None),
        ("shaping.toml", ("new.example",)): (None, {"max_message_rate": "5/s"}),
    }
    labels = [e.element for e in result.change.elements if e.path == "shaping.toml"]
    assert any("added" in label for label in labels) and any("removed" in label for label in labels)


def test_ttl_only_data_versus_epoch(tmp_path: Path) -> None:
    edit = {"queues.toml": files()["queues.toml"].replace("2 days", "3 days")}
    epoch = change(tmp_path / "epoch", edit)
    assert {e.impact for e in epoch.change.elements if e.path == "queues.toml"} == {"epoch"}
    ttl_files = {
        **files(),
        "init.lua": files()["init.lua"].replace(
            "invalidate_with_epoch = true", "invalidate_with_epoch = false"
        ),
    }
    ttl = change(tmp_path / "ttl", edit, ttl_files)
    assert {e.impact for e in ttl.change.elements if e.path == "queues.toml"} == {"ttl"}
    assert ttl.change.impact == "ttl"


def test_nothing_introduced_nothing_resolved(tmp_path: Path) -> None:
    result = change(tmp_path, {"shaping.toml": files()["shaping.toml"].replace("100/s", "90/s")})
    assert result.introduced == [] and result.resolved == []
    assert result.change.changed_files == ["shaping.toml"]


def test_resolved_lists_exactly_the_fixed_finding(tmp_path: Path) -> None:
    relay = files()["init.lua"].replace(
        "listen = '0.0.0.0:25' }", "listen = '0.0.0.0:25', relay_hosts = { '0.0.0.0/0' } }"
    )
    result = change(tmp_path, {"init.lua": files()["init.lua"]}, {**files(), "init.lua": relay})
    assert [f.code for f in result.resolved] == ["S101"]
    assert [f.code for f in result.introduced if f.code.startswith("S")] == []


def test_lua_module_outside_the_monitor_globs_is_unmonitored(tmp_path: Path) -> None:
    base = {
        **files(),
        "init.lua": files()["init.lua"]
        .replace(
            "kumo.on('init', function()",
            "local util = require 'util'\nkumo.on('init', function()\n"
            "  kumo.set_config_monitor_globs { '/opt/kumomta/etc/policy/*.toml' }",
        )
        .replace("queue_helper:apply(msg)", "queue_helper:apply(msg)\n  util.tag(msg)"),
        "util.lua": "local M = {}\nfunction M.tag(msg)\n  msg:set_meta('a', 1)\nend\nreturn M\n",
    }
    edit = {"util.lua": base["util.lua"].replace("'a', 1", "'a', 2")}
    result = change(tmp_path, edit, base)
    impacts = {e.impact for e in result.change.elements if e.path == "util.lua"}
    assert impacts == {"unmonitored"}, result.change.elements


def test_rate_jump_factor_boundary(tmp_path: Path) -> None:
    shaping = files()["shaping.toml"]
    assert 'max_message_rate = "10/s"' in shaping

    def c104(new: str, where: str) -> list[str]:
        result = change(tmp_path / where, {"shaping.toml": shaping.replace('"10/s"', new)})
        return [f.code for f in result.introduced if f.code == "C104"]

    assert c104('"20/s"', "exactly") == []  # raised by exactly the factor (2x): allowed
    assert c104('"21/s"', "above") == ["C104"]
    assert c104('"1200/m"', "exactly-per-minute") == []  # 1200/m is 20/s
    assert c104('"1260/m"', "above-per-minute") == ["C104"]  # 21/s


def test_anonymous_functions_are_numbered_in_order(tmp_path: Path) -> None:
    base = {
        **files(),
        "util.lua": "local M = {}\nM.hooks = {\n  function() return 1 end,\n  function() return 2 end,\n"
        "  function() return 3 end,\n}\nreturn M\n",
        "init.lua": files()["init.lua"] + "\nlocal util = require 'util'\n",
    }
    result = change(tmp_path, {"util.lua": base["util.lua"].replace("return 3", "return 33")}, base)
    names = [e.element for e in result.change.elements if e.path == "util.lua"]
    assert names == ["anonymous function #3"]
