"""Inputs that used to end in an internal error now give a finding or a clear one-line message."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, audit, codes_at, run_cli, write_tree

INIT = "local kumo = require 'kumo'\nlocal shaping = require 'policy-extras.shaping'\n" + (
    "kumo.on('get_egress_path_config', shaping:setup { '/opt/kumomta/etc/policy/%s' })\n"
)


@pytest.mark.parametrize(
    ("name", "body", "line"),
    [
        ("shaping.toml", '["example.com"]\nconnection_limit = ' + "9" * 5000 + "\n", 2),
        ("shaping.json", '{"example.com": {"connection_limit": ' + "9" * 5000 + "}}", 1),
        ("shaping.toml", '["example.com"]\nconnection_limit = 9223372036854775808\n', 2),
        ("shaping.toml", '["example.com"]\nconnection_limit = -9223372036854775809\n', 2),
        ("shaping.json", '{\n"example.com": {"connection_limit": 18446744073709551616}}', 2),
        ("shaping.json", '{\n"example.com": {"connection_limit": -9223372036854775809}}', 2),
    ],
)
def test_integers_kumod_cannot_read_are_data_syntax_errors(
    tmp_path: Path, name: str, body: str, line: int
) -> None:
    write_tree(tmp_path, {"init.lua": INIT % name, name: body})
    result = audit(tmp_path)
    assert [(c, ln) for c, ln, _ in codes_at(result.findings, "E103")] == [
        (c, line) for c in ["E103"]
    ]
    proc = run_cli("check", str(tmp_path))
    assert proc.returncode == 1 and "internal error" not in proc.stderr, proc.stderr


def test_integers_at_the_int64_bounds_are_accepted(tmp_path: Path) -> None:
    body = '["example.com"]\nconnection_limit = 9223372036854775807\nx = -9223372036854775808\n'
    write_tree(tmp_path, {"init.lua": INIT % "shaping.toml", "shaping.toml": body})
    assert codes_at(audit(tmp_path).findings, "E103") == []
    write_tree(
        tmp_path,
        {
            "init.lua": INIT % "shaping.json",
            "shaping.json": '{"example.com": {"connection_limit": 18446744073709551615}}',
        },
    )
    assert codes_at(audit(tmp_path).findings, "E103") == []


def test_failed_write_to_standard_output_is_a_clear_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"init.lua": "local kumo = require 'kumo'\n"})
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "auditor", "check", str(tmp_path), "--format", "json"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "standard output" in lines[0] and "internal error" not in lines[0]


SETPRIV = shutil.which("setpriv")
DROP = [SETPRIV or "setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


@pytest.mark.skipif(
    os.geteuid() != 0 or SETPRIV is None,
    reason="root without the capabilities that bypass permissions (setpriv) meets permissions",
)
def test_unreadable_directory_on_the_module_path_is_a_finding() -> None:
    top = Path(tempfile.mkdtemp(prefix="kumo-audit-perm-"))
    cache = Path(tempfile.mkdtemp(prefix="kumo-audit-cache-"))
    cache.chmod(0o777)
    try:
        top.chmod(0o755)
        write_tree(
            top,
            {
                "init.lua": "local kumo = require 'kumo'\nlocal m = require 'lib.mod'\n",
                "lib/mod.lua": "return {}\n",
                "secret/x.toml": "a = 1\n",
            },
        )
        for d in (top / "lib", top / "secret"):
            d.chmod(0o000)
        proc = subprocess.run(
            [*DROP, sys.executable, "-m", "auditor", "check", str(top), "--format", "json"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "KUMO_AUDIT_CACHE_DIR": str(cache)},
            timeout=120,
        )
        assert proc.returncode == 1 and proc.stderr == "", proc.stderr
        findings = json.loads(proc.stdout)["findings"]
        e102 = sorted((f["path"], f["code"]) for f in findings if f["code"] == "E102")
        assert e102 == [("lib", "E102"), ("lib/mod.lua", "E102"), ("secret", "E102")]
    finally:
        for d in (top / "lib", top / "secret"):
            d.chmod(0o755)
        shutil.rmtree(top, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


def test_module_names_no_file_can_have_are_missing_modules(tmp_path: Path) -> None:
    long_name = "a" * 300
    deep_name = "b." * 3000 + "c"
    write_tree(
        tmp_path,
        {"init.lua": f"local m = require '{long_name}'\nlocal n = require '{deep_name}'\n"},
    )
    result = audit(tmp_path)
    assert [(c, ln) for c, ln, _ in codes_at(result.findings)] == [("E104", 1), ("E104", 2)]
