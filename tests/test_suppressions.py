"""Inline and file-level suppressions, their reasons, expiry, and unused ones (X001-X003)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tests.conftest import audit, codes_at, run_cli, write_tree

GLOBAL_IN_HANDLER = """
local kumo = require 'kumo'
kumo.on('smtp_server_message_received', function(msg)
  {comment}
  seen = (seen or 0) + 1
end)
"""


def policy(tmp_path: Path, comment: str) -> Path:
    return write_tree(tmp_path, {"init.lua": GLOBAL_IN_HANDLER.replace("{comment}", comment)})


def test_unsuppressed_global_is_reported(tmp_path: Path) -> None:
    assert codes_at(audit(policy(tmp_path, "-- nothing")).findings) == [("R103", 4, 3)]


def test_suppression_first_in_a_handler_body_applies_with_its_reason(tmp_path: Path) -> None:
    result = audit(
        policy(tmp_path, '-- kumo-audit: allow(R103) reason="per-context counter" ticket=OPS-7')
    )
    assert codes_at(result.findings) == []
    (finding,) = [f for f in result.findings if f.code == "R103"]
    assert finding.suppressed and finding.suppression is not None
    assert (finding.suppression.reason, finding.suppression.ticket) == (
        "per-context counter",
        "OPS-7",
    )
    assert [s.reason for s in result.suppressions] == ["per-context counter"]


def test_suppression_without_reason_is_x001_and_does_not_apply(tmp_path: Path) -> None:
    result = audit(policy(tmp_path, "-- kumo-audit: allow(R103)"))
    assert codes_at(result.findings) == [("R103", 4, 3), ("X001", 3, 3)]


def test_expired_suppression_is_x002(tmp_path: Path) -> None:
    comment = '-- kumo-audit: allow(R103) reason="temporary" expires=2026-01-31'
    result = audit(policy(tmp_path, comment), today=date(2026, 11, 29))
    assert codes_at(result.findings) == [("R103", 4, 3), ("X002", 3, 3)]
    still_valid = audit(policy(tmp_path, comment), today=date(2026, 1, 1))
    assert codes_at(still_valid.findings) == []


def test_unused_suppression_is_x003(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": '-- kumo-audit: allow(S101) reason="legacy"\nlocal x = 1\n'})
    assert codes_at(audit(tmp_path).findings) == [("X003", 1, 1)]


def test_load_errors_cannot_be_suppressed(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"init.lua": '-- kumo-audit: allow(E104) reason="later"\nlocal m = require "nope"\n'},
    )
    assert codes_at(audit(tmp_path).findings) == [("E104", 2, 11), ("X003", 1, 1)]


def test_file_level_suppression_covers_the_file(tmp_path: Path) -> None:
    text = (
        '--# kumo-audit: allow(R103) reason="legacy module, rewrite planned"\n'
        + GLOBAL_IN_HANDLER.replace("{comment}", "-- plain")
    )
    write_tree(tmp_path, {"init.lua": text})
    result = audit(tmp_path)
    assert codes_at(result.findings) == []
    assert result.suppressions[0].kind == "file"


def test_no_suppressions_flag_reports_everything(tmp_path: Path) -> None:
    policy(tmp_path, '-- kumo-audit: allow(R103) reason="per-context counter"')
    proc = run_cli("check", str(tmp_path), "--no-suppressions", "--fail-on", "warning")
    assert proc.returncode == 1
    assert "init.lua:4:3: R103" in proc.stdout
    plain = run_cli("check", str(tmp_path))
    assert "suppressions used:" in plain.stdout and "per-context counter" in plain.stdout


def test_waiver_for_a_data_file(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
            local sources = require 'policy-extras.sources'
            sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
        """,
            "sources.toml": '[source."a"]\nsource_address = "10.0.0.1"\n\n[pool."p"]\n[pool."p"."ghost"]\n',
            "kumo-audit.toml": """
            [[waiver]]
            path = "sources.toml"
            code = "E401"
            reason = "source provisioned by another team"
            ticket = "NET-4"
        """,
        },
    )
    proc = run_cli("check", str(tmp_path), "--format", "json")
    assert proc.returncode == 0, proc.stdout
    assert '"kind": "waiver"' in proc.stdout and "NET-4" in proc.stdout
