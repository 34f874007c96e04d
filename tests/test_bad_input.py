"""Bad input gets a finding or a one-line error (exit 2), never a traceback; the rest is still audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import audit, codes_at, run_cli, write_tree

GOOD_MODULE = "local M = {}\nfunction M.f() return 1 end\nreturn M\n"


def assert_one_line_error(proc, fragment: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert fragment in proc.stderr


def test_broken_lua_is_e101_with_lua_message_and_column(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"init.lua": "local kumo = require 'kumo'\nkumo.on('init', function()\n  x = = 1\nend)\n"},
    )
    findings = audit(tmp_path).findings
    assert codes_at(findings) == [("E101", 3, 7)]
    assert "unexpected symbol near '='" in findings[0].message


def test_invalid_lua_that_tree_sitter_accepts_is_still_e101(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "local limit <const> = 10\nlimit = 20\ngoto nowhere\n"})
    assert codes_at(audit(tmp_path).findings, "E1") == [("E101", 2, 1)]


def test_broken_module_does_not_stop_the_rest(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": "local a = require 'a'\nlocal b = require 'b'\n",
            "a.lua": "return {\n",
            "b.lua": GOOD_MODULE,
        },
    )
    result = audit(tmp_path)
    assert codes_at(result.findings) == [("E101", 2, 1)]
    assert "b.lua" in result.context.model.modules


def test_binary_file_is_e102(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"init.lua": "local a = require 'a'\n", "a.lua": b"\x00\x01\x02ELF"},
    )
    findings = audit(tmp_path).findings
    assert codes_at(findings) == [("E102", 1, 1)]
    assert "a.lua is a binary file" in findings[0].message


LATIN1_MODULE = (
    b"-- r\xe9glages de l'\xe9quipe\n"
    b"local M = {}\n"
    b"M.greeting = 'caf\xe9'\n"
    b"local smtp_auth_plain_password = 'tiger-\xe9-2024'\n"
    b"return M\n"
)


def test_module_with_bytes_that_are_not_utf8_is_audited_as_lua_reads_it(tmp_path: Path) -> None:
    """require reads a module's bytes: Latin-1 in its strings and comments is valid Lua, so the
    module is audited (here: the inline password on line 4), not refused with E102."""
    write_tree(tmp_path, {"init.lua": "local m = require 'm'\n", "m.lua": LATIN1_MODULE})
    findings = audit(tmp_path).findings
    assert codes_at(findings) == [("S106", 4, 34)]
    assert findings[0].path == "m.lua"


def test_module_with_a_stray_byte_outside_strings_is_e101_with_the_byte(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"init.lua": "local m = require 'm'\n", "m.lua": b"-- \xe9\nlocal x = 1 \xff\nreturn x\n"},
    )
    findings = audit(tmp_path).findings
    assert codes_at(findings) == [("E101", 2, 13)]
    assert "near '<\\255>'" in findings[0].message


def test_unfinished_string_holding_other_bytes_is_e101_quoting_them(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"init.lua": "local m = require 'm'\n", "m.lua": b"local s = 'caf\xe9\nreturn s\n"},
    )
    findings = audit(tmp_path).findings
    assert codes_at(findings) == [("E101", 1, 1)]
    assert "unfinished string near a string literal (its text is not shown)" in findings[0].message
    assert "caf" not in findings[0].message


def test_policy_entry_that_is_not_utf8_is_e102_and_still_audited(tmp_path: Path) -> None:
    """kumod reads the entry file as UTF-8 text: it cannot load it. What the file says is still
    audited, so the other problems are not hidden behind this one."""
    write_tree(
        tmp_path,
        {"init.lua": b"-- \xe9t\xe9\nlocal smtp_auth_plain_password = 'tiger-2024-x'\n"},
    )
    findings = audit(tmp_path).findings
    assert codes_at(findings) == [("E102", 1, 1), ("S106", 2, 34)]
    e102 = findings[0].message
    assert "init.lua is not valid UTF-8 (byte 0xe9 on line 1)" in e102
    assert "kumod reads the policy entry file as UTF-8 text" in e102


def test_module_audited_alone_that_is_not_utf8_is_not_e102(tmp_path: Path) -> None:
    write_tree(tmp_path, {"m.lua": LATIN1_MODULE})
    result = audit(tmp_path, entry="m.lua")
    assert result.mode == "module"
    assert codes_at(result.findings) == [("S106", 4, 34)]
    proc = run_cli("check", str(tmp_path / "m.lua"), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert '"E102"' not in proc.stdout and "tiger" not in proc.stdout


def test_file_over_size_limit_is_e102(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "local a = require 'a'\n", "a.lua": "-- " + "x" * 200 + "\n"})
    from auditor.pipeline.stages import audit_snapshot
    from auditor.source.snapshot import FsSnapshot

    findings = audit_snapshot(FsSnapshot(tmp_path, size_limit=100)).findings
    assert codes_at(findings) == [("E102", 1, 1)]
    assert "over the size limit of 100 bytes" in findings[0].message


def test_deeply_nested_tables_are_e101_not_a_crash(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "local t = " + "{" * 10_000 + "}" * 10_000 + "\n"})
    findings = audit(tmp_path).findings
    assert [f.code for f in findings] == ["E101"]
    assert "nesting too deep" in findings[0].message


def test_require_cycle_is_e105(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": "local a = require 'a'\n",
            "a.lua": "local b = require 'b'\nreturn {}\n",
            "b.lua": "local a = require 'a'\nreturn {}\n",
        },
    )
    findings = audit(tmp_path).findings
    assert codes_at(findings) == [("E105", 1, 11)]
    assert "a.lua -> b.lua -> a.lua" in findings[0].message


def test_missing_module_is_e104_at_the_require(tmp_path: Path) -> None:
    write_tree(
        tmp_path, {"init.lua": "local kumo = require 'kumo'\nlocal x = require 'missing.mod'\n"}
    )
    findings = audit(tmp_path).findings
    assert codes_at(findings) == [("E104", 2, 11)]


def test_missing_data_file_is_e104_at_the_reference(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": """
        local sources = require 'policy-extras.sources'
        sources:setup { '/opt/kumomta/etc/policy/sources.toml' }
    """
        },
    )
    assert codes_at(audit(tmp_path).findings) == [("E104", 2, 17)]


def test_symlink_outside_the_tree_is_reported_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    tree = tmp_path / "tree"
    write_tree(outside, {"secret.lua": "return 'top secret'\n"})
    write_tree(tree, {"init.lua": "local s = require 'secret'\n"})
    (tree / "secret.lua").symlink_to(outside / "secret.lua")
    findings = audit(tree).findings
    assert ("E102", 1, 1) in codes_at(findings)
    assert all("top secret" not in f.message for f in findings)
    assert any("symlink points outside the audited tree" in f.message for f in findings)


def test_missing_path_and_missing_init_are_one_line_errors(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("check", str(tmp_path / "nope")), "does not exist")
    write_tree(tmp_path, {"README.md": "not a policy\n"})
    assert_one_line_error(run_cli("check", str(tmp_path)), "no init.lua found")


def test_invalid_configuration_is_a_one_line_error_with_suggestion(tmp_path: Path) -> None:
    write_tree(
        tmp_path, {"init.lua": "\n", "kumo-audit.toml": "[thresholds]\nrelay_ipv4_min_prfix = 8\n"}
    )
    proc = run_cli("check", str(tmp_path))
    assert_one_line_error(proc, "did you mean 'relay_ipv4_min_prefix'")
    write_tree(tmp_path, {"kumo-audit.toml": "select = [\n"})
    assert_one_line_error(run_cli("check", str(tmp_path)), "invalid TOML")


def test_unwritable_output_is_a_one_line_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "\n", "blocker": "a file, not a directory\n"})
    proc = run_cli(
        "check", str(tmp_path), "--format", "json", "--output", str(tmp_path / "blocker" / "x.json")
    )
    assert_one_line_error(proc, "cannot write")


LINE_ENDINGS_POLICY = (
    "local kumo = require 'kumo'\n"
    "-- the listener for injectors\n"
    "kumo.on('init', function()\n"
    "  kumo.start_esmtp_listener { listen = '0.0.0.0:25', relay_hosts = { '0.0.0.0/0' } }\n"
    "end)\n"
    "local smtp_auth_plain_password = 'tiger-2024-x'\n"
)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r", "\n\r"], ids=["lf", "crlf", "cr", "lfcr"])
def test_findings_are_on_the_lines_lua_counts_whatever_the_line_endings(
    tmp_path: Path, newline: str
) -> None:
    """Lua ends a line at LF, CR, CR LF or LF CR (one break each); tree-sitter counts LF only.
    A file saved with bare CRs, or a listener hidden after a comment that ends at a CR, must still
    be audited at the lines kumod's Lua reports."""
    (tmp_path / "init.lua").write_bytes(LINE_ENDINGS_POLICY.replace("\n", newline).encode())
    findings = audit(tmp_path).findings
    assert codes_at(findings) == [("D101", 4, 3), ("S101", 4, 70), ("S106", 6, 34)]


