"""KumoMTA's own shaping data passes the shaping schema (read from the KumoMTA mirror when present)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from auditor.data.validate import validate_data

MIRROR = Path("/work/.mirror/KumoCorp+kumomta/repo")


def _show(path: str) -> str:
    if not MIRROR.is_dir() or shutil.which("git") is None:
        pytest.skip(f"no KumoMTA mirror at {MIRROR}")
    done = subprocess.run(
        ["git", "-C", str(MIRROR), "show", f"HEAD:{path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"{path} is not in the KumoMTA mirror: {done.stderr.strip()}")
    return done.stdout


@pytest.mark.parametrize(
    "path", ["assets/policy-extras/shaping.toml", "assets/community/shaping.toml"]
)
def test_kumomta_shaping_files_have_no_data_findings(path: str) -> None:
    text = _show(path)
    result = validate_data(path, text, "shaping")
    assert [(f.code, f.line, f.message) for f in result.findings] == []
    assert isinstance(result.value, dict) and result.value
