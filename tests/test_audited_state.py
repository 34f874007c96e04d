"""The audited state owns its configuration, every output with a schema validates against it, and
the CLI honours the arguments it is given in-process."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import ROOT, run_cli
from tests.gitrepo import GIT_ENV, Repo

SCHEMAS = ROOT / "schemas"

INIT = "local kumo = require 'kumo'\n"
BROKEN = "local kumo = require 'kumo'\nlocal m = require 'missing_module'\n"  # E104, an error
RELAXED = 'ignore = ["E104"]\n'


def schema(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)
    r = Repo(tmp_path / "repo")
    r.commit({"init.lua": INIT}, "initial policy")
    return r


def cli(repo: Repo, *args: str):  # type: ignore[no-untyped-def]
    return run_cli(*args, cwd=repo.path)


def json_of(repo: Repo, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    proc = cli(repo, *args, "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


# -- the configuration comes from the audited snapshot ---------------------------------------------


def test_untracked_config_does_not_relax_diff_staged(repo: Repo) -> None:
    repo.write({"init.lua": BROKEN})
    repo.git("add", "init.lua")
    assert cli(repo, "diff", "--staged").returncode == 1
    repo.write({"kumo-audit.toml": RELAXED})  # never added: not part of what is committed
    proc = cli(repo, "diff", "--staged")
    assert proc.returncode == 1, proc.stdout
    assert "E104" in proc.stdout


def test_untracked_config_does_not_relax_the_pre_commit_hook(repo: Repo) -> None:
    repo.write({"init.lua": BROKEN, "kumo-audit.toml": RELAXED})
    repo.git("add", "init.lua")
    proc = cli(repo, "hook", "pre-commit")
    assert proc.returncode == 1, proc.stderr
    assert "E104" in proc.stderr


def test_untracked_pyproject_table_does_not_relax_ci(repo: Repo) -> None:
    base = repo.git("rev-parse", "HEAD")
    repo.commit({"init.lua": BROKEN}, "break it")
    repo.write({"pyproject.toml": '[tool.kumo-audit]\nignore = ["E104"]\n'})
    assert cli(repo, "ci", "--base", base).returncode == 1


def test_staged_config_is_part_of_the_change_and_its_relaxation_is_shown(repo: Repo) -> None:
    repo.write({"init.lua": BROKEN, "kumo-audit.toml": RELAXED})
    repo.git("add", "-A")
    status, doc = json_of(repo, "diff", "--staged")
    assert "E104" not in [f["code"] for f in doc["findings"] if not f["suppressed"]]
    relaxed = [f for f in doc["introduced"] if f["code"] == "C107"]
    assert relaxed and "E104" in relaxed[0]["message"], doc["introduced"]
    assert relaxed[0]["path"] == "kumo-audit.toml"
    assert status == 0  # a reviewed relaxation is a warning, shown, not refused


@pytest.mark.parametrize(
    ("before", "after", "needle"),
    [
        ("", 'fail_on = "error"\n', None),  # the default written out: not a relaxation
        ('fail_on = "warning"\n', 'fail_on = "error"\n', "fail_on"),
        ("", 'select = ["S"]\n', "select"),
        ("", '[severity]\nS101 = "info"\n', "S101"),
        (
            "",
            '[[waiver]]\npath = "sources.toml"\ncode = "E301"\nkey = "x"\nreason = "r"\n',
            "waiver",
        ),
        ('ignore = ["E104"]\n', "", None),  # tightening is not reported
    ],
)
def test_relaxing_config_changes_are_reported(
    repo: Repo, before: str, after: str, needle: str | None
) -> None:
    if before:
        repo.commit({"kumo-audit.toml": before}, "config")
    repo.write({"kumo-audit.toml": after})
    repo.git("add", "-A")
    _, doc = json_of(repo, "diff", "--staged")
    relaxed = [f["message"] for f in doc["introduced"] if f["code"] == "C107"]
    if needle is None:
        assert relaxed == []
    else:
        assert relaxed and needle in relaxed[0]


def test_relaxation_cannot_hide_itself(repo: Repo) -> None:
    repo.write({"init.lua": BROKEN, "kumo-audit.toml": 'ignore = ["E104", "C107", "C"]\n'})
    repo.git("add", "-A")
    _, doc = json_of(repo, "diff", "--staged")
    assert "C107" in [f["code"] for f in doc["introduced"]]


def test_each_commit_is_judged_by_its_own_configuration(repo: Repo) -> None:
    base = repo.git("rev-parse", "HEAD")
    broken = repo.commit({"init.lua": BROKEN}, "break it")
    first = cli(repo, "ci", "--base", base, "--each-commit")
    assert first.returncode == 1
    assert f"{broken[:10]} blocked" in first.stderr
    relax = repo.commit({"kumo-audit.toml": RELAXED}, "relax the gate")
    second = cli(repo, "ci", "--base", base, "--each-commit", "--format", "json")
    assert f"{broken[:10]} blocked" in second.stderr  # its own configuration, cached or not
    assert f"{relax[:10]} none" in second.stderr
    doc = json.loads(second.stdout)
    assert "C107" in [f["code"] for f in doc["introduced"]]


def test_each_commit_verdict_cache_covers_the_configuration(repo: Repo, tmp_path: Path) -> None:
    """The same trees audited under another configuration file get a new verdict, not the cached one."""
    base = repo.git("rev-parse", "HEAD")
    broken = repo.commit({"init.lua": BROKEN}, "break it")
    config = tmp_path / "audit.toml"
    config.write_text("")
    proc = cli(repo, "ci", "--base", base, "--each-commit", "--config", str(config))
    assert f"{broken[:10]} blocked" in proc.stderr
    config.write_text(RELAXED)
    proc = cli(repo, "ci", "--base", base, "--each-commit", "--config", str(config))
    assert broken[:10] in proc.stderr and f"{broken[:10]} blocked" not in proc.stderr


def test_check_reads_the_configuration_of_the_directory(tmp_path: Path) -> None:
    policy = tmp_path / "p"
    policy.mkdir()
    (policy / "init.lua").write_text(BROKEN)
    assert run_cli("check", str(policy)).returncode == 1
    (policy / "kumo-audit.toml").write_text(RELAXED)
    assert run_cli("check", str(policy)).returncode == 0


def test_invalid_configuration_in_the_index_fails_closed(repo: Repo) -> None:
    repo.write({"init.lua": BROKEN, "kumo-audit.toml": "ignore = [\n"})
    repo.git("add", "-A")
    proc = cli(repo, "hook", "pre-commit")
    assert proc.returncode == 2
    assert "kumo-audit.toml" in proc.stderr and proc.stderr.count("\n") == 1


# -- every output that has a schema validates against it -------------------------------------------


def test_diff_and_ci_json_validate_against_the_published_schema(repo: Repo) -> None:
    check_schema = schema("check-output.schema.json")
    base = repo.git("rev-parse", "HEAD")
    repo.commit({"init.lua": BROKEN, "kumo-audit.toml": 'fail_on = "warning"\n'}, "change")
    repo.write({"init.lua": INIT})
    outputs = [
        json_of(repo, "diff", base)[1],
        json_of(repo, "diff", base, "HEAD")[1],
        json_of(repo, "ci", "--base", base)[1],
        json_of(repo, "ci", "--base", base, "--each-commit")[1],
    ]
    repo.git("add", "-A")
    outputs.append(json_of(repo, "diff", "--staged")[1])
    for doc in outputs:
        jsonschema.validate(doc, check_schema)
        assert "introduced" in doc and "resolved" in doc


def test_check_and_config_json_validate(repo: Repo) -> None:
    repo.write({"kumo-audit.toml": 'ignore = ["R103"]\n[thresholds]\nmin_max_age = "2 days"\n'})
    _, doc = json_of(repo, "check", ".")
    jsonschema.validate(doc, schema("check-output.schema.json"))
    proc = cli(repo, "config", "--show", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    jsonschema.validate(json.loads(proc.stdout)["config"], schema("config.schema.json"))


def test_runbook_json_validates(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUMO_AUDIT_HOST", "host-a")
    base = repo.git("rev-parse", "HEAD")
    repo.commit({"init.lua": BROKEN}, "break it")
    proc = cli(repo, "ci", "--base", base, "--record")
    assert proc.returncode == 1, proc.stderr
    entry_schema = schema("runbook-entry.schema.json")
    proc = cli(repo, "runbook", "history", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert records
    for record in records:
        jsonschema.validate(record, entry_schema)
    proc = cli(repo, "runbook", "show", records[0]["id"], "--format", "json")
    assert proc.returncode == 0, proc.stderr
    jsonschema.validate(json.loads(proc.stdout), entry_schema)


# -- no process-global state below the CLI --------------------------------------------------------


def test_in_process_main_honours_its_own_output_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from auditor.cli import main

    policy = tmp_path / "p"
    policy.mkdir()
    (policy / "init.lua").write_text(BROKEN)
    out = tmp_path / "report.json"
    monkeypatch.setattr("sys.argv", ["kumo-audit", "check", "--output", str(tmp_path / "no")])
    code = main(
        ["check", str(policy), "--format", "json", "--output", str(out), "--format", "text"]
    )
    assert code == 1
    assert json.loads(out.read_text())["findings"][0]["code"] == "E104"
    assert "E104" in capsys.readouterr().out
    assert not (tmp_path / "no").exists()