@pytest.mark.parametrize("newline", ["\n", "\r", "\r\n"], ids=["lf", "cr", "crlf"])
def test_syntax_error_after_bare_carriage_returns_is_on_lua_line(
    tmp_path: Path, newline: str
) -> None:
    text = "local kumo = require 'kumo'\n--[==[ note\n]==]\nlocal s = [[a\nb]]\nlocal y = = 1\n"
    (tmp_path / "init.lua").write_bytes(text.replace("\n", newline).encode())
    findings = audit(tmp_path).findings
    assert codes_at(findings) == [("E101", 6, 11)]
    assert "unexpected symbol near '='" in findings[0].message


@pytest.mark.parametrize(
    "source",
    [
        "local password = 'a' 'Hx9secretLit'\n",
        'local password = "Hx9secretLit\nreturn password\n',
        "local t = { x = [[a]] [[Hx9secretLit]] }\n",
    ],
)
def test_e101_never_quotes_a_string_literal(tmp_path: Path, source: str) -> None:
    """Lua's message quotes the token it stopped at; a string there may be a secret."""
    write_tree(tmp_path, {"init.lua": source.encode()})
    (finding,) = audit(tmp_path).findings
    assert finding.code == "E101" and "Hx9secretLit" not in finding.message
    assert "near a string literal (its text is not shown)" in finding.message
    assert "Hx9secretLit" not in (finding.key or "")
