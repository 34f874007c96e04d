"""The pre-commit gate fails closed: when it cannot audit what it guards it refuses (exit 2, one
line), unless the staged change touches no policy file at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.gitrepo import Repo
from tests.test_hooks import OPEN_RELAY, POLICY, commit, edit, install


@pytest.fixture(autouse=True)
def _importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "repo")
    r.commit(POLICY | {"README.md": "ops\n"}, "initial policy")
    return r


def refused(proc) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_missing_policy_directory_refuses_a_policy_change(repo: Repo) -> None:
    edit(repo, "policy/init.lua", OPEN_RELAY)
    repo.git("add", "-A")
    line = refused(run_cli("hook", "pre-commit", "--policy", "nope", cwd=repo.path))
    assert "nope" in line
    repo.git("config", "kumo-audit.policy", "does/not/exist")
    line = refused(run_cli("hook", "pre-commit", cwd=repo.path))
    assert "does/not/exist" in line and "kumo-audit.policy" in line
    install(repo)
    proc = commit(repo)
    assert proc.returncode != 0 and "does/not/exist" in proc.stderr
    assert repo.git("log", "--format=%s", "-1") == "initial policy"


def test_missing_policy_directory_lets_a_change_without_policy_files_through(repo: Repo) -> None:
    repo.git("config", "kumo-audit.policy", "does/not/exist")
    (repo.path / "README.md").write_text("ops, edited\n")
    repo.git("add", "-A")
    proc = run_cli("hook", "pre-commit", cwd=repo.path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_policy_path_that_is_a_file_refuses(repo: Repo) -> None:
    edit(repo, "policy/init.lua", OPEN_RELAY)
    repo.git("add", "-A")
    refused(run_cli("hook", "pre-commit", "--policy", "README.md", cwd=repo.path))


def test_bad_configuration_refuses(repo: Repo) -> None:
    edit(repo, "policy/init.lua", OPEN_RELAY)
    (repo.path / "kumo-audit.toml").write_text("select = [\n")
    repo.git("add", "-A")
    line = refused(run_cli("hook", "pre-commit", cwd=repo.path))
    assert "kumo-audit.toml" in line
    (repo.path / "kumo-audit.toml").write_text('fail_on = "sometimes"\n')
    repo.git("add", "-A")
    refused(run_cli("hook", "pre-commit", cwd=repo.path))
    refused(run_cli("hook", "pre-commit", "--config", "missing.toml", cwd=repo.path))


def test_unreadable_index_refuses(repo: Repo) -> None:
    edit(repo, "policy/init.lua", OPEN_RELAY)
    repo.git("add", "-A")
    (repo.path / ".git" / "index").write_bytes(b"DIRC garbage")
    refused(run_cli("hook", "pre-commit", cwd=repo.path))


def test_policy_without_an_entry_file_refuses(repo: Repo) -> None:
    (repo.path / "policy" / "init.lua").unlink()
    (repo.path / "policy" / "util.lua").write_text("return {}\n")
    repo.git("add", "-A")
    refused(run_cli("hook", "pre-commit", "--policy", "policy", cwd=repo.path))


def test_change_to_an_undiscovered_second_policy_refuses(tmp_path: Path) -> None:
    r = Repo(tmp_path / "repo")
    r.commit({f"a/{k}": v for k, v in POLICY.items()} | {f"b/{k}": v for k, v in POLICY.items()})
    edit(r, "b/policy/init.lua", OPEN_RELAY)
    r.git("add", "-A")
    line = refused(run_cli("hook", "pre-commit", cwd=r.path))
    assert "kumo-audit.policy" in line and "in b," in line
    assert run_cli("hook", "pre-commit", "--policy", "b", cwd=r.path).returncode == 1


@pytest.mark.parametrize("removed", ["policy/init.lua", "policy"], ids=["entry", "directory"])
def test_deleting_the_policy_entry_refuses(repo: Repo, removed: str) -> None:
    """Without its init.lua the index holds no policy to audit: the gate does not audit what is left
    file by file and let the deletion through; it refuses, naming what the commit deletes."""
    repo.git("rm", "-r", "-q", removed)
    line = refused(run_cli("hook", "pre-commit", cwd=repo.path))
    assert "deletes the policy entry policy/init.lua" in line
    install(repo)
    proc = commit(repo)
    assert proc.returncode != 0 and "deletes the policy entry" in proc.stderr
    assert repo.git("log", "--format=%s", "-1") == "initial policy"
    assert commit(repo, "--no-verify").returncode == 0
