"""Change audits on real Git repositories: reload impact per element, change rules, introduced/resolved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.gitrepo import Repo

INIT = """
local kumo = require 'kumo'
local shaping = require 'policy-extras.shaping'
local queue_module = require 'policy-extras.queue'
local queue_helper = queue_module:setup_with_options {
  file_names = { '/opt/kumomta/etc/policy/queues.toml' },
  invalidate_with_epoch = true,
}
kumo.on('get_egress_path_config', shaping:setup { '/opt/kumomta/etc/policy/shaping.toml' })

kumo.on('init', function()
  kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data', kind = 'RocksDB' }
  kumo.define_spool { name = 'meta', path = '/var/spool/kumomta/meta', kind = 'RocksDB' }
  kumo.configure_local_logs { log_dir = '/var/log/kumomta' }
  kumo.start_esmtp_listener { listen = '0.0.0.0:25' }
end)

kumo.on('smtp_server_message_received', function(msg)
  queue_helper:apply(msg)
end)
"""

SHAPING = """
["default"]
max_message_rate = "100/s"

["example.com"]
max_message_rate = "10/s"
"""

QUEUES = """
[queue."example.com"]
max_age = "2 days"
"""

POLICY = {"policy/init.lua": INIT, "policy/shaping.toml": SHAPING, "policy/queues.toml": QUEUES}


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "repo")
    r.commit(POLICY, "initial policy")
    return r


def diff(repo: Repo, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    proc = run_cli("diff", *args, "--policy", str(repo.path), "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def elements(doc: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(e["impact"], e["element"]) for e in doc["reload"]["elements"]]


def edit(repo: Repo, path: str, old: str, new: str) -> None:
    file = repo.path / path
    text = file.read_text()
    assert old in text, old
    file.write_text(text.replace(old, new))


def test_comment_only_change_is_none(repo: Repo) -> None:
    edit(
        repo,
        "policy/init.lua",
        "kumo.on('init', function()",
        "-- start-up\nkumo.on('init',   function()",
    )
    status, doc = diff(repo, "HEAD")
    assert status == 0
    assert doc["reload"]["impact"] == "none"
    assert doc["introduced"] == []


def test_realtime_handler_edit_is_epoch(repo: Repo) -> None:
    edit(
        repo,
        "policy/init.lua",
        "queue_helper:apply(msg)",
        "queue_helper:apply(msg)\n  msg:set_meta('x', 1)",
    )
    status, doc = diff(repo, "HEAD")
    assert status == 0
    assert doc["reload"]["impact"] == "epoch"
    assert elements(doc) == [("epoch", "handler smtp_server_message_received")]


def test_init_edit_is_restart_with_c103(repo: Repo) -> None:
    edit(
        repo,
        "policy/init.lua",
        "listen = '0.0.0.0:25'",
        "listen = '0.0.0.0:25', max_connections = 5000",
    )
    status, doc = diff(repo, "HEAD")
    assert status == 0  # a warning: allowed, but reported
    assert doc["reload"]["impact"] == "restart"
    assert [(f["code"], f["line"]) for f in doc["introduced"]] == [("C103", 10)]
    assert "needs a kumod restart" in doc["reload"]["elements"][0]["reason"]


def test_spool_path_change_is_c101_and_exit_1(repo: Repo) -> None:
    edit(repo, "policy/init.lua", "/var/spool/kumomta/data", "/srv/spool/data")
    status, doc = diff(repo, "HEAD")
    assert status == 1
    codes = [(f["code"], f["line"], f["column"]) for f in doc["introduced"]]
    assert ("C101", 11, 45) in codes


def test_data_file_edit_covered_by_monitor_globs_is_epoch(repo: Repo) -> None:
    edit(repo, "policy/shaping.toml", '"10/s"', '"12/s"')
    status, doc = diff(repo, "HEAD")
    assert status == 0
    assert doc["reload"]["impact"] == "epoch"
    (element,) = doc["reload"]["elements"]
    assert element["path"] == "policy/shaping.toml" and element["line"] == 5
    assert '"10/s" -> "12/s"' in element["element"]


def test_data_file_not_covered_by_monitor_globs_is_unmonitored(repo: Repo) -> None:
    edit(
        repo,
        "policy/init.lua",
        "kumo.define_spool { name = 'meta'",
        "kumo.set_config_monitor_globs { '/opt/kumomta/etc/policy/*.lua' }\n  kumo.define_spool { name = 'meta'",
    )
    repo.commit(message="watch only Lua")
    edit(repo, "policy/queues.toml", '"2 days"', '"3 days"')
    status, doc = diff(repo, "HEAD")
    assert status == 0
    assert doc["reload"]["impact"] == "unmonitored"


def test_rate_raised_five_fold_is_c104(repo: Repo) -> None:
    edit(repo, "policy/shaping.toml", '"100/s"', '"500/s"')
    status, doc = diff(repo, "HEAD")
    assert status == 0
    assert [(f["code"], f["path"], f["line"], f["column"]) for f in doc["introduced"]] == [
        ("C104", "policy/shaping.toml", 2, 20)
    ]


def test_removed_shaping_domain_still_referenced_is_c105(repo: Repo) -> None:
    edit(repo, "policy/shaping.toml", '\n["example.com"]\nmax_message_rate = "10/s"\n', "\n")
    status, doc = diff(repo, "HEAD")
    assert status == 0
    found = [f for f in doc["introduced"] if f["code"] == "C105"]
    assert len(found) == 1
    assert "example.com" in found[0]["message"] and "policy/queues.toml" in found[0]["message"]


def test_new_syntax_error_is_blocked_and_introduced(repo: Repo) -> None:
    edit(repo, "policy/init.lua", "queue_helper:apply(msg)\n", "queue_helper:apply(msg\n")
    status, doc = diff(repo, "HEAD")
    assert status == 1
    assert doc["reload"]["impact"] == "blocked"
    assert [f["code"] for f in doc["introduced"]] == ["E101"]


def test_fixed_finding_is_reported_as_resolved(repo: Repo) -> None:
    repo.commit(
        {
            "policy/extra.lua": "local x = require 'missing_module'\nreturn {}\n",
            "policy/init.lua": INIT + "local extra = require 'extra'\n",
        },
        "add a broken module",
    )
    repo.write({"policy/extra.lua": "return {}\n"})
    status, doc = diff(repo, "HEAD")
    assert status == 0
    assert [f["code"] for f in doc["resolved"]] == ["E104"]
    assert doc["introduced"] == []


def test_pre_existing_finding_is_not_new(repo: Repo) -> None:
    repo.commit({"policy/init.lua": INIT + "local broken = require 'nowhere'\n"}, "a known problem")
    repo.write(
        {"policy/init.lua": "-- moved down\n\n" + INIT + "local broken = require 'nowhere'\n"}
    )
    status, doc = diff(repo, "HEAD")
    assert status == 0
    assert doc["introduced"] == []
    assert [f["code"] for f in doc["findings"]] == ["E104"]


def test_staged_audits_the_index_not_the_working_tree(repo: Repo) -> None:
    edit(repo, "policy/init.lua", "/var/spool/kumomta/data", "/srv/spool/data")
    status, _ = diff(repo, "--staged")
    assert status == 0  # nothing staged yet
    repo.git("add", "policy/init.lua")
    edit(repo, "policy/init.lua", "/srv/spool/data", "/var/spool/kumomta/data")  # unstaged revert
    status, doc = diff(repo, "--staged")
    assert status == 1
    assert "C101" in [f["code"] for f in doc["introduced"]]


def test_renamed_data_file_and_unreferenced_edit(repo: Repo) -> None:
    repo.git("mv", "policy/queues.toml", "policy/queues-old.toml")
    edit(
        repo,
        "policy/init.lua",
        "/opt/kumomta/etc/policy/queues.toml",
        "/opt/kumomta/etc/policy/queues-new.toml",
    )
    repo.write({"policy/queues-new.toml": QUEUES})
    repo.commit(message="rename queues data")
    edit(repo, "policy/queues-old.toml", '"2 days"', '"4 days"')
    status, doc = diff(repo, "HEAD")
    assert status == 0
    assert [(f["code"], f["path"]) for f in doc["introduced"]] == [
        ("C106", "policy/queues-old.toml")
    ]


def test_deleted_init_lua_is_a_clear_error(repo: Repo) -> None:
    (repo.path / "policy" / "init.lua").unlink()
    proc = run_cli("diff", "HEAD", "--policy", str(repo.path))
    assert proc.returncode == 2
    assert "no init.lua found" in proc.stderr and "Traceback" not in proc.stderr


def test_binary_file_in_the_change(repo: Repo) -> None:
    repo.write({"policy/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00binary"})
    status, doc = diff(repo, "HEAD")
    assert status == 0
    assert doc["introduced"] == []


def test_merge_commit_and_detached_head(repo: Repo) -> None:
    base = repo.git("rev-parse", "HEAD")
    repo.git("checkout", "-q", "-b", "feature")
    edit(repo, "policy/shaping.toml", '"10/s"', '"15/s"')
    repo.commit(message="feature")
    repo.git("checkout", "-q", "main")
    edit(repo, "policy/queues.toml", '"2 days"', '"3 days"')
    repo.commit(message="main work")
    repo.git("merge", "-q", "--no-edit", "feature")
    repo.git("checkout", "-q", "--detach", "HEAD")
    proc = run_cli(
        "ci", "--base", base, "--policy", str(repo.path), "--format", "json", "--each-commit"
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert sorted(doc["change"]["changed_files"]) == ["policy/queues.toml", "policy/shaping.toml"]
    assert proc.stderr.count("\n") == 3  # one line per commit


def test_shallow_clone_without_the_base_is_one_line_error(repo: Repo, tmp_path: Path) -> None:
    repo.commit({"policy/queues.toml": QUEUES + "\n"}, "second")
    clone = tmp_path / "shallow"
    Repo(tmp_path, init=False).git("clone", "-q", "--depth", "1", f"file://{repo.path}", str(clone))
    proc = run_cli("ci", "--base", "HEAD~1", "--policy", str(clone))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_empty_repository_is_one_line_error(tmp_path: Path) -> None:
    empty = Repo(tmp_path / "empty")
    proc = run_cli("diff", "--staged", "--policy", str(empty.path))
    assert proc.returncode == 2
    assert "no init.lua found" in proc.stderr


def test_first_commit_staged_against_nothing(tmp_path: Path) -> None:
    fresh = Repo(tmp_path / "fresh")
    fresh.write(POLICY)
    fresh.git("add", "-A")
    status, doc = diff(fresh, "--staged")
    assert status == 0
    assert doc["reload"]["impact"] == "restart"  # a whole new policy: init is new


def test_auditing_never_touches_the_working_tree(repo: Repo) -> None:
    edit(repo, "policy/shaping.toml", '"10/s"', '"12/s"')
    before = repo.status()
    diff(repo, "HEAD")
    diff(repo, "--staged")
    assert repo.status() == before


def test_baseline_hides_accepted_findings(repo: Repo, tmp_path: Path) -> None:
    repo.commit({"policy/init.lua": INIT + "local broken = require 'nowhere'\n"}, "known")
    baseline = tmp_path / "baseline.json"
    proc = run_cli(
        "diff", "HEAD~1", "HEAD", "--policy", str(repo.path), "--write-baseline", str(baseline)
    )
    assert proc.returncode == 1
    proc = run_cli(
        "diff", "HEAD~1", "HEAD", "--policy", str(repo.path), "--baseline", str(baseline)
    )
    assert proc.returncode == 0, proc.stdout


def test_get_queue_config_edit_is_epoch(repo: Repo) -> None:
    repo.commit(
        {
            "policy/init.lua": INIT.replace(
                "local queue_helper = queue_module:setup_with_options {",
                "kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)\n"
                "  if domain == 'bulk.example' then\n"
                "    return kumo.make_queue_config { max_age = '2 days' }\n"
                "  end\n"
                "end)\n"
                "local queue_helper = queue_module:setup_with_options {",
            )
        },
        "own get_queue_config before the queue helper",
    )
    edit(repo, "policy/init.lua", "max_age = '2 days' }", "max_age = '3 days' }")
    status, doc = diff(repo, "HEAD")
    assert status == 0
    assert doc["reload"]["impact"] == "epoch"
    assert elements(doc) == [("epoch", "handler get_queue_config")]


def test_change_set_shows_effective_shaping_of_changed_domains(repo: Repo) -> None:
    edit(repo, "policy/shaping.toml", '"10/s"', '"30/s"')
    _, doc = diff(repo, "HEAD")
    (effect,) = doc["change"]["shaping"]
    assert effect["domain"] == "example.com" and effect["source"] is None
    assert effect["changes"] == [
        {
            "key": "max_message_rate",
            "before": "10/s",
            "after": "30/s",
            "origin": "policy/shaping.toml:5",
        }
    ]
