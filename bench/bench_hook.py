"""Benchmark `kumo-audit hook pre-commit` as a whole process against the 0.25 s target in DESIGN.md.

Makes a typical policy repository (`gen_policy.py --preset typical`), commits it, stages a change to
one file, and runs the hook the way the installed Git hook does (`python -m auditor.commands.hook
pre-commit`) N times after one warm-up run (the warm-up fills the parse cache, as the previous commit
would have). Prints the median and p95 wall time, the Python start-up floor, and the import share
measured with `python -X importtime`.

    .venv/bin/python bench/bench_hook.py [--runs 15] [--keep DIR] [--strict]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_policy import generate

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.25
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.net",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.net",
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True,
                   capture_output=True)  # fmt: skip


def make_repo(root: Path) -> Path:
    repo = root / "policy-repo"
    repo.mkdir(parents=True)
    generate(repo, 300, seed=7)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "typical policy")
    data = repo / "policy" / "shaping.toml"
    data.write_text(
        data.read_text() + '\n["bench.example"]\nmax_message_rate = "5/s"\n', encoding="utf-8"
    )
    git(repo, "add", "policy/shaping.toml")
    return repo


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, proc.returncode, proc.stderr


def import_ms(cwd: Path, env: dict[str, str]) -> tuple[float, list[tuple[int, str]]]:
    """Total import time (ms) of the hook process and its five costliest top-level auditor imports."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "auditor.commands.hook", "pre-commit"],
        cwd=cwd, env=env, capture_output=True, text=True,
    )  # fmt: skip
    rows = []
    total = 0
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            total += int(match.group(1))
            if match.group(4).startswith("auditor"):
                rows.append((int(match.group(2)), f"{match.group(3)}{match.group(4)}"))
    rows.sort(reverse=True)
    return total / 1000, rows[:8]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="build the repository here and keep it")
    parser.add_argument("--strict", action="store_true", help="exit 1 when over the target")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="kumo-bench-hook-"))
    cache = root / "cache"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "KUMO_AUDIT_CACHE_DIR": str(cache),
        "NO_COLOR": "1",
    }
    try:
        repo = make_repo(root)
        cmd = [sys.executable, "-m", "auditor.commands.hook", "pre-commit"]
        cold, status, stderr = timed(cmd, repo, env)
        if status not in (0, 1):
            print(f"hook failed: {stderr.strip()}", file=sys.stderr)
            return 2
        times = [timed(cmd, repo, env)[0] for _ in range(args.runs)]
        floor = statistics.median(
            timed([sys.executable, "-c", "pass"], repo, env)[0] for _ in range(5)
        )
        imports, costly = import_ms(repo, env)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    median = statistics.median(times)
    p95 = statistics.quantiles(times, n=20, method="inclusive")[18] if len(times) > 1 else times[0]
    print(f"hook pre-commit, typical repo, one staged file ({args.runs} runs, warm cache)")
    print(f"  cold run (empty cache): {cold * 1000:7.1f} ms")
    print(f"  median:                 {median * 1000:7.1f} ms   target <= {TARGET_S * 1000:.0f} ms")
    print(f"  p95:                    {p95 * 1000:7.1f} ms")
    print(f"  python start-up floor:  {floor * 1000:7.1f} ms")
    print(f"  imports (-X importtime):{imports:7.1f} ms")
    for cumulative, name in costly:
        print(f"    {cumulative / 1000:7.1f} ms  {name}")
    verdict = "OK" if median <= TARGET_S else "OVER TARGET"
    print(f"  verdict: {verdict}")
    return 1 if args.strict and median > TARGET_S else 0


if __name__ == "__main__":
    sys.exit(main())
