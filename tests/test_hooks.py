"""The native Git hooks, driven through real `git commit` in temporary repositories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.gitrepo import GIT_ENV, Repo

INIT = """
local kumo = require 'kumo'
local shaping = require 'policy-extras.shaping'
local util = require 'util'

kumo.on('get_egress_path_config', shaping:setup { '/opt/kumomta/etc/policy/shaping.toml' })

kumo.on('init', function()
  kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data', kind = 'RocksDB' }
  kumo.define_spool { name = 'meta', path = '/var/spool/kumomta/meta', kind = 'RocksDB' }
  kumo.configure_local_logs { log_dir = '/var/log/kumomta' }
  kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
end)

kumo.on('smtp_server_message_received', function(msg)
  util.tag(msg)
end)
"""

UTIL = """
local M = {}
function M.tag(msg)
  msg:set_meta('queue', 'default')
end
return M
"""

SHAPING = """
["default"]
max_message_rate = "100/s"
"""

POLICY = {"policy/init.lua": INIT, "policy/util.lua": UTIL, "policy/shaping.toml": SHAPING}

OPEN_RELAY = (
    "kumo.start_esmtp_listener { listen = '0.0.0.0:25' }",
    "kumo.start_esmtp_listener { listen = '0.0.0.0:25', relay_hosts = { '0.0.0.0/0' } }",
)
RESTART_CHANGE = ("log_dir = '/var/log/kumomta'", "log_dir = '/var/log/kumo'")
EPOCH_CHANGE = ('max_message_rate = "100/s"', 'max_message_rate = "50/s"')


@pytest.fixture(autouse=True)
def _importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed hook runs this interpreter with `-m auditor`: make the package importable."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("NO_COLOR", "1")


def install(repo: Repo, *extra: str) -> subprocess.CompletedProcess[str]:
    proc = run_cli("install-hooks", *extra, cwd=repo.path)
    assert proc.returncode == 0, proc.stderr
    return proc


def commit(repo: Repo, *args: str, message: str = "change") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "commit", "-q", "-m", message, *args],
        cwd=repo.path,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )


def edit(repo: Repo, path: str, change: tuple[str, str]) -> None:
    file = repo.path / path
    text = file.read_text()
    assert change[0] in text, change[0]
    file.write_text(text.replace(*change))


def line_of(repo: Repo, path: str, needle: str) -> int:
    lines = (repo.path / path).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "repo")
    r.commit(POLICY, "initial policy")
    install(r)
    return r


def head(repo: Repo) -> str:
    return repo.git("rev-parse", "HEAD")


def test_bad_change_is_refused_with_file_line_and_code(repo: Repo) -> None:
    before = head(repo)
    edit(repo, "policy/init.lua", OPEN_RELAY)
    repo.git("add", "policy/init.lua")
    proc = commit(repo)
    assert proc.returncode == 1, proc.stderr
    line = line_of(repo, "policy/init.lua", "relay_hosts")
    assert f"policy/init.lua:{line}:" in proc.stderr
    assert "S101" in proc.stderr
    assert "commit refused" in proc.stderr and "--no-verify" in proc.stderr
    assert head(repo) == before


def test_good_change_is_accepted_with_reload_impact(repo: Repo) -> None:
    edit(repo, "policy/init.lua", RESTART_CHANGE)
    repo.git("add", "policy/init.lua")
    proc = commit(repo)
    assert proc.returncode == 0, proc.stderr
    assert "reload impact: restart: this commit changes" in proc.stderr
    assert "init" in proc.stderr and "it needs a kumod restart" in proc.stderr
    assert repo.status() == ""


def test_no_verify_bypasses(repo: Repo) -> None:
    before = head(repo)
    edit(repo, "policy/init.lua", OPEN_RELAY)
    repo.git("add", "policy/init.lua")
    proc = commit(repo, "--no-verify")
    assert proc.returncode == 0, proc.stderr
    assert head(repo) != before


def test_audits_the_index_not_the_working_tree(repo: Repo) -> None:
    edit(repo, "policy/shaping.toml", EPOCH_CHANGE)
    repo.git("add", "policy/shaping.toml")
    edit(repo, "policy/init.lua", OPEN_RELAY)  # not staged: not part of the commit
    proc = commit(repo)
    assert proc.returncode == 0, proc.stderr
    assert "reload impact: epoch" in proc.stderr
    # `git commit -a` stages the bad edit into a temporary index, and that is what gets audited
    proc = commit(repo, "-a")
    assert proc.returncode == 1 and "S101" in proc.stderr


def test_preexisting_findings_do_not_block(tmp_path: Path) -> None:
    r = Repo(tmp_path / "repo")
    bad = {**POLICY, "policy/init.lua": INIT.replace(*OPEN_RELAY)}
    r.commit(bad, "already bad")
    install(r)
    edit(r, "policy/shaping.toml", EPOCH_CHANGE)
    r.git("add", "-A")
    proc = commit(r)
    assert proc.returncode == 0, proc.stderr


def test_first_commit(tmp_path: Path) -> None:
    r = Repo(tmp_path / "repo")
    install(r)
    r.write({**POLICY, "policy/init.lua": INIT.replace(*OPEN_RELAY)})
    r.git("add", "-A")
    proc = commit(r)
    assert proc.returncode == 1 and "S101" in proc.stderr, proc.stderr
    assert r.git("rev-parse", "--verify", "--quiet", "HEAD", check=False) == ""
    r.write(POLICY)
    r.git("add", "-A")
    proc = commit(r)
    assert proc.returncode == 0, proc.stderr


def test_deleted_files(repo: Repo) -> None:
    repo.git("rm", "-q", "policy/util.lua")  # still required by init.lua
    proc = commit(repo)
    assert proc.returncode == 1, proc.stderr
    assert "policy/init.lua:" in proc.stderr and "util" in proc.stderr
    repo.git("reset", "-q", "HEAD", "--", "policy/util.lua")
    repo.git("checkout", "--", "policy/util.lua")
    repo.write({"policy/notes.lua": "return {}\n"})
    repo.git("add", "policy/notes.lua")
    assert commit(repo).returncode == 0
    repo.git("rm", "-q", "policy/notes.lua")  # nothing uses it
    proc = commit(repo)
    assert proc.returncode == 0, proc.stderr


def test_renames(repo: Repo) -> None:
    repo.git("mv", "policy/util.lua", "policy/tagging.lua")
    proc = commit(repo)
    assert proc.returncode == 1, proc.stderr  # init.lua still requires 'util'
    edit(repo, "policy/init.lua", ("require 'util'", "require 'tagging'"))
    repo.git("add", "policy/init.lua")
    proc = commit(repo)
    assert proc.returncode == 0, proc.stderr
    assert repo.git("show", "--stat", "--format=", "HEAD").count("tagging") == 1


def test_merge_in_progress(repo: Repo) -> None:
    repo.git("checkout", "-q", "-b", "topic")
    edit(repo, "policy/init.lua", OPEN_RELAY)
    assert commit(repo, "-a", "--no-verify", message="open relay").returncode == 0
    repo.git("checkout", "-q", "main")
    edit(repo, "policy/shaping.toml", EPOCH_CHANGE)
    repo.git("add", "-A")
    assert commit(repo, message="slower").returncode == 0
    repo.git("merge", "--no-commit", "--no-ff", "topic")
    assert (repo.path / ".git" / "MERGE_HEAD").exists()
    proc = commit(repo, message="merge topic")
    assert proc.returncode == 1, proc.stderr
    assert "merging in progress" in proc.stderr and "S101" in proc.stderr
    edit(repo, "policy/init.lua", (OPEN_RELAY[1], OPEN_RELAY[0]))
    repo.git("add", "policy/init.lua")
    proc = commit(repo, message="merge topic without the relay")
    assert proc.returncode == 0, proc.stderr
    assert len(repo.git("log", "-1", "--format=%P").split()) == 2


def test_rebase_in_progress(repo: Repo) -> None:
    edit(repo, "policy/shaping.toml", EPOCH_CHANGE)
    repo.git("add", "-A")
    assert commit(repo, message="slower").returncode == 0
    env = {**os.environ, **GIT_ENV, "GIT_SEQUENCE_EDITOR": "sed -i -e 's/^pick/edit/'"}
    subprocess.run(
        ["git", "rebase", "-q", "-i", "HEAD~1"], cwd=repo.path, env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    assert (repo.path / ".git" / "rebase-merge").exists()
    edit(repo, "policy/init.lua", OPEN_RELAY)
    repo.git("add", "policy/init.lua")
    proc = commit(repo, message="during rebase")
    assert proc.returncode == 1, proc.stderr
    assert "rebasing in progress" in proc.stderr and "S101" in proc.stderr
    edit(repo, "policy/init.lua", RESTART_CHANGE)
    repo.git("add", "policy/init.lua")
    proc = commit(repo, "--no-verify", message="during rebase")  # still has the relay: bypassed
    assert proc.returncode == 0
    repo.git("rebase", "--abort")


def test_policy_in_a_subdirectory_and_changes_outside_it(tmp_path: Path) -> None:
    r = Repo(tmp_path / "repo")
    r.commit({f"mta/{k}": v for k, v in POLICY.items()} | {"README.md": "ops repo\n"}, "initial")
    install(r)
    (r.path / "README.md").write_text("ops repo, edited\n")
    (r.path / "mta" / "policy" / "init.lua").write_text(INIT.replace(*OPEN_RELAY))  # unstaged
    r.git("add", "README.md")
    proc = commit(r)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # nothing staged in the policy tree: no audit at all
    r.git("add", "-A")
    proc = commit(r)
    assert proc.returncode == 1, proc.stderr
    assert "mta/policy/init.lua:" in proc.stderr and "S101" in proc.stderr


def test_policy_option_and_git_config(tmp_path: Path) -> None:
    r = Repo(tmp_path / "repo")
    r.commit({f"a/{k}": v for k, v in POLICY.items()} | {f"b/{k}": v for k, v in POLICY.items()})
    edit(r, "b/policy/init.lua", OPEN_RELAY)
    r.git("add", "-A")
    # discovery picks a/ (the first of equally shallow policies): a change to b/ is refused
    assert run_cli("hook", "pre-commit", cwd=r.path).returncode == 2
    proc = run_cli("hook", "pre-commit", "--policy", "b", cwd=r.path)
    assert proc.returncode == 1 and "b/policy/init.lua:" in proc.stderr
    r.git("config", "kumo-audit.policy", "b")
    assert run_cli("hook", "pre-commit", cwd=r.path).returncode == 1


def test_install_respects_hooks_path_force_and_backup(tmp_path: Path) -> None:
    r = Repo(tmp_path / "repo")
    r.git("config", "core.hooksPath", "githooks")
    proc = install(r, "--commit-msg")
    assert (r.path / "githooks" / "pre-commit").exists()
    assert (r.path / "githooks" / "commit-msg").exists()
    assert not (r.path / ".git" / "hooks" / "pre-commit").exists()
    assert os.access(r.path / "githooks" / "pre-commit", os.X_OK)
    assert "already installed" in install(r).stdout  # idempotent

    foreign = r.path / "githooks" / "pre-commit"
    foreign.write_text("#!/bin/sh\necho mine\n")
    proc = run_cli("install-hooks", cwd=r.path)
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert foreign.read_text() == "#!/bin/sh\necho mine\n"
    proc = install(r, "--force")
    assert "kumo-audit-backup" in proc.stdout
    assert (r.path / "githooks" / "pre-commit.kumo-audit-backup").read_text() == (
        "#!/bin/sh\necho mine\n"
    )
    assert "installed-by: kumo-audit" in foreign.read_text()


def test_shipped_scripts_match_the_installed_template() -> None:
    from auditor.commands.install_hooks import hook_script

    for kind in ("pre-commit", "commit-msg"):
        shipped = ROOT / "hooks" / kind
        assert shipped.read_text() == hook_script(kind)
        assert os.access(shipped, os.X_OK)


def test_shipped_script_runs_kumo_audit_from_path(repo: Repo, tmp_path: Path) -> None:
    """hooks/pre-commit copied by hand finds `kumo-audit` on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "kumo-audit"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m auditor "$@"\n')
    shim.chmod(0o755)
    hook = repo.path / ".git" / "hooks" / "pre-commit"
    hook.write_bytes((ROOT / "hooks" / "pre-commit").read_bytes())
    edit(repo, "policy/init.lua", OPEN_RELAY)
    repo.git("add", "-A")
    env = {**os.environ, **GIT_ENV, "PATH": f"{bindir}:{os.environ['PATH']}"}
    proc = subprocess.run(
        ["git", "commit", "-q", "-m", "x"], cwd=repo.path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1 and "S101" in proc.stderr
    env["PATH"] = "/usr/bin:/bin"  # no kumo-audit anywhere: refuse, and say how to bypass
    proc = subprocess.run(
        ["git", "commit", "-q", "-m", "x"], cwd=repo.path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1 and "not found" in proc.stderr and "--no-verify" in proc.stderr


def test_commit_msg_requires_a_ticket_for_restart_changes(repo: Repo) -> None:
    install(repo, "--commit-msg")
    edit(repo, "policy/init.lua", RESTART_CHANGE)
    repo.git("add", "-A")
    proc = commit(repo, message="move the logs")
    assert proc.returncode == 1 and "ticket" in proc.stderr and "restart" in proc.stderr
    proc = commit(repo, message="move the logs (OPS-42)")
    assert proc.returncode == 0, proc.stderr
    edit(repo, "policy/shaping.toml", EPOCH_CHANGE)  # epoch impact: no ticket needed
    repo.git("add", "-A")
    assert commit(repo, message="slower").returncode == 0


def test_commit_msg_requires_a_ticket_for_suppressions_and_uses_the_configured_pattern(
    repo: Repo,
) -> None:
    install(repo, "--commit-msg")
    relay = OPEN_RELAY[1]
    suppressed = f'-- kumo-audit: allow(S101) reason="lab box"\n  {relay}'
    repo.write({"kumo-audit.toml": 'ticket_pattern = "#[0-9]+"\n'})
    edit(repo, "policy/init.lua", (OPEN_RELAY[0], suppressed))
    repo.git("add", "-A")
    proc = commit(repo, message="lab relay OPS-1")  # not the configured pattern
    assert proc.returncode == 1 and "suppression" in proc.stderr, proc.stderr
    proc = commit(repo, message="lab relay, see #17")
    assert proc.returncode == 0, proc.stderr


def test_lint_reports_only_the_given_files(repo: Repo) -> None:
    edit(repo, "policy/init.lua", OPEN_RELAY)
    proc = run_cli("hook", "lint", "policy/util.lua", cwd=repo.path)
    assert proc.returncode == 0 and proc.stdout == ""
    proc = run_cli("hook", "lint", "policy/util.lua", "policy/init.lua", cwd=repo.path)
    assert proc.returncode == 1 and "policy/init.lua:" in proc.stdout and "S101" in proc.stdout
    assert run_cli("hook", "lint", cwd=repo.path).returncode == 0


def test_outside_a_repository_is_a_one_line_error(tmp_path: Path) -> None:
    proc = run_cli("hook", "pre-commit", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Git repository" in proc.stderr
