"""`.pre-commit-hooks.yaml` with the real pre-commit tool: `pre-commit try-repo` in a policy repository.

`language: python` hooks install this repository with pip into an isolated environment (dependencies
come from the package index), so the first run takes a while; one PRE_COMMIT_HOME is shared by the
tests of this module so the environment is built once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.gitrepo import GIT_ENV, Repo
from tests.test_hooks import EPOCH_CHANGE, OPEN_RELAY, POLICY, edit

pytest.importorskip("pre_commit", reason="the pre-commit package (test extra) is not installed")
yaml = pytest.importorskip("yaml", reason="PyYAML comes with pre-commit")

TIMEOUT = 900  # building the hook environment installs the package and its dependencies


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def try_repo(repo: Repo, hook: str, home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"}
    env.pop("PYTHONPATH", None)  # the hook must run from its own installed environment
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "try-repo",
            str(ROOT),
            hook,
            "--color",
            "never",
            *extra,
        ],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "policy-repo")
    r.commit(POLICY, "initial policy")
    return r


def test_hook_definitions() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"kumo-audit", "kumo-audit-lint"}
    whole = hooks["kumo-audit"]
    assert whole["pass_filenames"] is False and whole["always_run"] is True
    assert whole["entry"] == "kumo-audit hook pre-commit" and whole["language"] == "python"
    lint = hooks["kumo-audit-lint"]
    assert lint["entry"] == "kumo-audit hook lint"
    assert set(lint["types_or"]) == {"lua", "toml", "json"}


def test_try_repo_blocks_a_bad_staged_change_and_passes_a_good_one(
    repo: Repo, pre_commit_home: Path
) -> None:
    edit(repo, "policy/init.lua", OPEN_RELAY)
    repo.git("add", "-A")
    proc = try_repo(repo, "kumo-audit", pre_commit_home)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "Failed" in output and "policy/init.lua:" in output and "S101" in output

    repo.git("checkout", "HEAD", "--", "policy/init.lua")
    edit(repo, "policy/shaping.toml", EPOCH_CHANGE)
    repo.git("add", "-A")
    proc = try_repo(repo, "kumo-audit", pre_commit_home)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Passed" in output


def test_try_repo_sees_a_staged_deletion(repo: Repo, pre_commit_home: Path) -> None:
    repo.git("rm", "-q", "policy/util.lua")  # init.lua still requires it
    proc = try_repo(repo, "kumo-audit", pre_commit_home)
    assert proc.returncode == 1, proc.stdout + proc.stderr


def test_try_repo_lint_hook(repo: Repo, pre_commit_home: Path) -> None:
    edit(repo, "policy/init.lua", OPEN_RELAY)
    repo.git("add", "-A")
    proc = try_repo(repo, "kumo-audit-lint", pre_commit_home)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "policy/init.lua:" in output and "S101" in output
    repo.git("checkout", "HEAD", "--", "policy/init.lua")
    proc = try_repo(repo, "kumo-audit-lint", pre_commit_home, "--all-files")
    assert proc.returncode == 0, proc.stdout + proc.stderr
