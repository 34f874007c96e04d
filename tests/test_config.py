"""`kumo-audit config --show`: the effective configuration, where it came from, and one-line errors."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from auditor.config.settings import DEFAULT, load_config
from tests.conftest import run_cli, write_tree

CONFIG = """
ignore = ["r103"]
entry = "policy/init.lua"

[severity]
r108 = "warning"

[thresholds]
relay_ipv4_min_prefix = 24

[path_map]
"/opt/kumomta/share/" = "vendor"

[[bounds]]
key = "connection_limit"
domain = "gmail.com"
max = 50

[[waiver]]
path = "policy/shaping.toml"
code = "E301"
reason = "vendor file, reviewed"
expires = 2027-01-01
"""


def test_defaults_when_no_file(tmp_path: Path) -> None:
    done = run_cli("config", "--show", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# kumo-audit configuration: built-in defaults")
    assert 'fail_on = "error"' in done.stdout
    assert "# default" not in done.stdout  # everything is a default: no per-key marks
    reread = tomllib.loads(done.stdout)
    assert reread["thresholds"]["relay_ipv4_min_prefix"] == DEFAULT.thresholds.relay_ipv4_min_prefix


def test_show_text_round_trips_and_marks_defaults(tmp_path: Path) -> None:
    write_tree(tmp_path, {"kumo-audit.toml": CONFIG})
    done = run_cli("config", "--show", str(tmp_path))
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.splitlines()[0] == f"# kumo-audit configuration from {tmp_path / 'kumo-audit.toml'}"
    assert 'ignore = ["R103"]\n' in text
    assert 'fail_on = "error"  # default' in text
    assert "relay_ipv4_min_prefix = 24\n" in text
    assert "relay_ipv6_min_prefix = 48  # default" in text
    assert 'R108 = "warning"' in text
    assert "expires = 2027-01-01" in text
    # the output is valid TOML that describes the same configuration
    reread = tmp_path / "reread"
    write_tree(reread, {"kumo-audit.toml": text})
    assert load_config(reread)[0] == load_config(tmp_path)[0]


def test_show_json(tmp_path: Path) -> None:
    write_tree(tmp_path, {"kumo-audit.toml": CONFIG})
    done = run_cli("config", str(tmp_path), "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["source"] == str(tmp_path / "kumo-audit.toml")
    assert doc["config"]["severity"] == {"R108": "warning"}
    assert doc["config"]["waiver"][0]["expires"] == "2027-01-01"
    assert doc["config"]["thresholds"]["relay_ipv4_min_prefix"] == 24


def test_pyproject_table_and_explicit_file(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": '[tool.kumo-audit]\nfail_on = "warning"\n'})
    done = run_cli("config", "--show", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "from " + str(tmp_path / "pyproject.toml") in done.stdout
    assert 'fail_on = "warning"\n' in done.stdout
    other = (
        write_tree(tmp_path / "elsewhere", {"strict.toml": 'fail_on = "info"\n'}) / "strict.toml"
    )
    done = run_cli("config", "--show", str(tmp_path), "--config", str(other))
    assert done.returncode == 0, done.stderr
    assert 'fail_on = "info"\n' in done.stdout and str(other) in done.stdout


def test_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    write_tree(tmp_path, {"kumo-audit.toml": 'ignroe = ["R103"]\n'})
    done = run_cli("config", "--show", str(tmp_path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "did you mean 'ignore'" in done.stderr
    write_tree(tmp_path, {"kumo-audit.toml": "ignore = [\n"})
    done = run_cli("config", "--show", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "invalid TOML" in done.stderr
    done = run_cli("config", "--show", str(tmp_path / "missing"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1


def test_config_option_that_is_no_regular_file_or_too_large_is_one_line(tmp_path: Path) -> None:
    """--config /dev/zero (or a pipe, or a directory) must not be read until memory runs out."""
    write_tree(tmp_path, {"init.lua": "local kumo = require 'kumo'\n"})
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    for target in ("/dev/zero", str(fifo), str(tmp_path)):
        done = run_cli("check", str(tmp_path), "--config", target)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "is not a regular file" in done.stderr
    big = tmp_path / "big.toml"
    setting = 'fail_on = "warning"\n'
    for size, fits in ((1 << 20, True), ((1 << 20) + 1, False)):  # the limit: 1 MiB
        big.write_text(setting + "#" * (size - len(setting) - 1) + "\n")
        assert big.stat().st_size == size
        done = run_cli("check", str(tmp_path), "--config", str(big))
        assert done.returncode == (0 if fits else 2), done.stderr
        assert ("too large" in done.stderr) is not fits
    done = run_cli("check", str(tmp_path), "--config", str(tmp_path / "none.toml"))
    assert done.returncode == 2 and "does not exist" in done.stderr
