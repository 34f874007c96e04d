"""Auditing against one KumoMTA release: `check --kumomta-release`, `kumomta_release` in the
configuration, and where the audited and newest releases are shown."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import audit, cli_json, codes_at, run_cli, write_tree

OLD_API = """
kumo.on('init', function()
  kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data' }
  kumo.define_spool { name = 'meta', path = '/var/spool/kumomta/meta' }
  kumo.define_egress_source { name = 'ip-1', source_address = '10.0.0.1' }
end)
"""

NEW_API = """
kumo.on('get_egress_source', function(name)
  return kumo.make_egress_source { name = name, source_address = '10.0.0.1' }
end)
"""


def _e204(root: Path, **kwargs) -> list[tuple[str, int, int]]:  # type: ignore[no-untyped-def]
    return codes_at(audit(root, **kwargs).findings, "E204")


def test_newest_release_by_default_and_an_older_one_on_request(tmp_path: Path) -> None:
    from auditor.config.settings import DEFAULT

    old = write_tree(tmp_path / "old", {"init.lua": OLD_API})
    new = write_tree(tmp_path / "new", {"init.lua": NEW_API})
    assert [c for c, *_ in _e204(old)] == ["E204"]  # define_egress_source left in 2023.06.22
    assert _e204(new) == []
    older = DEFAULT.replace(kumomta_release="2023.05.10")
    assert _e204(old, config=older) == []
    assert _e204(new, config=older) == [("E204", 2, 10)]  # make_egress_source not there yet


def test_check_option_and_configuration(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"init.lua": NEW_API})
    code, doc = cli_json("check", str(root))
    assert code == 0 and doc["tool"]["kumomta_release"] == "main"
    code, doc = cli_json("check", str(root), "--kumomta-release", "2023.05.10")
    # neither the event nor the function exists yet in that release
    assert code == 1 and sorted(f["code"] for f in doc["findings"]) == ["E204", "E205"]
    assert doc["tool"]["kumomta_release"] == "2023.05.10-e88ad036"
    (root / "kumo-audit.toml").write_text('kumomta_release = "2023.05.10-e88ad036"\n')
    code, doc = cli_json("check", str(root))
    assert code == 1 and doc["tool"]["kumomta_release"] == "2023.05.10-e88ad036"
    # the command line wins over the configuration
    code, doc = cli_json("check", str(root), "--kumomta-release", "2025.03.19")
    assert code == 0 and doc["findings"] == []


def test_unknown_release_is_a_usage_error(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"init.lua": NEW_API})
    proc = run_cli("check", str(root), "--kumomta-release", "1.2.3")
    assert proc.returncode == 2
    assert "unknown KumoMTA release '1.2.3'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_rules_version_and_config_show(tmp_path: Path) -> None:
    proc = run_cli("rules", "--version")
    assert proc.returncode == 0
    assert "default release: main" in proc.stdout
    assert "newest tag 2026.06.23-f3af1cd0" in proc.stdout
    proc = run_cli("rules", "--version", "--format", "json")
    info = json.loads(proc.stdout)["kumomta"]
    assert info["newest_release"] == "main" and info["releases"] >= 27
    root = write_tree(
        tmp_path, {"init.lua": NEW_API, "kumo-audit.toml": 'kumomta_release = "2025.03.19"\n'}
    )
    proc = run_cli("config", "--show", str(root))
    assert proc.returncode == 0
    assert 'kumomta_release = "2025.03.19"' in proc.stdout
    assert (
        "# KumoMTA release audited: 2025.03.19-1d3f1f67 (newest in the API table: main)"
        in proc.stdout
    )
    proc = run_cli("config", "--show", str(root), "--format", "json")
    assert json.loads(proc.stdout)["kumomta_release"] == {
        "audited": "2025.03.19-1d3f1f67",
        "newest": "main",
    }
