"""Finding fingerprints are a contract: pin them against a committed golden file.

A fingerprint is derived from a finding's code, file and semantic key (`fingerprint_of` in
`auditor/core/findings.py`, the `key=` each rule passes), never from its line. It reaches users as
`fingerprint` in JSON output, as SARIF `partialFingerprints` (GitHub code scanning matches alerts on
it), and in baselines and the runbook's evidence. Rewording a rule's key therefore silently turns every
stored alert of that rule into a new one. This test audits a fixture corpus that makes (nearly) every
rule fire and compares (code, path, line, column, key, fingerprint) of every finding with
`tests/fixtures/fingerprints/golden.json`.

The corpus (`tests/fixtures/fingerprints/`):
- `snapshots/<name>/`: policy trees audited as `kumo-audit check` would (their own `kumo-audit.toml`
  included), one per rule family: `load` (E1xx), `api` (E2xx), `data` (E3xx, E4xx, D1xx), `reload`
  (R1xx), `security` (S1xx), `suppress` (X00x).
- `change/base/` and `change/head/`: two states committed to a real Git repository in a temporary
  directory and audited as a change (C1xx, introduced and resolved findings).

If a fingerprint change is intended (a new rule, a new fixture, a deliberate key change that users
are told about), regenerate the golden file and review its diff:

    KUMO_AUDIT_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_fingerprint_stability.py

Without that variable the golden file is only read, never written.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from auditor.change import audit_change
from auditor.pipeline.api import AuditOptions, audit
from auditor.source.git_snapshot import open_snapshot
from auditor.source.snapshot import FsSnapshot
from tests.conftest import ROOT
from tests.gitrepo import Repo

CORPUS = Path(__file__).parent / "fixtures" / "fingerprints"
GOLDEN = CORPUS / "golden.json"
UPDATE_ENV = "KUMO_AUDIT_UPDATE_GOLDEN"
TODAY = date(2026, 12, 1)  # suppressions expire against a fixed day (X002)
SNAPSHOTS = ("load", "api", "data", "reload", "security", "suppress")
FIELDS = ("code", "path", "line", "column", "key", "fingerprint")

MIN_CODES = 51
"""Distinct codes the corpus makes fire: every code in the catalog (C101-C107, D101-D104, E101-E105,
E201-E207, E301-E303, E401-E404, R101-R108, S101-S110, X001-X003). Raise it when the corpus grows;
never lower it to make the test pass."""

Row = dict[str, Any]


def rows(findings: Any) -> list[Row]:
    out = [
        {
            "code": f.code,
            "path": f.path,
            "line": f.span.line,
            "column": f.span.column,
            "key": f.key,
            "fingerprint": f.fingerprint,
        }
        for f in findings
    ]
    return sorted(out, key=lambda r: (r["path"], r["line"], r["column"], r["code"], r["key"]))


def audit_snapshot_tree(name: str) -> list[Row]:
    result = audit(FsSnapshot(CORPUS / "snapshots" / name), AuditOptions(today=TODAY))
    return rows(result.findings)


def _replace_worktree(repo: Repo, state: Path) -> None:
    for child in repo.path.iterdir():
        if child.name == ".git":
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    # copyfile, not copy2: fresh contents, never stat data Git could take as unchanged
    shutil.copytree(state, repo.path, dirs_exist_ok=True, copy_function=shutil.copyfile)


def audit_change_pair(tmp_path: Path) -> dict[str, list[Row]]:
    repo = Repo(tmp_path / "repo")
    for state in ("base", "head"):
        _replace_worktree(repo, CORPUS / "change" / state)
        repo.git("rm", "-r", "-q", "--cached", "--ignore-unmatch", ".")  # re-hash every file
        repo.commit(None, f"{state} state")
    with open_snapshot(repo.path, "HEAD~1") as base, open_snapshot(repo.path, "HEAD") as head:
        result = audit_change(base, head, AuditOptions(today=TODAY))
        return {
            "change/findings": rows(result.findings),
            "change/introduced": rows(result.introduced),
            "change/resolved": rows(result.resolved),
        }


def collect(tmp_path: Path) -> dict[str, list[Row]]:
    groups = {f"snapshot/{name}": audit_snapshot_tree(name) for name in SNAPSHOTS}
    groups.update(audit_change_pair(tmp_path))
    return groups


def codes_of(groups: dict[str, list[Row]]) -> set[str]:
    return {row["code"] for group in groups.values() for row in group}


# -- the readable diff -----------------------------------------------------------------------------


def _where(row: Row) -> str:
    return f"{row['code']} {row['path']}:{row['line']}:{row['column']}"


def _whole(row: Row) -> tuple[Any, ...]:
    return tuple(row[k] for k in FIELDS)


def _same_key(a: Row, b: Row) -> bool:
    return (a["code"], a["path"], a["key"]) == (b["code"], b["path"], b["key"])


def _same_place(a: Row, b: Row) -> bool:
    return _where(a) == _where(b)


def describe_group(name: str, expected: list[Row], actual: list[Row]) -> list[str]:
    """What changed in one group, finding by finding: keys and fingerprints that changed at the
    same place, findings that moved with the same key, findings that are gone or new."""
    actual_set = {_whole(r) for r in actual}
    expected_set = {_whole(r) for r in expected}
    gone = [r for r in expected if _whole(r) not in actual_set]
    new = [r for r in actual if _whole(r) not in expected_set]
    lines: list[str] = []

    def pair(match: Any) -> list[tuple[Row, Row]]:
        pairs = []
        for old in list(gone):
            found = next((n for n in new if match(old, n)), None)
            if found is not None:
                gone.remove(old)
                new.remove(found)
                pairs.append((old, found))
        return pairs

    for old, cur in pair(_same_key):
        if old["fingerprint"] == cur["fingerprint"]:
            lines.append(
                f"  moved (fingerprint kept): {_where(old)} -> line {cur['line']}, "
                f"column {cur['column']}  key {old['key']!r}"
            )
        else:
            lines.append(
                f"  FINGERPRINT CHANGED, same key: {_where(cur)}  key {cur['key']!r}  "
                f"{old['fingerprint']} -> {cur['fingerprint']}"
            )
    for old, cur in pair(_same_place):
        lines.append(
            f"  KEY CHANGED: {_where(cur)}\n      was {old['key']!r} ({old['fingerprint']})\n"
            f"      now {cur['key']!r} ({cur['fingerprint']})"
        )
    lines += [f"  gone: {_where(r)}  key {r['key']!r} ({r['fingerprint']})" for r in gone]
    lines += [f"  new:  {_where(r)}  key {r['key']!r} ({r['fingerprint']})" for r in new]
    return [f"{name}:", *lines] if lines else []


def describe(expected: dict[str, list[Row]], actual: dict[str, list[Row]]) -> str:
    lines: list[str] = []
    changed_codes: set[str] = set()
    for name in sorted(set(expected) | set(actual)):
        old, cur = expected.get(name, []), actual.get(name, [])
        if old != cur:
            lines += describe_group(name, old, cur)
            changed_codes |= {r["code"] for r in old if r not in cur}
            changed_codes |= {r["code"] for r in cur if r not in old}
    head = (
        f"findings differ from {GOLDEN.relative_to(ROOT)} "
        f"(codes affected: {', '.join(sorted(changed_codes)) or 'none'}).\n"
        "A changed key or fingerprint makes every stored alert, baseline entry and suppression "
        "of that rule look new. If the change is intended, regenerate and review the diff:\n"
        f"    {UPDATE_ENV}=1 .venv/bin/python -m pytest tests/test_fingerprint_stability.py\n"
    )
    return head + "\n".join(lines)


# -- the tests -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def actual(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Row]]:
    return collect(tmp_path_factory.mktemp("fingerprints"))


def test_fingerprints_match_the_golden_file(actual: dict[str, list[Row]]) -> None:
    if os.environ.get(UPDATE_ENV) == "1":
        text = json.dumps({"groups": actual}, indent=2, ensure_ascii=False, sort_keys=True)
        GOLDEN.write_text(text + "\n", encoding="utf-8")
    assert GOLDEN.is_file(), f"no golden file; create it with {UPDATE_ENV}=1"
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))["groups"]
    if actual != expected:
        pytest.fail(describe(expected, actual), pytrace=False)


def test_golden_file_covers_the_catalog() -> None:
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))["groups"]
    codes = codes_of(expected)
    assert len(codes) >= MIN_CODES, (
        f"the golden file covers {len(codes)} distinct codes, fewer than {MIN_CODES}: "
        f"the corpus shrank ({sorted(codes)})"
    )
    assert set(expected) == {f"snapshot/{n}" for n in SNAPSHOTS} | {
        "change/findings",
        "change/introduced",
        "change/resolved",
    }
    assert all(expected.values()), [name for name, group in expected.items() if not group]


def test_golden_fingerprints_are_distinct_within_each_state() -> None:
    """Each finding stays addressable: no two findings of one audited state share a fingerprint."""
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))["groups"]
    for name, group in expected.items():
        prints = [row["fingerprint"] for row in group]
        assert len(prints) == len(set(prints)), name


def test_the_diff_names_changed_keys_moves_and_new_findings() -> None:
    def row(code: str, line: int, key: str, fingerprint: str) -> Row:
        return {"code": code, "path": "init.lua", "line": line, "column": 1, "key": key,
                "fingerprint": fingerprint}  # fmt: skip

    expected = {"g": [row("R103", 1, "global a file", "f1"), row("R101", 2, "x", "f2"),
                      row("S109", 3, "os.exit", "f3")]}  # fmt: skip
    actual = {"g": [row("R103", 1, "global-var a file", "f9"), row("R101", 5, "x", "f2"),
                    row("E205", 7, "event y", "f7")]}  # fmt: skip
    text = describe(expected, actual)
    assert "(codes affected: E205, R101, R103, S109)" in text
    assert "KEY CHANGED: R103 init.lua:1:1\n      was 'global a file' (f1)" in text
    assert "now 'global-var a file' (f9)" in text
    assert "moved (fingerprint kept): R101 init.lua:2:1 -> line 5, column 1" in text
    assert "gone: S109 init.lua:3:1  key 'os.exit' (f3)" in text
    assert "new:  E205 init.lua:7:1  key 'event y' (f7)" in text
    assert UPDATE_ENV in text
