"""`check` stays light: it never imports GitPython, watchdog or Jinja2 (nor pydantic on a warm run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, write_tree

PROBE = """
import sys
from auditor.cli import main
code = main(sys.argv[1:])
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'git', 'watchdog', 'jinja2', 'pydantic'})
print('HEAVY:' + ','.join(heavy))
"""


def probe(*args: str, cache: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KUMO_AUDIT_CACHE_DIR": str(cache)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=120
    )
    marks = [line for line in proc.stdout.splitlines() if line.startswith("HEAVY:")]
    assert marks, proc.stderr
    return marks[-1].removeprefix("HEAVY:")


def test_check_imports_no_heavy_libraries(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    example = ROOT / "examples" / "acme-mta"
    cold = probe("check", str(example), "--format", "json", cache=cache)
    assert "git" not in cold and "watchdog" not in cold and "jinja2" not in cold
    warm = probe("check", str(example), "--format", "json", cache=cache)
    assert warm == "", f"a warm check imported {warm}"


def test_policy_without_data_files_never_needs_pydantic(tmp_path: Path) -> None:
    write_tree(tmp_path / "p", {"init.lua": "local kumo = require 'kumo'\n"})
    assert probe("check", str(tmp_path / "p"), cache=tmp_path / "cache") == ""


def test_unchanged_tree_is_served_from_the_result_cache(tmp_path: Path) -> None:
    """A second check of the same tree imports no rule module: the whole result is cached."""
    cache = tmp_path / "cache"
    example = ROOT / "examples" / "acme-mta"
    probe("check", str(example), cache=cache)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KUMO_AUDIT_CACHE_DIR": str(cache)}
    code = (
        "import sys; from auditor.cli import main; main(sys.argv[1:]); "
        "print('RULES:' + ','.join(sorted(m for m in sys.modules if m.startswith('auditor.rules.'))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "check", str(example)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RULES:"))
    assert "auditor.rules.security" not in line
    assert "R101" in proc.stdout  # the cached findings are still reported


def test_editing_a_file_invalidates_the_cached_result(tmp_path: Path) -> None:
    policy = write_tree(tmp_path / "p", {"init.lua": "local kumo = require 'kumo'\n"})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KUMO_AUDIT_CACHE_DIR": str(tmp_path / "cache")}
    run = [sys.executable, "-m", "auditor", "check", str(policy)]
    assert subprocess.run(run, env=env, capture_output=True, timeout=120).returncode == 0
    write_tree(policy, {"init.lua": "local kumo = require 'kumo'\nlocal m = require 'missing'\n"})
    proc = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "E104" in proc.stdout


def test_the_check_families_hold_every_rule_with_a_check() -> None:
    """`iter_checks` imports only the families listed as having checks: every rule with a check
    must live in one of them (for a snapshot, or for a change)."""
    from auditor.rules import CHANGE_CHECK_FAMILIES, SNAPSHOT_CHECK_FAMILIES, registry

    for rule_obj in registry.all_rules():
        if rule_obj.check is None:
            continue
        family = rule_obj.check.__module__.rsplit(".", 1)[-1]
        wanted = CHANGE_CHECK_FAMILIES if rule_obj.meta.change else SNAPSHOT_CHECK_FAMILIES
        assert family in wanted, f"{rule_obj.meta.code} is checked in {family}"


def test_a_check_imports_no_change_rules(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KUMO_AUDIT_CACHE_DIR": str(tmp_path / "c")}
    code = (
        "import sys; from auditor.cli import main; main(sys.argv[1:]); "
        "print('MODULES:' + ','.join(sorted(m for m in sys.modules if m.startswith('auditor.'))))"
    )
    example = ROOT / "examples" / "acme-mta"
    proc = subprocess.run([sys.executable, "-c", code, "check", str(example)],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MODULES:"))
    modules = line.removeprefix("MODULES:").split(",")
    assert "auditor.rules.security" in modules  # the rules ran (a cold cache)
    assert "auditor.rules.change" not in modules
    assert "R101" in proc.stdout


def test_commands_that_exit_tune_the_collector_and_the_daemon_keeps_defaults(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KUMO_AUDIT_CACHE_DIR": str(tmp_path / "c")}
    code = (
        "import gc, sys, contextlib, io; from auditor.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(sys.argv[1:])\n"
        "print('GC:%d' % gc.get_threshold()[0])"
    )
    example = str(ROOT / "examples" / "acme-mta")
    thresholds = {}
    for args in (["check", example], ["daemon", "--help"]):
        proc = subprocess.run([sys.executable, "-c", code, *args],
                              capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        line = next(x for x in proc.stdout.splitlines() if x.startswith("GC:"))
        thresholds[args[0]] = int(line.removeprefix("GC:"))
    fresh = subprocess.run([sys.executable, "-c", "import gc; print(gc.get_threshold()[0])"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert thresholds["daemon"] == int(fresh.stdout)  # Python's default
    assert thresholds["check"] > 10 * thresholds["daemon"]
