"""The CLI contract: output formats, exit codes, selection, multiple outputs, rules and explain."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli, write_tree

BROKEN = {"init.lua": "local kumo = require 'kumo'\nlocal m = require 'nope'\n"}


def test_text_output_and_exit_code(tmp_path: Path) -> None:
    write_tree(tmp_path, BROKEN)
    proc = run_cli("check", str(tmp_path))
    assert proc.returncode == 1
    first = proc.stdout.splitlines()[0]
    assert first.startswith("init.lua:2:11: E104 [error] module 'nope' is not in the audited tree")
    assert proc.stdout.rstrip().endswith("1 finding (1 error, 0 warnings, 0 infos) in 1 file")
    assert "\033[" not in proc.stdout  # no colour when not a terminal


def test_summary_says_when_no_file_could_be_audited(tmp_path: Path) -> None:
    """An entry that cannot be read gives one finding and no audited file: the summary says so
    instead of "1 finding in 0 files"; with one file audited it counts it."""
    write_tree(tmp_path, {"init.lua": b"local a = 1\0\0binary"})
    for fmt, line in (
        ("text", "1 finding (1 error, 0 warnings, 0 infos); no file could be audited"),
        ("markdown", "**1 finding** (1 error, 0 warnings, 0 infos); no file could be audited."),
    ):
        proc = run_cli("check", str(tmp_path), "--format", fmt)
        assert proc.returncode == 1
        assert line in proc.stdout.splitlines(), proc.stdout
        assert " in 0 files" not in proc.stdout
    summary = json.loads(run_cli("check", str(tmp_path), "--format", "json").stdout)["summary"]
    assert summary["files"] == 0 and summary["findings"] == 1
    write_tree(tmp_path, {"init.lua": "local a = 1\n"})
    proc = run_cli("check", str(tmp_path), "--format", "markdown")
    assert "**0 findings** (0 errors, 0 warnings, 0 infos) in 1 file." in proc.stdout


def test_clean_policy_exits_zero(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "local kumo = require 'kumo'\n"})
    proc = run_cli("check", str(tmp_path))
    assert proc.returncode == 0, proc.stdout
    assert "no problems" in proc.stdout


def test_json_contract(tmp_path: Path) -> None:
    write_tree(tmp_path, BROKEN)
    proc = run_cli("check", str(tmp_path), "--format", "json")
    doc = json.loads(proc.stdout)
    assert doc["schema_version"] == 1
    assert doc["tool"]["name"] == "kumo-audit"
    assert doc["root"] == str(tmp_path)
    (finding,) = doc["findings"]
    assert set(finding) >= {
        "code",
        "name",
        "severity",
        "message",
        "path",
        "line",
        "column",
        "end_line",
        "end_column",
        "fingerprint",
        "suppressed",
        "suppression",
    }
    assert (finding["code"], finding["path"], finding["line"], finding["column"]) == (
        "E104",
        "init.lua",
        2,
        11,
    )
    assert doc["summary"]["by_severity"]["error"] == 1
    # deterministic: byte-identical on a second run
    assert run_cli("check", str(tmp_path), "--format", "json").stdout == proc.stdout


def test_fingerprint_survives_edits_above(tmp_path: Path) -> None:
    write_tree(tmp_path, BROKEN)
    before = json.loads(run_cli("check", str(tmp_path), "--format", "json").stdout)["findings"][0]
    write_tree(tmp_path, {"init.lua": "-- a new comment\n\n" + BROKEN["init.lua"]})
    after = json.loads(run_cli("check", str(tmp_path), "--format", "json").stdout)["findings"][0]
    assert after["line"] == before["line"] + 2
    assert after["fingerprint"] == before["fingerprint"]


def test_select_ignore_and_fail_on(tmp_path: Path) -> None:
    write_tree(tmp_path, BROKEN)
    assert run_cli("check", str(tmp_path), "--ignore", "E104").returncode == 0
    assert run_cli("check", str(tmp_path), "--select", "S,R").returncode == 0
    assert run_cli("check", str(tmp_path), "--select", "E1").returncode == 1
    write_tree(tmp_path, {"kumo-audit.toml": 'severity = { E104 = "warning" }\n'})
    assert run_cli("check", str(tmp_path)).returncode == 0
    assert run_cli("check", str(tmp_path), "--fail-on", "warning").returncode == 1


def test_each_format_to_its_own_output(tmp_path: Path) -> None:
    write_tree(tmp_path, BROKEN)
    out = tmp_path / "out"
    proc = run_cli(
        "check",
        str(tmp_path),
        "--format",
        "json",
        "--output",
        str(out / "a.json"),
        "--format",
        "text",
    )
    assert proc.returncode == 1
    assert json.loads((out / "a.json").read_text())["findings"][0]["code"] == "E104"
    assert proc.stdout.startswith("init.lua:2:11: E104")


def test_entry_file_as_argument(tmp_path: Path) -> None:
    write_tree(tmp_path, {"policy/init.lua": BROKEN["init.lua"]})
    proc = run_cli("check", str(tmp_path / "policy" / "init.lua"))
    assert proc.stdout.startswith("policy/init.lua:2:11: E104")


def test_rules_and_explain() -> None:
    listing = run_cli("rules")
    assert listing.returncode == 0
    codes = [line.split()[0] for line in listing.stdout.splitlines()]
    assert codes == sorted(codes)
    assert "E101" in codes and "X003" in codes
    doc = json.loads(run_cli("rules", "--format", "json").stdout)
    assert all(r["code"] and r["name"] and r["summary"] for r in doc)
    explained = run_cli("explain", "e105")
    assert explained.returncode == 0
    assert explained.stdout.startswith("E105 require-cycle (error, load)")
    assert "Bad:" in explained.stdout and "Good:" in explained.stdout and "Fix:" in explained.stdout
    assert run_cli("explain", "require-cycle").stdout == explained.stdout
    missing = run_cli("explain", "Z999")
    assert missing.returncode == 2 and "no rule 'Z999'" in missing.stderr


def test_usage_errors_exit_2() -> None:
    assert run_cli("check", "--format", "yaml").returncode == 2
    assert run_cli("no-such-command").returncode == 2
    assert run_cli().returncode == 2
    assert run_cli("--version").stdout.startswith("kumo-audit ")


def test_output_to_a_device_writes_in_place(tmp_path: Path) -> None:
    import os
    import stat

    write_tree(tmp_path, BROKEN)
    proc = run_cli("check", str(tmp_path), "--format", "json", "--output", os.devnull)
    assert proc.returncode == 1
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)  # still the device, not a regular file
