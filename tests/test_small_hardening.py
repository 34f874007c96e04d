"""Small but real: temporary files, doubled E102, terminal escapes, a BOM, auditing only what was
named, and submodules treated alike in every snapshot."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, audit, codes_at, run_cli, write_tree
from tests.gitrepo import GIT_ENV, Repo

KUMO = "local kumo = require 'kumo'\n"
SHAPING = (
    KUMO
    + "local shaping = require 'policy-extras.shaping'\n"
    + "kumo.on('get_egress_path_config', shaping:setup { '/opt/kumomta/etc/policy/shaping.toml' })\n"
)


CHECK = [sys.executable, "-m", "auditor", "check"]


def _small_files() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))


def test_failed_output_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    write_tree(policy, {"init.lua": KUMO + "x = 1\n" * 20})
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [*CHECK, str(policy), "--format", "json", "--output", str(out / "report.json")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=_small_files,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "report.json" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert list(out.iterdir()) == []


def test_output_under_a_file_names_the_real_problem(tmp_path: Path) -> None:
    """A file where the report's directory should be: "Not a directory", whether the file is the
    report's parent or further up, and nothing is created beside it."""
    from auditor.core.atomic import write_atomic
    from auditor.core.errors import UsageError

    blocker = tmp_path / "blocker"
    blocker.write_text("keep\n")
    for target in (blocker / "out.json", blocker / "a" / "b" / "out.json"):
        try:
            write_atomic(target, "{}")
        except UsageError as exc:
            assert os.strerror(errno.ENOTDIR) in str(exc) and str(target) in str(exc)
        else:
            raise AssertionError(f"{target} was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
    assert blocker.read_text() == "keep\n"


def test_unencodable_text_leaves_no_temporary_file(tmp_path: Path) -> None:
    from auditor.core.atomic import write_atomic

    write_atomic(tmp_path / "r.txt", "bad \udcff byte")
    assert [p.name for p in tmp_path.iterdir()] == ["r.txt"]
    assert (tmp_path / "r.txt").read_text() == "bad \\udcff byte"


def test_e102_once_per_file(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_tree(outside, {"mod.lua": "return {}\n", "shaping.toml": "[default]\n"})
    policy = tmp_path / "policy"
    write_tree(policy, {"init.lua": SHAPING + "local m = require 'mod'\n"})
    (policy / "mod.lua").symlink_to(outside / "mod.lua")
    (policy / "shaping.toml").symlink_to(outside / "shaping.toml")
    found = sorted((f.path, f.code) for f in audit(policy).findings if f.code == "E102")
    assert found == [("mod.lua", "E102"), ("shaping.toml", "E102")]


def test_e102_once_for_a_merge_conflict(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    repo.commit({"init.lua": KUMO + "local m = require 'mod'\n", "mod.lua": "return 1\n"})
    repo.git("checkout", "-q", "-b", "other")
    repo.commit({"mod.lua": "return 2\n"}, "other")
    repo.git("checkout", "-q", "main")
    repo.commit({"mod.lua": "return 3\n"}, "main side")
    repo.git("merge", "-q", "other", check=False)
    proc = run_cli("diff", "--staged", "--format", "json", cwd=repo.path)
    assert proc.returncode in (0, 1), proc.stderr
    e102 = [f for f in json.loads(proc.stdout)["findings"] if f["code"] == "E102"]
    assert [f["path"] for f in e102] == ["mod.lua"]


def test_terminal_escapes_from_data_keys_are_shown_escaped(tmp_path: Path) -> None:
    key = '"\\u001b[2J\\u001b]0;pwned\\u0007evil"'
    write_tree(
        tmp_path,
        {"init.lua": SHAPING, "shaping.toml": f'["example.com"]\n{key} = 1\nmax_rate = 2\n'},
    )
    proc = run_cli("check", str(tmp_path))
    assert proc.returncode in (0, 1), proc.stderr
    assert "evil" in proc.stdout  # the key is reported ...
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout  # ... but not as escapes
    assert "\\x1b" in proc.stdout


def test_terminal_escapes_in_hook_output(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    repo.commit(
        {
            "init.lua": SHAPING,
            "shaping.toml": '["example.com"]\nmax_deliveries_per_connection = 5\n',
        }
    )
    write_tree(repo.path, {"shaping.toml": '["example.com"]\n"\\u001b[31mx" = 1\n'})
    repo.git("add", "-A")
    proc = run_cli("hook", "pre-commit", cwd=repo.path)
    assert "\x1b" not in proc.stderr, proc.stderr


def test_byte_order_mark(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"init.lua": "\ufeff" + KUMO + "local m = require 'mod'\n", "mod.lua": "\ufeffreturn {}\n"},
    )
    result = audit(tmp_path)
    e101 = [f for f in result.findings if f.code == "E101"]
    assert [(f.path, f.line) for f in e101] == [("init.lua", 1)]
    assert "byte order mark" in e101[0].message
    assert set(result.context.model.modules) == {"init.lua", "mod.lua"}  # the rest is audited
    write_tree(tmp_path, {"init.lua": KUMO + "local m = require 'mod'\n"})
    assert codes_at(audit(tmp_path).findings, "E1") == []  # a module may keep its BOM


def test_check_a_named_file_audits_it_and_what_it_loads(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "sub/init.lua": KUMO + "local m = require 'mod'\n",
            "sub/mod.lua": "return {}\n",
            "sub/other.lua": "garbage (((\n",
            "sub/kumo-audit.toml": "",
        },
    )
    (tmp_path / "sub" / "link.lua").symlink_to("/etc/passwd")
    proc = run_cli("check", str(tmp_path / "sub" / "init.lua"), "--format", "json")
    assert proc.returncode == 0, proc.stdout
    data = json.loads(proc.stdout)
    assert data["findings"] == [] and data["summary"]["files"] == 2
    proc = run_cli("check", str(tmp_path / "sub"), "--format", "json")
    assert {f["code"] for f in json.loads(proc.stdout)["findings"]} >= {"E102"}


def test_check_dev_null_does_not_walk_dev() -> None:
    start = time.monotonic()
    proc = run_cli("check", "/dev/null", "--format", "json")
    assert time.monotonic() - start < 30
    assert proc.returncode == 1, proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    assert [(f["code"], f["path"]) for f in findings] == [("E102", "null")]


def test_submodules_are_not_audited_in_any_snapshot(tmp_path: Path) -> None:
    lib = Repo(tmp_path / "lib")
    lib.commit({"mod.lua": "return {}\n"}, "lib")
    repo = Repo(tmp_path / "policy")
    repo.commit({"init.lua": KUMO}, "initial")
    subprocess.run(
        ["git", "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib.path), "lib"],
        cwd=repo.path,
        env={**os.environ, **GIT_ENV},
        check=True,
        capture_output=True,
    )
    repo.commit({"init.lua": KUMO + "local m = require 'lib.mod'\n"}, "use lib")
    assert (repo.path / "lib" / "mod.lua").is_file()
    check = json.loads(run_cli("check", str(repo.path), "--format", "json").stdout)
    ci = json.loads(run_cli("ci", "--base", "HEAD~1", "--format", "json", cwd=repo.path).stdout)
    staged = json.loads(run_cli("diff", "--staged", "--format", "json", cwd=repo.path).stdout)
    for result in (check, ci, staged):
        assert [(f["code"], f["path"]) for f in result["findings"]] == [("E104", "init.lua")]
