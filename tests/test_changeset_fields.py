"""The change set field by field: each element's name, file, line and impact; value changes; the
changed files; effective shaping; introduced and resolved findings. Exact values, so a change to how
any of them is computed is noticed (found untested by mutation testing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.change import audit_change
from auditor.change.changeset import MAX_SHAPING_TARGETS, ValueChange, diff_values, short
from auditor.core.impacts import MEANING
from auditor.source.snapshot import FsSnapshot
from tests.conftest import write_tree
from tests.test_change_pins import files

INIT = files()["init.lua"]
SHAPING = files()["shaping.toml"]
HANDLER_LINE = 17  # kumo.on('smtp_server_message_received', function(msg)
INIT_LINE = 10  # kumo.on('init', function()
MONITOR_LUA_ONLY = INIT.replace(
    "kumo.on('init', function()",
    "kumo.on('init', function()\n"
    "  kumo.set_config_monitor_globs { '/opt/kumomta/etc/policy/*.lua' }",
)


def change(tmp_path: Path, edits: dict[str, str], base: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    base = base or files()
    write_tree(tmp_path / "base", base)
    write_tree(tmp_path / "head", {**base, **edits})
    return audit_change(FsSnapshot(tmp_path / "base"), FsSnapshot(tmp_path / "head"))


def rows(result) -> list[tuple[str, str, int, str]]:  # type: ignore[no-untyped-def]
    return [(e.element, e.path, e.line, e.impact) for e in result.change.elements]


def values(result) -> list[tuple[str, tuple, object, object, int]]:  # type: ignore[no-untyped-def,type-arg]
    return [(v.path, v.key, v.before, v.after, v.line) for v in result.change.value_changes]


def codes(findings) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(f.code for f in findings)


def test_handler_body_edit_is_one_epoch_element_at_the_handler(tmp_path: Path) -> None:
    edit = INIT.replace(
        "queue_helper:apply(msg)", "queue_helper:apply(msg)\n  msg:set_meta('x', 1)"
    )
    result = change(tmp_path, {"init.lua": edit})
    assert rows(result) == [
        ("handler smtp_server_message_received", "init.lua", HANDLER_LINE, "epoch")
    ]
    assert result.change.changed_files == ["init.lua"]
    assert values(result) == [] and result.change.shaping == []
    assert result.introduced == [] and result.resolved == []
    assert result.change.impact == "epoch"
    assert result.change.reload_dict() == {
        "impact": "epoch",
        "meaning": MEANING["epoch"],
        "elements": [e.as_dict() for e in result.change.elements],
    }


def test_init_handler_edit_needs_a_restart(tmp_path: Path) -> None:
    result = change(tmp_path, {"init.lua": INIT.replace("0.0.0.0:25", "0.0.0.0:2525")})
    assert rows(result) == [("handler init", "init.lua", INIT_LINE, "restart")]
    assert result.change.impact == "restart"


def test_top_level_statements_added_edited_and_removed(tmp_path: Path) -> None:
    added = change(tmp_path / "add", {"init.lua": INIT + "\nlocal answer = 42\n"})
    assert rows(added) == [("statement `local answer = 42`", "init.lua", 21, "epoch")]
    edited = change(
        tmp_path / "edit",
        {"init.lua": INIT.replace("local kumo = require 'kumo'", "local kumo = require('kumo')")},
    )
    # the new form at its line; the old form (a different text) as removed, at line 1
    assert rows(edited) == [
        ("statement `local kumo = require('kumo')`", "init.lua", 1, "epoch"),
        ("statement `local kumo = require 'kumo'`", "init.lua", 1, "epoch"),
    ]
    base = {**files(), "init.lua": "\n\n" + INIT + "local answer = 42\n"}
    removed = change(tmp_path / "remove", {"init.lua": "\n\n" + INIT}, base)
    assert rows(removed) == [("statement `local answer = 42`", "init.lua", 1, "epoch")]
    # an edited statement whose label (its first line) stays: reported once, as its new form
    table = {**files(), "init.lua": INIT + "local t = {\n  a = 1,\n}\n"}
    inside = change(tmp_path / "inside", {"init.lua": INIT + "local t = {\n  a = 2,\n}\n"}, table)
    assert rows(inside) == [("statement `local t = {`", "init.lua", 20, "epoch")]


def test_functions_added_and_removed(tmp_path: Path) -> None:
    with_fn = INIT + "\nlocal function helper(a)\n  return a\nend\n"
    added = change(tmp_path / "add", {"init.lua": with_fn})
    assert rows(added) == [
        ("function helper", "init.lua", 21, "epoch"),
        ("statement `local function helper(a)`", "init.lua", 21, "epoch"),
    ]
    removed = change(tmp_path / "remove", {"init.lua": INIT}, {**files(), "init.lua": with_fn})
    assert rows(removed) == [
        ("function helper", "init.lua", 21, "epoch"),
        ("statement `local function helper(a)`", "init.lua", 1, "epoch"),
    ]
    edited = change(
        tmp_path / "edit",
        {"init.lua": with_fn.replace("return a", "return a + 1")},
        {**files(), "init.lua": with_fn},
    )
    assert rows(edited) == [("function helper", "init.lua", 21, "epoch")]


def test_comments_only(tmp_path: Path) -> None:
    result = change(tmp_path, {"init.lua": "-- a comment\n" + INIT})
    assert rows(result) == [("file init.lua", "init.lua", 1, "none")]
    assert result.change.impact == "none" and result.change.changed_files == ["init.lua"]


def test_lua_file_that_no_longer_loads_is_blocked_once(tmp_path: Path) -> None:
    result = change(tmp_path, {"init.lua": INIT + "\nlocal = 1\n"})
    assert rows(result) == [
        ("file init.lua", "init.lua", 1, "blocked"),
        ("new state", "init.lua", 1, "blocked"),
    ]
    assert result.change.changed_files == ["init.lua"]
    assert codes(result.introduced) == ["E101"]


def test_error_count_of_the_new_state(tmp_path: Path) -> None:
    two = INIT.replace(
        "local kumo = require 'kumo'",
        "local kumo = require 'kumo'\nlocal a = require 'missing1'\nlocal b = require 'missing2'",
    )
    result = change(tmp_path, {"init.lua": two})
    blocked = [e for e in result.change.elements if e.element == "new state"]
    assert [(e.path, e.line, e.impact) for e in blocked] == [("init.lua", 1, "blocked")]
    assert " 2 error findings" in blocked[0].reason
    one = change(tmp_path / "one", {"init.lua": two.replace("local b = require 'missing2'\n", "")})
    assert " 1 error finding:" in next(
        e.reason for e in one.change.elements if e.element == "new state"
    )


def test_removed_module_keeps_its_impact(tmp_path: Path) -> None:
    base = {
        **files(),
        "init.lua": INIT + "local util = require 'util'\n",
        "util.lua": "return { n = 1 }\n",
    }
    result = change(tmp_path, {"init.lua": INIT, "util.lua": "return { n = 2 }\n"}, base)
    assert ("module util.lua", "util.lua", 1, "epoch") in rows(result)
    unmonitored = change(
        tmp_path / "unmon",
        {"init.lua": MONITOR_LUA_ONLY.replace("/opt/kumomta/etc/policy/*.lua", "/nowhere/*.lua"),
         "util.lua": "return { n = 2 }\n"},
        {**base, "init.lua": MONITOR_LUA_ONLY.replace("/opt/kumomta/etc/policy/*.lua", "/nowhere/*.lua")
         + "local util = require 'util'\n"},
    )  # fmt: skip
    assert ("module util.lua", "util.lua", 1, "unmonitored") in rows(unmonitored)


def test_data_value_changed_added_and_removed(tmp_path: Path) -> None:
    changed = change(tmp_path / "c", {"shaping.toml": SHAPING.replace('"10/s"', '"20/s"')})
    assert rows(changed) == [
        (
            'shaping.toml ["example.com"].max_message_rate "10/s" -> "20/s"',
            "shaping.toml",
            5,
            "epoch",
        )
    ]
    assert values(changed) == [
        ("shaping.toml", ("example.com", "max_message_rate"), "10/s", "20/s", 5)
    ]
    assert changed.change.shaping == [
        {
            "domain": "example.com",
            "source": None,
            "changes": [
                {
                    "key": "max_message_rate",
                    "before": "10/s",
                    "after": "20/s",
                    "origin": "shaping.toml:5",
                }
            ],
        }
    ]
    assert changed.change_dict()["values"] == [
        {"path": "shaping.toml", "key": '["example.com"].max_message_rate', "line": 5,
         "before": "10/s", "after": "20/s"}
    ]  # fmt: skip
    removed = change(
        tmp_path / "r",
        {"shaping.toml": SHAPING.replace('["example.com"]\nmax_message_rate = "10/s"\n', '["example.com"]\n')},
    )  # fmt: skip
    # the key is gone: its line is that of the nearest key still there
    assert rows(removed) == [
        (
            'shaping.toml ["example.com"].max_message_rate removed (was "10/s")',
            "shaping.toml",
            4,
            "epoch",
        )
    ]
    assert removed.change.shaping[0]["changes"] == [
        {"key": "max_message_rate", "before": "10/s", "after": "100/s", "origin": "shaping.toml:2"}
    ]
    added = change(
        tmp_path / "a",
        {
            "shaping.toml": SHAPING
            + '\n["example.com".sources."pool-a"]\nmax_message_rate = "1/s"\n'
        },
    )
    assert values(added) == [
        (
            "shaping.toml",
            ("example.com", "sources"),
            None,
            {"pool-a": {"max_message_rate": "1/s"}},
            7,
        )
    ]
    assert rows(added)[0][0].startswith('shaping.toml ["example.com"].sources added {')


def test_a_new_data_file_is_one_value_change_of_the_whole_file(tmp_path: Path) -> None:
    two_files = INIT.replace(
        "file_names = { '/opt/kumomta/etc/policy/queues.toml' }",
        "file_names = { '/opt/kumomta/etc/policy/queues.toml', '/opt/kumomta/etc/policy/q2.toml' }",
    )
    result = change(
        tmp_path, {"init.lua": two_files, "q2.toml": '[queue."b.example"]\nmax_age = "1 day"\n'}
    )
    assert values(result) == [
        ("q2.toml", (), None, {"queue": {"b.example": {"max_age": "1 day"}}}, 1)
    ]
    assert (
        "q2.toml added {'queue': {'b.example': {'max_age': '1 day'}}}",
        "q2.toml",
        1,
        "epoch",
    ) in rows(result)
    assert result.change_dict()["values"][0]["key"] == ""
    assert result.change.changed_files == ["init.lua", "q2.toml"]


def test_data_formatting_only_is_none(tmp_path: Path) -> None:
    result = change(
        tmp_path,
        {
            "shaping.toml": SHAPING.replace(
                'max_message_rate = "10/s"', 'max_message_rate   =  "10/s" # c'
            )
        },
    )
    assert rows(result) == [("file shaping.toml", "shaping.toml", 1, "none")]
    assert values(result) == []


def test_data_impacts_epoch_unmonitored_restart(tmp_path: Path) -> None:
    edit = {"shaping.toml": SHAPING.replace('"10/s"', '"11/s"')}
    unmonitored = change(tmp_path / "u", edit, {**files(), "init.lua": MONITOR_LUA_ONLY})
    assert [r[3] for r in rows(unmonitored)] == ["unmonitored"]
    explicit = MONITOR_LUA_ONLY.replace("*.lua'", "*.lua', '/opt/kumomta/etc/policy/*.toml'")
    monitored = change(tmp_path / "m", edit, {**files(), "init.lua": explicit})
    assert [r[3] for r in rows(monitored)] == ["epoch"]
    at_start = INIT.replace(
        "kumo.on('init', function()",
        "kumo.on('init', function()\n  local t = kumo.toml_load '/opt/kumomta/etc/policy/limits.toml'",
    )
    base = {**files(), "init.lua": at_start, "limits.toml": "n = 1\n"}
    restart = change(tmp_path / "r", {"limits.toml": "n = 2\n"}, base)
    assert rows(restart) == [("limits.toml n 1 -> 2", "limits.toml", 1, "restart")]


def test_lua_module_covered_by_explicit_globs_is_epoch(tmp_path: Path) -> None:
    base = {**files(), "init.lua": MONITOR_LUA_ONLY}
    edit = MONITOR_LUA_ONLY.replace(
        "queue_helper:apply(msg)", "queue_helper:apply(msg)\n  msg:set_meta('x', 1)"
    )
    result = change(tmp_path, {"init.lua": edit}, base)
    assert rows(result) == [("handler smtp_server_message_received", "init.lua", 18, "epoch")]
    uncovered = MONITOR_LUA_ONLY.replace("*.lua'", "*.toml'")
    result = change(
        tmp_path / "u",
        {"init.lua": uncovered.replace("queue_helper:apply(msg)", "queue_helper:apply(msg)\n  msg:set_meta('x', 1)")},
        {**files(), "init.lua": uncovered},
    )  # fmt: skip
    assert rows(result) == [("handler smtp_server_message_received", "init.lua", 18, "unmonitored")]


def test_queue_helper_option_decides_ttl_or_epoch(tmp_path: Path) -> None:
    edit = {"queues.toml": files()["queues.toml"].replace("2 days", "3 days")}

    def impact(option: str, where: str) -> set[str]:
        init = INIT.replace("  invalidate_with_epoch = true,\n", option)
        result = change(tmp_path / where, edit, {**files(), "init.lua": init})
        return {e.impact for e in result.change.elements if e.path == "queues.toml"}

    assert impact("  invalidate_with_epoch = true,\n", "true") == {"epoch"}
    assert impact("  invalidate_with_epoch = false,\n", "false") == {"ttl"}
    assert impact("", "default") == {"ttl"}  # the queue helper's default: not with the epoch
    assert impact("  invalidate_with_epoch = some_flag,\n", "unknown") == {"ttl"}


def test_unreferenced_and_configuration_files(tmp_path: Path) -> None:
    result = change(tmp_path, {"notes.json": '{"a": 1}\n', "kumo-audit.toml": "# none\n"})
    assert rows(result) == [("file notes.json", "notes.json", 1, "none")]
    assert result.change.changed_files == ["notes.json"]
    assert codes(result.introduced) == ["C106"]
    same = change(tmp_path / "same", {}, {**files(), "notes.json": '{"a": 1}\n'})
    assert rows(same) == [] and same.change.changed_files == []


def test_shaping_default_change_reaches_every_domain_that_inherits_it(tmp_path: Path) -> None:
    base = {**files(), "shaping.toml": SHAPING + '\n["other.example"]\nmax_connections = 3\n'}
    result = change(
        tmp_path, {"shaping.toml": base["shaping.toml"].replace('"100/s"', '"50/s"')}, base
    )
    assert result.change.shaping == [
        {
            "domain": "other.example",
            "source": None,
            "changes": [
                {
                    "key": "max_message_rate",
                    "before": "100/s",
                    "after": "50/s",
                    "origin": "shaping.toml:2",
                }
            ],
        }
    ]


def test_shaping_source_change_names_the_source(tmp_path: Path) -> None:
    base = {
        **files(),
        "shaping.toml": SHAPING + '\n["example.com".sources."pool-a"]\nmax_message_rate = "1/s"\n',
    }
    result = change(
        tmp_path, {"shaping.toml": base["shaping.toml"].replace('"1/s"', '"2/s"')}, base
    )
    assert [(s["domain"], s["source"]) for s in result.change.shaping] == [
        ("example.com", "pool-a")
    ]
    assert result.change.shaping[0]["changes"][0]["before"] == "1/s"
    assert result.change.shaping[0]["changes"][0]["after"] == "2/s"


def test_shaping_targets_are_bounded(tmp_path: Path) -> None:
    domains = "".join(
        f'\n["d{i}.example"]\nmax_connections = 3\n' for i in range(MAX_SHAPING_TARGETS + 1)
    )
    base = {**files(), "shaping.toml": '["default"]\nmax_message_rate = "100/s"\n' + domains}
    result = change(
        tmp_path, {"shaping.toml": base["shaping.toml"].replace('"100/s"', '"50/s"')}, base
    )
    assert len(result.change.shaping) == MAX_SHAPING_TARGETS


def test_introduced_and_resolved_leave_suppressed_findings_out(tmp_path: Path) -> None:
    relay = INIT.replace(
        "listen = '0.0.0.0:25' }", "listen = '0.0.0.0:25', relay_hosts = { '0.0.0.0/0' } }"
    )
    suppressed = relay.replace(
        "kumo.start_esmtp_listener",
        '-- kumo-audit: allow(S101) reason="test"\n  kumo.start_esmtp_listener',
    )
    result = change(tmp_path, {"init.lua": suppressed})
    assert [f.code for f in result.introduced if f.code.startswith("S")] == []
    fixed = change(tmp_path / "fixed", {"init.lua": INIT}, {**files(), "init.lua": suppressed})
    assert fixed.resolved == []
    plain = change(tmp_path / "plain", {"init.lua": INIT}, {**files(), "init.lua": relay})
    assert codes(plain.resolved) == ["S101"]
    assert [f.code for f in plain.introduced if f.code.startswith("S")] == []


def test_first_commit_has_no_base(tmp_path: Path) -> None:
    write_tree(tmp_path / "head", files())
    result = audit_change(None, FsSnapshot(tmp_path / "head"))
    assert result.resolved == []
    assert sorted(result.change.changed_files) == ["init.lua", "queues.toml", "shaping.toml"]
    assert {e.path for e in result.change.elements} == {"init.lua", "queues.toml", "shaping.toml"}


def test_diff_values_descends_tables_and_compares_other_values_whole() -> None:
    old = {"a": {"x": 1, "y": [1, 2]}, "b": 2, 3: "n"}
    new = {"a": {"x": 1, "y": [1, 3]}, "c": 4, 3: "m"}
    assert list(diff_values(old, new)) == [
        ((3,), "n", "m"),
        (("a", "y"), [1, 2], [1, 3]),
        (("b",), 2, None),
        (("c",), None, 4),
    ]
    assert list(diff_values({"a": 1}, {"a": 1})) == []
    assert list(diff_values(1, 2)) == [((), 1, 2)]
    assert list(diff_values({"a": 1}, [1])) == [((), {"a": 1}, [1])]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("x" * 58, '"' + "x" * 58 + '"'),  # 60 characters: kept whole
        ("x" * 59, '"' + "x" * 56 + "..."),  # 61: cut to 57 and marked
        (12, "12"),
        ([1], "[1]"),
    ],
)
def test_short_values(value: object, text: str) -> None:
    assert short(value) == text


def test_value_change_label() -> None:
    assert ValueChange("s.toml", ("a", "b"), 1, 2, 3).label() == "s.toml a.b"
    assert ValueChange("s.toml", (), 1, 2, 3).label() == "s.toml"


def test_a_finding_of_both_states_is_neither_introduced_nor_resolved(tmp_path: Path) -> None:
    relay = INIT.replace(
        "listen = '0.0.0.0:25' }", "listen = '0.0.0.0:25', relay_hosts = { '0.0.0.0/0' } }"
    )
    both = change(
        tmp_path,
        {"shaping.toml": SHAPING.replace('"10/s"', '"11/s"')},
        {**files(), "init.lua": relay},
    )
    assert [f.code for f in both.head.findings if f.code.startswith("S")] == ["S101"]
    assert both.introduced == [] and both.resolved == []


def test_function_elements_say_whether_they_add_remove_or_edit(tmp_path: Path) -> None:
    one = INIT + "\nlocal function one()\n  return 1\nend\n"
    two = INIT + "\nlocal function two()\n  return 2\nend\n"
    result = change(tmp_path, {"init.lua": two}, {**files(), "init.lua": one})
    verbs = {e.element: e.reason.split(" ", 1)[0] for e in result.change.elements}
    assert verbs["function one"] == "removes" and verbs["function two"] == "adds"
    edited = change(
        tmp_path / "e", {"init.lua": one.replace("1", "11")}, {**files(), "init.lua": one}
    )
    assert [e.reason.split(" ", 1)[0] for e in edited.change.elements] == ["edits"]


def test_shaping_default_change_reaches_the_domains_of_every_shaping_file(tmp_path: Path) -> None:
    init = INIT.replace(
        "shaping:setup { '/opt/kumomta/etc/policy/shaping.toml' }",
        "shaping:setup { '/opt/kumomta/etc/policy/shaping.toml', '/opt/kumomta/etc/policy/more.toml' }",
    )
    base = {
        **files(),
        "init.lua": init,
        "shaping.toml": '["default"]\nmax_message_rate = "100/s"\n["a.example"]\nmax_connections = 3\n',
        "more.toml": '["b.example"]\nmax_connections = 4\n',
    }
    result = change(
        tmp_path, {"shaping.toml": base["shaping.toml"].replace('"100/s"', '"50/s"')}, base
    )
    assert [s["domain"] for s in result.change.shaping] == ["a.example", "b.example"]


def test_a_function_that_ends_its_statement_is_compared_on_its_own(tmp_path: Path) -> None:
    base = {**files(), "init.lua": INIT + "local cb = function(x)\n  return 1\nend\n"}
    edit = {"init.lua": base["init.lua"].replace("return 1", "return 2")}
    result = change(tmp_path, edit, base)
    assert rows(result) == [("function cb", "init.lua", 20, "epoch")]


def test_a_new_source_table_changes_that_source_s_shaping(tmp_path: Path) -> None:
    head = SHAPING + '\n["example.com".sources."pool-a"]\nmax_message_rate = "1/s"\n'
    result = change(tmp_path, {"shaping.toml": head})
    assert [(s["domain"], s["source"]) for s in result.change.shaping] == [
        ("example.com", "pool-a")
    ]


def test_secrets_of_either_state_never_reach_the_change_set(tmp_path: Path) -> None:
    base = {
        **files(),
        "init.lua": INIT
        + "kumo.on('smtp_server_auth_plain', function(authz, authc, password, meta)\n"
        "  return password == 'old-secret-1'\nend)\n",
    }
    head = {"init.lua": base["init.lua"].replace("old-secret-1", "new-secret-2")}
    result = change(tmp_path, head, base)
    assert result.change.elements
    text = repr(result.change.elements) + repr(result.change.value_changes)
    assert "old-secret-1" not in text and "new-secret-2" not in text
