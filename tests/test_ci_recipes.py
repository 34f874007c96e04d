"""The CI recipes in ci/: parsed, and their kumo-audit commands run against a real repository with the
environment the CI system would set (a `kumo-audit` shim on PATH runs this checkout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.gitrepo import GIT_ENV, Repo
from tests.test_hooks import EPOCH_CHANGE, OPEN_RELAY, POLICY, edit

yaml = pytest.importorskip("yaml", reason="PyYAML comes with pre-commit (test extra)")

CI = ROOT / "ci"


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "kumo-audit"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m auditor "$@"\n')
    script.chmod(0o755)
    return bindir


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A clone of a bare `origin`: main holds a good policy; no user.name in any Git config."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    r = Repo(tmp_path / "work")
    r.commit(POLICY, "initial policy")
    r.git("remote", "add", "origin", str(origin))
    r.git("push", "-q", "origin", "main")
    r.git("fetch", "-q", "origin")
    return r


def branch(repo: Repo, name: str, change: tuple[str, str], path: str = "policy/init.lua") -> str:
    repo.git("checkout", "-q", "-b", name, "main")
    edit(repo, path, change)
    repo.git("add", path)  # only the policy: report files of an earlier step stay untracked
    repo.git("commit", "-q", "-m", f"{name} change")
    return repo.git("rev-parse", "HEAD")


def run_step(
    script: str, repo: Repo, shim: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        **GIT_ENV,
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
        "PATH": f"{shim}:{os.environ['PATH']}",
        **env,
    }
    return subprocess.run(
        ["sh", "-c", script], cwd=repo.path, env=full, capture_output=True, text=True, timeout=300
    )


# -- GitHub Actions --------------------------------------------------------------------------------


def github_steps() -> dict[str, dict]:  # type: ignore[type-arg]
    doc = yaml.safe_load((CI / "github-actions.yml").read_text())
    steps = doc["jobs"]["audit"]["steps"]
    return {s.get("name") or s.get("uses"): s for s in steps}


def github_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_REPOSITORY": "ops/policy",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_ACTOR": "octo-operator",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        **extra,
    }


def test_github_workflow_shape() -> None:
    steps = github_steps()
    sarif = steps["github/codeql-action/upload-sarif@v3"]
    assert sarif["with"]["sarif_file"] == "kumo-audit.sarif"
    pr = steps["Audit the change"]["run"]
    assert "--format github" in pr and '--summary "$GITHUB_STEP_SUMMARY"' in pr
    assert "--format sarif --output kumo-audit.sarif" in pr
    checkout = steps["actions/checkout@v4"]
    assert checkout["with"]["fetch-depth"] == 0


def test_github_pull_request_step(repo: Repo, shim: Path, tmp_path: Path) -> None:
    script = github_steps()["Audit the change"]["run"]
    env = github_env(tmp_path, GITHUB_BASE_REF="main", GITHUB_EVENT_NAME="pull_request")

    branch(repo, "bad", OPEN_RELAY)
    proc = run_step(script, repo, shim, env)
    assert proc.returncode == 1, proc.stderr
    assert "::error file=policy/init.lua,line=" in proc.stdout and "S101" in proc.stdout
    sarif = json.loads((repo.path / "kumo-audit.sarif").read_text())
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]].count("S101") == 1
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "S101" in summary

    branch(repo, "good", EPOCH_CHANGE, "policy/shaping.toml")
    proc = run_step(script, repo, shim, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((repo.path / "kumo-audit.sarif").read_text())["runs"][0]["results"] == []


def test_github_push_step_records_and_pushes_the_runbook_entry(
    repo: Repo, shim: Path, tmp_path: Path
) -> None:
    before = repo.git("rev-parse", "main")
    edit(repo, "policy/init.lua", ("log_dir = '/var/log/kumomta'", "log_dir = '/var/log/kumo'"))
    repo.git("commit", "-q", "-am", "move the logs OPS-7")
    script = github_steps()["Audit and record the merged change"]["run"]
    script = script.replace("${{ github.event.before }}", before)
    env = github_env(tmp_path, GITHUB_EVENT_NAME="push", GITHUB_REF_NAME="main")
    proc = run_step(script, repo, shim, env)
    assert proc.returncode == 0, proc.stderr
    assert "restart-required" in proc.stderr
    origin = repo.path.parent / "origin.git"
    files = subprocess.run(
        ["git", "-C", str(origin), "ls-tree", "-r", "--name-only", "kumo-runbook"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    entries = [f for f in files if f.endswith(".md") and "restart-required" in f]
    assert len(entries) == 1, files
    text = subprocess.run(
        ["git", "-C", str(origin), "show", f"kumo-runbook:{entries[0]}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "https://github.example/ops/policy/actions/runs/4242" in text
    assert "octo-operator" in text


# -- GitLab CI ------------------------------------------------------------------------------------


def test_gitlab_job(repo: Repo, shim: Path) -> None:
    job = yaml.safe_load((CI / "gitlab-ci.yml").read_text())["kumo-audit"]
    assert job["artifacts"]["reports"]["codequality"] == "gl-code-quality-report.json"
    env = {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_DEFAULT_BRANCH": "main",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_JOB_URL": "https://gitlab.example/ops/policy/-/jobs/7",
        "GITLAB_USER_LOGIN": "lab-operator",
    }
    branch(repo, "bad", OPEN_RELAY)
    for line in job["before_script"]:
        if line.startswith("git "):
            assert run_step(line, repo, shim, env).returncode == 0
    script = "\n".join(job["script"])
    proc = run_step(script, repo, shim, env)
    assert proc.returncode == 1, proc.stderr
    assert "S101" in proc.stdout
    report = json.loads((repo.path / "gl-code-quality-report.json").read_text())
    assert any(
        item["check_name"].startswith("S101") or "S101" in item["description"] for item in report
    )
    assert report[0]["location"]["path"] == "policy/init.lua"
    assert "S101" in (repo.path / "kumo-audit-junit.xml").read_text()

    branch(repo, "good", EPOCH_CHANGE, "policy/shaping.toml")
    proc = run_step(script, repo, shim, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((repo.path / "gl-code-quality-report.json").read_text()) == []


# -- plain shell ----------------------------------------------------------------------------------


def test_shell_recipe(repo: Repo, shim: Path) -> None:
    script = str(CI / "shell.sh")
    env = {"CI": "true"}
    branch(repo, "bad", OPEN_RELAY)
    proc = run_step(script, repo, shim, env)
    assert proc.returncode == 1 and "change blocked" in proc.stdout, proc.stderr
    doc = json.loads((repo.path / "kumo-audit.json").read_text())
    assert [f["code"] for f in doc["findings"]].count("S101") == 1

    branch(repo, "good", EPOCH_CHANGE, "policy/shaping.toml")
    proc = run_step(
        script, repo, shim, {**env, "KUMO_AUDIT_RECORD": "1", "KUMO_AUDIT_BASE": "main"}
    )
    assert proc.returncode == 0 and "change accepted" in proc.stdout, proc.stderr
    assert "recorded runbook entry" in proc.stderr
    assert repo.git("rev-parse", "--verify", "--quiet", "kumo-runbook") != ""


def test_ci_detects_the_base_from_the_environment(repo: Repo, shim: Path, tmp_path: Path) -> None:
    """No --base: GITHUB_BASE_REF names the target branch."""
    branch(repo, "bad", OPEN_RELAY)
    env = github_env(tmp_path, GITHUB_BASE_REF="main")
    proc = run_step("kumo-audit ci --format json", repo, shim, env)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["change"]["base"] == repo.git("rev-parse", "main")
