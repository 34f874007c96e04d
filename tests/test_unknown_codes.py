"""An unknown rule code never switches rules off: it is a configuration error with a suggestion."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli, write_tree

POLICY = {
    "init.lua": """
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data' }
  kumo.define_spool { name = 'meta', path = '/var/spool/kumomta/meta' }
  kumo.start_esmtp_listener { listen = '0.0.0.0:25', relay_hosts = { '0.0.0.0/0' } }
end)
"""
}


def one_line_error(proc) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("config", "names", "suggestion"),
    [
        ('select = ["S1O1"]', ["S1O1", "select"], "S101"),
        ('ignore = ["ZZZ999"]', ["ZZZ999", "ignore"], None),
        ('severity = { S10 = "error" }', ["S10", "severity", "did you mean"], None),
        (
            '[[per_path_ignores]]\npath = "*.lua"\ncodes = ["R1O3"]',
            ["R1O3", "per_path_ignores"],
            "R103",
        ),
        ('[[waiver]]\npath = "a.toml"\ncode = "D1O4"\nreason = "ok"', ["D1O4", "waiver"], "D104"),
    ],
)
def test_unknown_codes_in_the_configuration_file(
    tmp_path: Path, config: str, names: list[str], suggestion: str | None
) -> None:
    write_tree(tmp_path, POLICY | {"kumo-audit.toml": config + "\n"})
    line = one_line_error(run_cli("check", str(tmp_path)))
    assert "kumo-audit.toml" in line
    for name in names:
        assert name in line
    if suggestion:
        assert f"'{suggestion}'" in line


@pytest.mark.parametrize(
    ("flag", "value", "suggestion"),
    [("--select", "ZZZ999", None), ("--select", "S1O1", "S101"), ("--ignore", "S1O1,R101", "S101")],
)
def test_unknown_codes_on_the_command_line(
    tmp_path: Path, flag: str, value: str, suggestion: str | None
) -> None:
    write_tree(tmp_path, POLICY)
    line = one_line_error(run_cli("check", str(tmp_path), flag, value))
    assert flag in line and value.split(",")[0] in line
    if suggestion:
        assert f"'{suggestion}'" in line


def test_known_codes_and_prefixes_are_accepted(tmp_path: Path) -> None:
    write_tree(tmp_path, POLICY | {"kumo-audit.toml": 'select = ["S", "E1", "R101", "d1"]\n'})
    proc = run_cli("check", str(tmp_path))
    assert proc.returncode == 1 and "S101" in proc.stdout, proc.stderr
    proc = run_cli("check", str(tmp_path), "--select", "S10", "--ignore", "S105")
    assert proc.returncode == 1 and "S101" in proc.stdout, proc.stderr


def test_unknown_code_in_an_inline_suppression_is_reported_with_a_suggestion(
    tmp_path: Path,
) -> None:
    write_tree(
        tmp_path,
        {
            "init.lua": POLICY["init.lua"].replace(
                "  kumo.start_esmtp_listener",
                '  -- kumo-audit: allow(S1O1) reason="lab"\n  kumo.start_esmtp_listener',
            )
        },
    )
    proc = run_cli("check", str(tmp_path))
    assert proc.returncode == 1
    assert "S101" in proc.stdout  # not suppressed
    x001 = [line for line in proc.stdout.splitlines() if "X001" in line]
    assert x001 and "did you mean 'S101'" in x001[0], proc.stdout


def test_ci_and_diff_check_codes_too(tmp_path: Path) -> None:
    from tests.gitrepo import Repo

    repo = Repo(tmp_path / "r")
    repo.commit(POLICY, "initial")
    repo.commit({"kumo-audit.toml": 'select = ["S1O1"]\n'}, "select")
    for args in (["ci", "--base", "HEAD~1"], ["diff", "HEAD~1", "HEAD"]):
        line = one_line_error(run_cli(*args, cwd=repo.path))
        assert "S1O1" in line and "'S101'" in line
    line = one_line_error(run_cli("diff", "HEAD~1", "HEAD", "--select", "Q", cwd=repo.path))
    assert "--select" in line


def test_code_problem_suggestions() -> None:
    from auditor.config.settings import parse_config
    from auditor.core.errors import ConfigError
    from auditor.filter.codes import check_config_codes, code_problem, known_codes

    codes = known_codes()
    assert code_problem("S101", codes) is None and code_problem("s10", codes) is None
    assert code_problem("S10", codes, prefix=False) is not None  # severities name whole codes
    assert "did you mean 'S101'" in (code_problem("S1O1", codes) or "")
    assert "did you mean 'R'" in (code_problem("RR", codes) or "")  # a family prefix
    unknown = code_problem("ZZZ999", codes) or ""
    assert "ZZZ999" in unknown and "did you mean" not in unknown
    config = parse_config({"waiver": [{"path": "a.toml", "code": "D1", "reason": "ok"}]}, "t")
    check_config_codes(config)  # waivers match by prefix, as the filter applies them
    check_config_codes(
        parse_config({"per_path_ignores": [{"path": "*.lua", "codes": ["R1"]}]}, "t")
    )
    with pytest.raises(ConfigError, match="severity"):
        check_config_codes(parse_config({"severity": {"S": "error"}}, "t"))
