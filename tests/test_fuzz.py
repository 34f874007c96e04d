"""Property tests: any Lua the grammar generates, and any TOML/JSON data, is audited without an
internal error, in bounded time, and E101 is reported exactly when Lua 5.4 refuses to compile.

The default run tries a bounded number of examples (derandomized, so it is repeatable); the long
campaign is `python scripts/fuzz.py` (see README, "Fuzzing")."""

from __future__ import annotations

import json
import os
import time
from functools import cache
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from hypothesis import HealthCheck, given, settings

from tests.conftest import audit, write_tree
from tests.fuzz_strategies import data_document, lua_chunk, toml_document

EXAMPLES = int(os.environ.get("KUMO_AUDIT_FUZZ_EXAMPLES", "25"))
SECONDS = float(os.environ.get("KUMO_AUDIT_FUZZ_SECONDS", "20"))  # per input, on a busy machine
CAMPAIGN = os.environ.get("KUMO_AUDIT_FUZZ_CAMPAIGN") == "1"

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not CAMPAIGN,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

LOADER = """local kumo = require 'kumo'
local shaping = require 'policy-extras.shaping'
local sources = require 'policy-extras.sources'
local listener_domains = require 'policy-extras.listener_domains'
kumo.on('get_egress_path_config', shaping:setup {
  '/opt/kumomta/etc/policy/shaping.toml', '/opt/kumomta/etc/policy/shaping.json' })
sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
kumo.on('get_listener_domain', listener_domains:setup { '/opt/kumomta/etc/policy/listener_domains.json' })
"""


@cache
def _lua54() -> Any:
    from lupa import lua54

    runtime = lua54.LuaRuntime(register_eval=False, register_builtins=False)
    return runtime.eval("function(src) local f, err = load(src, '=fuzz', 't', {}) return err end")


def lua_refuses(source: str) -> bool:
    """The oracle: Lua 5.4 itself (lupa), independent of the auditor's own compile step."""
    return _lua54()(source) is not None


def lua_error_line(source: str) -> int | None:
    """The line of Lua 5.4's own compile error, when its message names one."""
    error = _lua54()(source)
    head = str(error).split(":", 2) if error is not None else []
    return int(head[1]) if len(head) == 3 and head[1].isdigit() else None


def audited(files: dict[str, str]):  # type: ignore[no-untyped-def]
    with TemporaryDirectory(prefix="kumo-audit-fuzz-") as tmp:
        root = Path(tmp)
        write_tree(root, files)
        start = time.monotonic()
        result = audit(root)
        elapsed = time.monotonic() - start
    assert elapsed < SECONDS, f"{elapsed:.1f} s"
    return result


@FUZZ
@given(lua_chunk())
def test_any_lua_is_audited_and_e101_matches_lua54(source: str) -> None:
    if "\0" in source or source.startswith("\ufeff"):
        # NUL makes the file binary (E102); a BOM at the start is E101 with its own explanation
        result = audited({"init.lua": source.encode()})
        assert {f.code for f in result.findings if f.path == "init.lua"} & {"E101", "E102"}
        return
    result = audited({"init.lua": source.encode()})  # as generated: no dedent, any line endings
    e101 = [f for f in result.findings if f.code == "E101" and f.path == "init.lua"]
    assert bool(e101) == lua_refuses(source), (e101, source)
    if e101 and (line := lua_error_line(source)) is not None:
        assert e101[0].span.line == line, (e101, source)
    for finding in result.findings:
        assert finding.span.line >= 1 and finding.span.column >= 1


@FUZZ
@given(data_document, data_document, data_document)
def test_any_data_file_is_audited(shaping: dict, sources: dict, domains: dict) -> None:  # type: ignore[type-arg]
    result = audited(
        {
            "init.lua": LOADER,
            "shaping.toml": toml_document(shaping),
            "shaping.json": json.dumps(shaping),
            "sources.toml": toml_document(sources),
            "listener_domains.json": json.dumps(domains),
        }
    )
    for finding in result.findings:
        assert finding.span.line >= 1 and finding.span.column >= 1
        assert finding.code not in ("E101", "E104"), finding
