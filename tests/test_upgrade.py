"""`kumo-audit upgrade`: fixture policies written for each kind of upgrade problem, the report formats,
the verdicts and exit codes, where --from comes from, and the runbook entry of --record."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from auditor.change.upgrade import breaking_changes
from auditor.kumo.versions import load_versions
from tests.conftest import ROOT, run_cli
from tests.gitrepo import Repo

FIXTURES = ROOT / "tests" / "fixtures" / "upgrade"


def upgrade(path: Path, *args: str, cwd: Path | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    proc = run_cli("upgrade", str(path), *args, "--format", "json", cwd=cwd)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def where(doc: dict) -> list[tuple[str, int, str, str]]:  # type: ignore[type-arg]
    return [(i["path"], i["line"], i["kind"], i["subject"]) for i in doc["items"]]


def test_renamed_function() -> None:
    code, doc = upgrade(FIXTURES / "renamed", "--from", "2025.10.06", "--to", "2025.12.02")
    assert code == 1 and doc["verdict"] == "needs-changes"
    assert where(doc) == [("init.lua", 13, "removed", "kumo.dmarc.verify")]
    item = doc["items"][0]
    assert item["column"] == 18 and item["replacement"] == "kumo.dmarc.check_msg"
    assert item["release"] == "2025.12.02-67ee9e96"
    assert [m["id"] for m in doc["manual_review"]] == ["http-forwarded-ignored"]
    # the release before: the function is still there, nothing to change
    code, doc = upgrade(FIXTURES / "renamed", "--from", "2025.10.06", "--to", "2025.10.06")
    assert code == 0 and doc["verdict"] == "safe" and doc["releases_crossed"] == []
    # further: the cache it tunes is renamed in 2026.03.04
    code, doc = upgrade(FIXTURES / "renamed", "--from", "2025.10.06", "--to", "2026.03.04")
    assert where(doc) == [
        ("init.lua", 9, "breaking", "kumo.set_lruttl_cache_capacity#1=rfc5321_rustls_config"),
        ("init.lua", 13, "removed", "kumo.dmarc.verify"),
    ]
    assert doc["items"][0]["severity"] == "change" and doc["items"][0]["column"] == 34


def test_changed_default() -> None:
    code, doc = upgrade(FIXTURES / "default", "--from", "2025.01.29", "--to", "2025.03.19")
    assert code == 0 and doc["verdict"] == "review"
    assert where(doc) == [
        ("init.lua", 5, "default", "kumo.start_esmtp_listener:data_processing_timeout")
    ]
    assert doc["items"][0]["severity"] == "review"
    assert doc["items"][0]["link"] == "https://docs.kumomta.com/changelog/2025.03.19-1d3f1f67/"
    # the policy that sets the value is not reported
    _code, doc = upgrade(FIXTURES / "renamed", "--from", "2025.01.29", "--to", "2025.03.19")
    assert all(i["kind"] != "default" for i in doc["items"])
    # review fails only on request
    proc = run_cli(
        "upgrade",
        str(FIXTURES / "default"),
        "--from",
        "2025.01.29",
        "--to",
        "2025.03.19",
        "--fail-on",
        "review",
    )
    assert proc.returncode == 1


def test_breaking_changes() -> None:
    code, doc = upgrade(FIXTURES / "breaking", "--from", "2024.09.02", "--to", "2026.04.09")
    assert code == 1 and doc["verdict"] == "needs-changes"
    assert where(doc) == [
        ("init.lua", 12, "default", "kumo.start_esmtp_listener:data_processing_timeout"),
        ("init.lua", 16, "member-removed", "shaping:get_queue_config"),
        ("init.lua", 16, "breaking", "shaping:get_queue_config"),
        ("shaping.toml", 4, "breaking", "shaping:automation"),
        ("shaping.toml", 4, "breaking", "shaping:automation"),
    ]
    by_id = {i["change_id"]: i for i in doc["items"] if i["change_id"]}
    assert set(by_id) == {
        "data-processing-timeout",
        "shaper-deprecated-fields-removed",
        "tsa-skips-internal-responses",
        "unplumbed-failure-summary",
    }
    assert by_id["shaper-deprecated-fields-removed"]["severity"] == "change"
    assert doc["items"][1]["column"] == 29
    assert by_id["tsa-skips-internal-responses"]["severity"] == "review"
    assert doc["counts"]["manual"] == len(doc["manual_review"]) >= 5


def test_clean_policy() -> None:
    code, doc = upgrade(FIXTURES / "clean", "--from", "2026.04.09", "--to", "2026.06.23")
    assert code == 0 and doc["verdict"] == "safe"
    assert doc["items"] == [] and doc["manual_review"] == []
    assert doc["releases_crossed"] == ["2026.05.12-a6845223", "2026.06.23-f3af1cd0"]


def test_text_markdown_and_html_reports(tmp_path: Path) -> None:
    args = ("--from", "2025.10.06", "--to", "2025.12.02")
    proc = run_cli("upgrade", str(FIXTURES / "renamed"), *args)
    assert proc.returncode == 1
    assert "needs-changes" in proc.stdout.splitlines()[0]
    assert "init.lua:13:18  kumo.dmarc.verify is removed in 2025.12.02-67ee9e96" in proc.stdout
    assert "fix: kumo.dmarc.check_msg" in proc.stdout
    html = tmp_path / "report.html"
    proc = run_cli(
        "upgrade",
        str(FIXTURES / "renamed"),
        *args,
        "--format",
        "markdown",
        "--format",
        "html",
        "--output",
        str(html),
    )
    assert proc.returncode == 1
    assert proc.stdout.startswith("# KumoMTA upgrade 2025.10.06-5ec871ab -> 2025.12.02-67ee9e96")
    assert "| `init.lua:13` | kumo.dmarc.verify is removed" in proc.stdout
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "badge v-needs-changes" in page
    assert "<code>init.lua:13:18</code>" in page and "--fg:" in page  # runbook report style inlined


def test_bad_releases_are_usage_errors() -> None:
    proc = run_cli("upgrade", str(FIXTURES / "clean"), "--from", "2026.06.23", "--to", "2025.01.29")
    assert proc.returncode == 2 and "older than --from" in proc.stderr
    proc = run_cli("upgrade", str(FIXTURES / "clean"), "--from", "nope", "--to", "main")
    assert proc.returncode == 2 and "unknown KumoMTA release 'nope'" in proc.stderr
    proc = run_cli("upgrade", str(FIXTURES / "clean"), "--to", "main")
    assert proc.returncode == 2 and "--from is required" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_from_kumod_version(tmp_path: Path) -> None:
    kumod = tmp_path / "kumod"
    kumod.write_text("#!/bin/sh\necho 'kumod 2025.10.06-5ec871ab'\n")
    kumod.chmod(kumod.stat().st_mode | stat.S_IEXEC)
    code, doc = upgrade(FIXTURES / "renamed", "--kumod", str(kumod), "--to", "2025.12.02")
    assert code == 1 and doc["from_release"] == "2025.10.06-5ec871ab"
    assert doc["from_origin"] == f"{kumod} --version"
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    proc = run_cli("upgrade", str(FIXTURES / "renamed"), "--kumod", str(broken), "--to", "main")
    assert proc.returncode == 2 and "--version failed (exit 3)" in proc.stderr


def test_record_writes_an_entry_and_sets_the_next_from(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "policy")
    shutil.copytree(FIXTURES / "breaking", repo.path, dirs_exist_ok=True)
    repo.commit(message="policy")
    proc = run_cli(
        "upgrade",
        ".",
        "--from",
        "2025.01.29",
        "--to",
        "2025.03.19",
        "--record",
        "--format",
        "json",
        cwd=repo.path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "recorded runbook entry" in proc.stderr
    assert repo.status() == ""  # the entry lives on the runbook branch, the checkout is untouched
    proc = run_cli(
        "runbook", "history", "--decision", "upgrade-evaluated", "--format", "json", cwd=repo.path
    )
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    entries = entries.get("entries", entries) if isinstance(entries, dict) else entries
    assert len(entries) == 1
    entry = entries[0]
    assert entry["decision"] == "upgrade-evaluated"
    assert entry["summary"].startswith(
        "KumoMTA 2025.01.29-833f82a8 -> 2025.03.19-1d3f1f67: needs-changes"
    )
    evidence = entry["evidence"]
    assert evidence["kumomta_release"] == "2025.01.29-833f82a8"
    upgrade_ev = evidence["upgrade"]
    assert upgrade_ev["verdict"] == "needs-changes"
    assert ("init.lua", 16, "member-removed") in {
        (i["path"], i["line"], i["kind"]) for i in upgrade_ev["items"]
    }
    assert upgrade_ev["manual_review"] == ["mx-timeout-default"]
    assert any(link["url"].endswith("2025.03.19-1d3f1f67/") for link in entry["links"])
    assert run_cli("runbook", "verify", cwd=repo.path).returncode == 0
    # the next evaluation starts from the release the runbook records
    code, doc = upgrade(repo.path, "--to", "2025.03.19")
    assert code == 1
    assert doc["from_release"] == "2025.01.29-833f82a8" and doc["from_origin"] == "runbook"


# ----- the breaking-change records ----------------------------------------------------------------


def test_breaking_change_records() -> None:
    records = breaking_changes()
    table = load_versions()
    assert len(records) == 31
    assert len({r.id for r in records}) == len(records)
    manual = [r for r in records if r.manual]
    assert len(manual) == 9 and len(records) - len(manual) == 22
    for r in records:
        assert r.release in table.releases
        assert r.link == f"https://docs.kumomta.com/changelog/{r.release}/"
        assert "\n" not in r.summary and len(r.summary) < 200
        for spec in r.match.get("uses", ()):
            assert spec in table.functions, spec
        for kind in ("params", "unset", "sets"):
            for spec in r.match.get(kind, ()):
                fn, _, param = spec.partition(":")
                assert param.partition("=")[0] in table.functions[fn].get("params", {}), spec
        for spec in r.match.get("events", ()):
            assert spec in table.events, spec
        for spec in r.match.get("members", ()):
            key, _, member = spec.partition(":")
            assert member in table.helpers[key]["members"], spec


@pytest.mark.parametrize("name", ["renamed", "default", "breaking", "clean"])
def test_fixture_policies_load_cleanly_on_their_old_release(name: str) -> None:
    """Each fixture is a working policy on the release it upgrades from (no E1xx/E2xx findings)."""
    start = {
        "renamed": "2025.10.06",
        "default": "2025.01.29",
        "breaking": "2024.09.02",
        "clean": "2026.04.09",
    }[name]
    proc = run_cli("check", str(FIXTURES / name), "--kumomta-release", start, "--format", "json")
    doc = json.loads(proc.stdout)
    assert [f["code"] for f in doc["findings"] if f["code"][0] == "E"] == []


def test_readme_example_is_current() -> None:
    """The report shown in README's "Evaluating an upgrade" is what the breaking fixture produces."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("$ kumo-audit upgrade policy --from 2024.09.02 --to 2025.05.06\n", 1)[1]
    shown = [line for line in block.split("```", 1)[0].splitlines() if line.strip() != "..."]
    proc = run_cli(
        "upgrade", str(FIXTURES / "breaking"), "--from", "2024.09.02", "--to", "2025.05.06"
    )
    assert proc.returncode == 1
    actual = proc.stdout.splitlines()
    assert len(shown) > 15
    assert all(line in actual for line in shown), [x for x in shown if x not in actual]
