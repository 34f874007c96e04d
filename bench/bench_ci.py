"""Benchmark `kumo-audit ci --each-commit` over many commits: parsing cost follows distinct file versions.

Builds a Git repository holding a generated typical policy, then N commits that each edit one data
file, cycling through V distinct versions of it (plus an occasional Lua edit). It runs
`kumo-audit ci --base <first commit> --each-commit` twice, with an empty cache and then warm, and
prints the times, the number of parsed file versions stored in the cache, and the warm/cold ratio.

    python bench/bench_ci.py [--commits 200] [--versions 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from gen_policy import generate  # noqa: E402

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.net",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.net",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def build(repo: Path, commits: int, versions: int) -> str:
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    generate(repo, 300)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial policy")
    first = git(repo, "rev-parse", "HEAD")
    shaping = repo / "policy" / "shaping.toml"
    original = shaping.read_text()
    init = repo / "policy" / "init.lua"
    init_text = init.read_text()
    for i in range(commits):
        version = i % versions
        shaping.write_text(original + f"\n# revision {version}\n")
        if i % 25 == 0:
            init.write_text(init_text + f"\n-- note {i // 25 % 3}\n")
        git(repo, "commit", "-q", "-am", f"tune shaping ({version})")
    return first


def run_ci(repo: Path, base: str, cache: Path) -> float:
    env = {**os.environ, "KUMO_AUDIT_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "auditor",
            "ci",
            "--base",
            base,
            "--policy",
            str(repo),
            "--each-commit",
            "--format",
            "json",
            "--output",
            os.devnull,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        print(proc.stderr, file=sys.stderr)
        raise SystemExit("kumo-audit ci failed")
    return elapsed


def cache_entries(cache: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in cache.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            namespace = path.relative_to(cache).parts[0]
            counts[namespace] = counts.get(namespace, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--warm-runs", type=int, default=3)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "auditor")], check=True)
    work = Path(tempfile.mkdtemp(prefix="kumo-bench-ci-"))
    try:
        repo = work / "repo"
        base = build(repo, args.commits, args.versions)
        cache = work / "cache"
        cold = run_ci(repo, base, cache)
        entries = cache_entries(cache)
        warm = statistics.median(run_ci(repo, base, cache) for _ in range(args.warm_runs))
        distinct_lua = len(
            {
                git(repo, "rev-parse", f"{c}:policy/init.lua")
                for c in git(repo, "rev-list", "HEAD").split()
            }
        )
        print(f"commits audited one by one   {args.commits}")
        print(f"distinct shaping.toml        {args.versions + 1}")
        print(f"distinct init.lua            {distinct_lua}")
        print(
            f"parsed versions in cache     {sum(entries.values())}  ({', '.join(f'{k}: {v}' for k, v in sorted(entries.items()))})"
        )
        print(f"cold run (empty cache)       {cold:.2f} s")
        print(f"warm run (median of {args.warm_runs})      {warm:.2f} s")
        print(f"warm speed-up                {cold / warm:.1f}x (target >= 5x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
