"""`kumod --validate` and absolute paths into the live tree: in a private mount namespace the live path
shows the candidate; without one, the decision says the validation saw the live files.

The gate runs in process on a real layout, with a real executable standing in for kumod that
prints what it read at the absolute paths the policy names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditor.core.errors import AuditError
from auditor.daemon.config import parse
from auditor.daemon.gate import Gate, probe_isolation
from auditor.daemon.layout import Layout, init_layout
from auditor.daemon.sources import Candidate
from auditor.source.snapshot import FsSnapshot
from tests.daemon_support import SAFE_SHAPING, policy_files

FAKE_KUMOD = """#!/bin/sh
# stands in for kumod --validate: reads each file the policy names under the live path
policy=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--policy" ]; then policy="$2"; fi
  shift
done
for path in $(grep -o "{live}/[a-z_]*[.]toml" "$policy" | sort -u); do
  echo "$path: $(head -n 2 "$path" | tr '\\n' ' ')" >> "{log}"
done
if grep -q "connection_limit = 666" "{live}/shaping.toml"; then echo "bad shaping"; exit 1; fi
exit 0
"""


def setup(tmp_path: Path, isolation: str) -> tuple[Gate, Path, Path, Path]:
    live = tmp_path / "etc" / "policy"
    live.mkdir(parents=True)
    for name, data in policy_files().items():
        if name == "init.lua":  # the policy names its data files by absolute live path
            data = data.replace(b"/opt/kumomta/etc/policy", str(live).encode())
        (live / name).write_bytes(data)
    log = tmp_path / "kumod-read.log"
    kumod = tmp_path / "kumod"
    kumod.write_text(FAKE_KUMOD.replace("{live}", str(live)).replace("{log}", str(log)))
    kumod.chmod(0o755)
    cfg = parse(
        {
            "live": str(live),
            "state_dir": str(tmp_path / "state"),
            "source": {"kind": "watch"},
            "kumod": {"binary": str(kumod), "validate_isolation": isolation},
        },
        "daemon.toml",
    )
    layout = Layout(live, cfg.state_dir)
    layout.ensure_dirs()
    init_layout(layout, "live-1")
    gate = Gate(cfg, layout, None, probe_isolation(cfg))
    candidate_dir = tmp_path / "candidate"
    candidate_dir.mkdir()
    for path in live.iterdir():
        (candidate_dir / path.name).write_bytes(path.read_bytes())
    return gate, candidate_dir, log, live


def candidate(directory: Path, name: str) -> Candidate:
    return Candidate(
        id=name, kind="release", rev=None, promotable=True, open=lambda: FsSnapshot(directory)
    )


def namespace_available(tmp_path: Path) -> bool:
    gate, *_ = setup(tmp_path / "probe", "auto")
    return gate.isolation["isolation"] == "namespace"


def test_in_a_namespace_the_live_paths_show_the_candidate(tmp_path: Path) -> None:
    if not namespace_available(tmp_path):
        pytest.skip("this host gives no private mount namespace (unshare)")
    gate, cand, log, live = setup(tmp_path / "ns", "namespace")
    live_shaping = (live / "shaping.toml").read_bytes()
    (cand / "shaping.toml").write_text("# candidate shaping\n" + SAFE_SHAPING)
    verdict = gate.check(candidate(cand, "cand-1"), "live-1")
    read = log.read_text()
    assert f"{live}/shaping.toml: # candidate shaping" in read
    assert f"{live}/sources.toml:" in read
    assert verdict.decision == "promoted" and verdict.validator.exit_code == 0
    assert verdict.validation == {"isolation": "namespace"}
    assert (
        verdict.validator.command.startswith(f"{os.sep}") and "unshare" in verdict.validator.command
    )
    assert not any("LIVE" in r for r in verdict.reasons)
    # the host's view never changed
    assert (live / "shaping.toml").read_bytes() == live_shaping
    assert os.readlink(live).endswith("releases/live-1")

    # what the candidate's files say is what kumod judges, not what is live
    log.unlink()
    (cand / "shaping.toml").write_text(SAFE_SHAPING.replace("12", "666"))
    verdict = gate.check(candidate(cand, "cand-2"), "live-1")
    assert verdict.decision == "blocked" and verdict.validator.exit_code == 1
    assert "connection_limit = 666" not in (live / "shaping.toml").read_text()


def test_without_a_namespace_the_decision_says_the_live_files_were_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, cand, log, live = setup(tmp_path, "none")
    (cand / "shaping.toml").write_text("# candidate shaping\n" + SAFE_SHAPING.replace("12", "666"))
    verdict = gate.check(candidate(cand, "cand-1"), "live-1")
    read = log.read_text()
    assert f"{live}/shaping.toml: # candidate" not in read  # kumod saw the live file
    assert verdict.decision == "promoted"  # the live file was fine; the candidate's was not checked
    assert verdict.validation is not None and verdict.validation["isolation"] == "none"
    assert verdict.validation["live_files_seen"] == [
        f"{live}/queues.toml",
        f"{live}/shaping.toml",
        f"{live}/sources.toml",
    ]
    assert any("read the LIVE files" in r and f"{live}/shaping.toml" in r for r in verdict.reasons)

    # a candidate that names no live path carries no such warning
    init = (cand / "init.lua").read_text().replace(str(live) + "/", "")
    (cand / "init.lua").write_text(init)
    verdict = gate.check(candidate(cand, "cand-2"), "live-1")
    assert "live_files_seen" not in (verdict.validation or {})
    assert not any("LIVE" in r for r in verdict.reasons)

    # required but not available: a one-line error at start; auto falls back and says why
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(AuditError, match="no private mount namespace: unshare is not installed"):
        probe_isolation(gate.cfg.model_copy(update={"kumod": gate.cfg.kumod.model_copy(
            update={"validate_isolation": "namespace"})}))  # fmt: skip
    auto = gate.cfg.kumod.model_copy(update={"validate_isolation": "auto"})
    assert probe_isolation(gate.cfg.model_copy(update={"kumod": auto})) == {
        "isolation": "none",
        "detail": "unshare is not installed",
    }
