"""KumoMTA's config monitor globs: which globs are in force (set_config_monitor_globs, or the default)
and which deployed paths they cover, with filenamegen's glob semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.kumo.monitor import (
    DEFAULT_GLOBS,
    Computed,
    MonitorGlobs,
    glob_matches,
    glob_regex,
    monitor_globs,
)
from tests.conftest import audit, write_tree


def globs_of(tmp_path: Path, init: str) -> MonitorGlobs:
    write_tree(tmp_path, {"init.lua": init})
    return monitor_globs(audit(tmp_path).context.model)


def test_default_globs_when_the_policy_sets_none(tmp_path: Path) -> None:
    globs = globs_of(tmp_path, "local kumo = require 'kumo'\n")
    assert globs == MonitorGlobs(DEFAULT_GLOBS, explicit=False, complete=True)


def test_explicit_literal_globs(tmp_path: Path) -> None:
    globs = globs_of(
        tmp_path,
        "local kumo = require 'kumo'\n"
        "kumo.on('init', function()\n"
        "  kumo.set_config_monitor_globs { '/etc/a/*.lua', '/etc/b/*.toml' }\n"
        "end)\n",
    )
    assert globs.globs == ("/etc/a/*.lua", "/etc/b/*.toml")
    assert globs.explicit is True and globs.complete is True
    assert globs.module == "init.lua"
    assert globs.span is not None and (globs.span.line, globs.span.column) == (3, 3)
    assert globs.covers("/etc/a/x.lua") is True
    assert globs.covers("/etc/b/x.toml") is True
    assert globs.covers("/etc/b/x.lua") is False


def test_the_last_call_wins_and_calls_that_never_run_do_not_count(tmp_path: Path) -> None:
    globs = globs_of(
        tmp_path,
        "local kumo = require 'kumo'\n"
        "local function never() kumo.set_config_monitor_globs { '/never/*' } end\n"
        "kumo.on('init', function()\n"
        "  kumo.set_config_monitor_globs { '/first/*' }\n"
        "  kumo.set_config_monitor_globs { '/second/*' }\n"
        "end)\n",
    )
    assert globs.globs == ("/second/*",) and globs.span.line == 5  # type: ignore[union-attr]


def test_a_computed_glob_makes_coverage_unknown_where_it_may_match(tmp_path: Path) -> None:
    globs = globs_of(
        tmp_path,
        "local kumo = require 'kumo'\n"
        "kumo.on('init', function()\n"
        "  kumo.set_config_monitor_globs { '/etc/a/*.lua', os.getenv('GLOB'), "
        "'/etc/c/' .. os.getenv('SUB') .. '/*.toml' }\n"
        "end)\n",
    )
    assert globs.globs == ("/etc/a/*.lua",)
    assert globs.explicit is True and globs.complete is True  # known element by element
    assert [(c.env, c.prefix, c.suffix) for c in globs.computed] == [
        ("GLOB", "", ""),
        (None, "/etc/c/", "/*.toml"),
    ]
    assert globs.covers("/etc/a/x.lua") is True
    assert globs.covers("/etc/b/x.lua") is None  # $GLOB may match anything
    assert [c.env for c in globs.unknown_for("/etc/c/d/x.toml")] == ["GLOB", None]
    assert [c.env for c in globs.unknown_for("/etc/b/x.toml")] == ["GLOB"]


def test_a_computed_glob_with_known_ends_rules_paths_out(tmp_path: Path) -> None:
    globs = globs_of(
        tmp_path,
        "local kumo = require 'kumo'\n"
        "kumo.on('init', function()\n"
        "  kumo.set_config_monitor_globs { '/etc/c/' .. os.getenv('SUB') .. '/*.toml' }\n"
        "end)\n",
    )
    assert globs.covers("/etc/c/d/x.toml") is None
    assert globs.covers("//etc//c/d/x.toml") is None  # repeated slashes are one
    assert globs.covers("/etc/b/x.toml") is False  # another directory
    assert globs.covers("/etc/c/d/x.lua") is False  # another suffix


def test_a_list_that_is_not_a_table_literal_covers_nothing_known(tmp_path: Path) -> None:
    globs = globs_of(
        tmp_path,
        "local kumo = require 'kumo'\n"
        "kumo.on('init', function()\n"
        "  kumo.set_config_monitor_globs(GLOBS)\n"
        "end)\n",
    )
    assert globs.globs == () and globs.explicit is True and globs.complete is False
    assert globs.module == "init.lua"
    assert globs.covers("/opt/kumomta/etc/policy/init.lua") is None


def test_a_table_with_keys_is_not_complete(tmp_path: Path) -> None:
    globs = globs_of(
        tmp_path,
        "local kumo = require 'kumo'\n"
        "kumo.on('init', function()\n"
        "  kumo.set_config_monitor_globs { '/etc/a/*', [k] = '/etc/b/*' }\n"
        "end)\n",
    )
    assert globs.globs == ("/etc/a/*",) and globs.complete is False


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/a/*.lua", "/a/x.lua", True),
        ("/a/*.lua", "/a/b/x.lua", False),  # * stays in one component
        ("/a/?.lua", "/a/x.lua", True),
        ("/a/?.lua", "/a/xy.lua", False),
        ("/a/?.lua", "/a//.lua", False),
        ("/a/**/x.lua", "/a/x.lua", True),  # ** is zero or more directories
        ("/a/**/x.lua", "/a/b/c/x.lua", True),
        ("/a/**/x.lua", "/b/x.lua", False),
        ("/a/[xy].lua", "/a/y.lua", True),
        ("/a/[xy].lua", "/a/z.lua", False),
        ("/a/[!xy].lua", "/a/z.lua", True),
        ("/a/[!xy].lua", "/a/x.lua", False),
        ("/a/[a-c].lua", "/a/b.lua", True),
        ("/a/[].lua", "/a/[].lua", True),  # no closing bracket after the first: a literal [
        ("/a/[x", "/a/[x", True),
        ("/a/{x,y}.lua", "/a/y.lua", True),
        ("/a/{x,y}.lua", "/a/z.lua", False),
        ("/a/{x,{y,z}}.lua", "/a/z.lua", True),  # nested alternatives
        ("/a/{x,y{1,2}}.lua", "/a/y2.lua", True),
        ("/a/{x,y{1,2}}.lua", "/a/y3.lua", False),
        ("/a/{x.lua", "/a/{x.lua", True),  # an unclosed brace is a literal
        ("/a/{b/c,d}/x", "/a/b/c/x", True),  # alternatives spanning components
        ("/a/{b/c,d}/x", "/a/d/x", True),
        ("/a/{b/c,d}/x", "/a/b/x", False),
        ("/{a,b/{c,d/e}}/x", "/b/d/e/x", True),
        ("/{a,b/{c,d/e}}/x", "/b/c/x", True),
        ("/{a,b}/{c/d,e}/x", "/b/c/d/x", True),
        ("a/*.lua", "/a/x.lua", True),  # relative to /
        ("/a/x.lua", "/a/x.lua", True),
        ("/a/x.lua", "/a/x.luax", False),
        ("/a/x.lua", "/a/x_lua", False),  # a dot is a dot
        ("/a/[z-a].lua", "/a/[z-a].lua", True),  # a reversed range: matched literally
        ("/a/[z-a].lua", "/a/b.lua", False),
    ],
)
def test_glob_semantics(pattern: str, path: str, expected: bool) -> None:
    assert glob_matches(pattern, path) is expected


def test_glob_regex_is_anchored_and_cached() -> None:
    assert glob_regex("/a/*") is glob_regex("/a/*")
    assert glob_regex("/a/*").match("/a/b/c") is None
    assert glob_regex("/a/*").match("/x/a/b") is None


@pytest.mark.parametrize(
    ("globs", "prefix", "suffix", "expected"),
    [
        (("/opt/kumomta/etc/**/*.toml",), "/opt/kumomta/etc/policy/", ".toml", True),
        (("/etc/a/*.lua",), "/etc/a/", ".lua", True),
        (("/etc/a/*/*.lua",), "/etc/a/", ".lua", True),  # x/x: a computed part may hold a slash
        (("/etc/a/*.lua",), "/etc/b/", ".lua", False),  # no glob starts where the path starts
        (("/etc/a/*.lua",), "/etc/a/", ".toml", False),  # nor ends where it ends
        (("/etc/a/x.lua",), "/etc/", ".lua", None),  # /etc/<a/x>.lua: depends on the part
        (("/etc/{a,b}/x.lua",), "/etc/b", ".lua", None),
        (("/etc/{a,b}/x.lua",), "/etc/c", ".lua", False),
        (("/etc/{a,{b,c}}/x.lua",), "/etc/c", ".lua", None),  # nested alternatives
        (("/etc/{a,b}/x.{lua,toml}",), "/etc/a/", ".toml", True),
        (("/etc/{a,b}/x.{lua,toml}",), "/etc/a/", "oml", None),
        (("/etc/{a,b}/x.{lua,toml}",), "/etc/a/", ".json", False),
        (("//etc//a/x.lua",), "/etc/", ".lua", None),  # repeated slashes are one
        (("/etc/a/?.lua",), "/etc/a/", "x.lua", None),
    ],
)
def test_coverage_of_computed_paths(
    globs: tuple[str, ...], prefix: str, suffix: str, expected: bool | None
) -> None:
    state = MonitorGlobs(globs, explicit=True, complete=True)
    assert state.covers_computed(prefix, suffix) is expected


def test_coverage_of_computed_paths_with_unknown_globs() -> None:
    incomplete = MonitorGlobs(("/etc/a/*.lua",), explicit=True, complete=False)
    assert incomplete.covers_computed("/etc/b/", ".lua") is None
    assert incomplete.covers_computed("/etc/a/", ".lua") is True
    computed = MonitorGlobs(
        ("/etc/a/*.lua",), explicit=True, complete=True, computed=(Computed("g", "/x/"),)
    )
    assert computed.covers_computed("/etc/b/", ".lua") is None


def test_too_many_alternatives_rule_nothing_out() -> None:
    many = "/etc/" + "".join(f"{{a{i},b{i}}}" for i in range(7)) + "/x.lua"  # 128 alternatives
    state = MonitorGlobs((many,), explicit=True, complete=True)
    assert state.covers_computed("/nowhere/", ".toml") is None
    fewer = "/etc/" + "".join(f"{{a{i},b{i}}}" for i in range(6)) + "/x.lua"  # 64
    assert MonitorGlobs((fewer,), True, True).covers_computed("/nowhere/", ".toml") is False
