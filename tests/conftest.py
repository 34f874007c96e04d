"""Shared test helpers: write a policy tree, audit it in-process, run the CLI as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own cache directory, so no test sees another's cached results."""
    monkeypatch.setenv("KUMO_AUDIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create files under `root`; str contents are dedented, bytes written as they are."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return root


def audit(root: Path, **kwargs):  # type: ignore[no-untyped-def]
    """Run the check pipeline in-process on a directory."""
    from auditor.pipeline.stages import audit_snapshot
    from auditor.source.snapshot import FsSnapshot

    return audit_snapshot(FsSnapshot(root), **kwargs)


def codes_at(findings, prefix: str = "") -> list[tuple[str, int, int]]:  # type: ignore[no-untyped-def]
    """(code, line, column) of unsuppressed findings whose code starts with `prefix`, sorted.
    Each of them must name its file, say something, and carry a semantic key: its fingerprint (baselines,
    introduced/resolved) is made from code, path and key, never from the message or the line."""
    chosen = [f for f in findings if f.code.startswith(prefix) and not f.suppressed]
    assert all(isinstance(f.key, str) and f.key for f in chosen), [
        (f.code, f.line) for f in chosen if not f.key
    ]
    assert all(isinstance(f.path, str) and f.path for f in chosen), [
        (f.code, f.line) for f in chosen if not f.path
    ]
    assert all(isinstance(f.message, str) and f.message for f in chosen), [
        (f.code, f.line) for f in chosen if not f.message
    ]
    return sorted((f.code, f.line, f.column) for f in chosen)


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m auditor ARGS` as a real subprocess."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "auditor", *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


def cli_json(*args: str, cwd: Path | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    proc = run_cli(*args, "--format", "json", cwd=cwd)
    assert proc.stderr == "" or proc.returncode != 2, proc.stderr
    return proc.returncode, json.loads(proc.stdout)
