"""Benchmark `kumo-audit check` as a whole process against the targets in DESIGN.md.

For generated policies (typical repo, 2,000 and 20,000 lines) and `examples/acme-mta`, runs
`python -m auditor check DIR` N times (after one warm-up run) and reports the median and p95 wall
time and the child's peak RSS; runs `luacheck` on the same Lua files when it is installed, and
prints ratios against the targets. Also prints the Python start-up floor.

    .venv/bin/python bench/bench_check.py [--runs 10] [--keep DIR] [--json OUT] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_policy import count_lines, generate

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "examples" / "acme-mta"

TYPICAL_MEDIAN_S = 0.2  # typical repo (300-line init.lua + data files), whole process
RATIO_2K = 1.0  # 2,000 lines: at most luacheck's time
RATIO_20K = 0.35  # 20,000 lines: at most 0.35x luacheck's time
PEAK_RSS_MB = 150.0


@dataclass
class Timing:
    """Wall times (seconds) and peak RSS (MB) of repeated runs of one command."""

    times: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        if len(self.times) < 2:
            return self.times[0]
        return statistics.quantiles(self.times, n=20, method="inclusive")[18]


@dataclass
class Case:
    name: str
    path: Path
    lua_files: list[Path]
    lua_lines: int
    target: str  # "typical", "2k", "20k"
    check: Timing | None = None
    luacheck: Timing | None = None
    verdicts: list[str] = field(default_factory=list)


def run_once(cmd: list[str], ok_codes: tuple[int, ...]) -> tuple[float, float, str | None]:
    """Run `cmd`; return (wall seconds, peak RSS MB of this child, error or None)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO_ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss_mb = usage.ru_maxrss / 1024  # Linux reports KiB
        if proc.returncode not in ok_codes:
            err.seek(0)
            out.seek(0)
            text = (err.read() or out.read()).decode(errors="replace").strip()
            return elapsed, rss_mb, f"exit {proc.returncode}: {text[-2000:]}"
        return elapsed, rss_mb, None


def measure(cmd: list[str], runs: int, ok_codes: tuple[int, ...]) -> Timing:
    """One warm-up run (discarded), then `runs` timed runs; stops at the first failure."""
    timing = Timing()
    for i in range(runs + 1):
        elapsed, rss, error = run_once(cmd, ok_codes)
        if error is not None:
            timing.error = error
            return timing
        if i > 0:
            timing.times.append(elapsed)
        timing.peak_rss_mb = max(timing.peak_rss_mb, rss)
    return timing


def luacheck_cmd(files: list[Path]) -> list[str] | None:
    exe = shutil.which("luacheck")
    if exe is None:
        return None
    return [exe, "--std", "lua54", "--no-config", "--no-cache", "--codes", "-q", *map(str, files)]


def lua_files_of(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.lua") if p.is_file())


def judge(case: Case) -> None:
    """Fill `case.verdicts` from the DESIGN.md targets that apply to it."""
    check = case.check
    if check is None or check.error is not None:
        case.verdicts.append("check failed")
        return
    if case.target == "typical":
        ok = check.median <= TYPICAL_MEDIAN_S
        case.verdicts.append(f"median<={TYPICAL_MEDIAN_S}s {'PASS' if ok else 'FAIL'}")
    elif case.target in ("2k", "20k"):
        limit = RATIO_2K if case.target == "2k" else RATIO_20K
        lc = case.luacheck
        if lc is None:
            case.verdicts.append(f"<={limit}x luacheck: n/a (luacheck not installed)")
        elif lc.error is not None:
            case.verdicts.append(f"<={limit}x luacheck: n/a (luacheck failed)")
        else:
            ok = check.median / lc.median <= limit
            case.verdicts.append(f"<={limit}x luacheck {'PASS' if ok else 'FAIL'}")
    ok = check.peak_rss_mb <= PEAK_RSS_MB
    case.verdicts.append(f"rss<={PEAK_RSS_MB:.0f}MB {'PASS' if ok else 'FAIL'}")


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def print_table(cases: list[Case]) -> None:
    header = (
        "case",
        "lua lines",
        "check median",
        "check p95",
        "peak RSS",
        "luacheck median",
        "ratio",
        "targets",
    )
    rows = [header]
    for c in cases:
        ok = c.check is not None and c.check.error is None
        lc_ok = c.luacheck is not None and c.luacheck.error is None
        ratio = f"{c.check.median / c.luacheck.median:.2f}x" if ok and lc_ok else "-"
        rows.append(
            (
                c.name,
                str(c.lua_lines),
                fmt_s(c.check.median) if ok else "error",
                fmt_s(c.check.p95) if ok else "-",
                f"{c.check.peak_rss_mb:.0f} MB" if ok else "-",
                fmt_s(c.luacheck.median) if lc_ok else ("error" if c.luacheck else "-"),
                ratio,
                "; ".join(c.verdicts),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def print_floor(runs: int) -> dict[str, float]:
    floors = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import tree_sitter_lua, tree_sitter, lupa'": [
            sys.executable,
            "-c",
            "import tree_sitter_lua, tree_sitter, lupa",
        ],
    }
    result: dict[str, float] = {}
    print("Python start-up floor (median):")
    for label, cmd in floors.items():
        timing = measure(cmd, runs, (0,))
        if timing.error is not None:
            print(f"  {label}: failed: {timing.error}")
            continue
        result[label] = timing.median
        print(f"  {label}: {fmt_s(timing.median)}  (peak RSS {timing.peak_rss_mb:.0f} MB)")
    print()
    return result


def build_cases(workdir: Path) -> list[Case]:
    cases: list[Case] = []
    for name, lines, target in (
        ("typical (300 + data)", 300, "typical"),
        ("2,000 lines", 2_000, "2k"),
        ("20,000 lines", 20_000, "20k"),
    ):
        out = workdir / target
        if out.exists():
            shutil.rmtree(out)
        files = generate(out, lines)
        cases.append(Case(name, out, files, count_lines(files), target))
    files = lua_files_of(EXAMPLE)
    cases.append(Case("examples/acme-mta", EXAMPLE, files, count_lines(files), "typical"))
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command (default 10)")
    parser.add_argument("--keep", type=Path, help="generate policies here and keep them")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="disable kumo-audit's parse cache (every run parses everything)",
    )
    args = parser.parse_args(argv)
    # Installed packages run from compiled bytecode; a development shell may forbid writing it.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / "auditor")], check=False
    )
    if args.cold:
        os.environ["KUMO_AUDIT_NO_CACHE"] = "1"
    print(f"parse cache: {'off (cold runs)' if args.cold else 'on (warm runs after one warm-up)'}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    floors = print_floor(args.runs)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        workdir_ctx = None
        workdir = args.keep
    else:
        workdir_ctx = tempfile.TemporaryDirectory(prefix="kumo-audit-bench-")
        workdir = Path(workdir_ctx.name)
    try:
        cases = build_cases(workdir)
        if shutil.which("luacheck") is None:
            print("luacheck not found (apt-get install lua-check); ratio targets are skipped.\n")
        for case in cases:
            print(f"measuring {case.name} ({case.path}) ...", flush=True)
            cmd = [sys.executable, "-m", "auditor", "check", str(case.path)]
            case.check = measure(cmd, args.runs, (0, 1))
            if case.check.error is not None:
                print(f"  kumo-audit check failed: {case.check.error}", file=sys.stderr)
            lc = luacheck_cmd(case.lua_files)
            if lc is not None:
                case.luacheck = measure(lc, args.runs, (0, 1, 2))
                if case.luacheck.error is not None:
                    print(f"  luacheck failed: {case.luacheck.error}", file=sys.stderr)
            judge(case)
        print()
        print_table(cases)
    finally:
        if workdir_ctx is not None:
            workdir_ctx.cleanup()

    if args.json:
        payload = {
            "runs": args.runs,
            "floor_median_s": floors,
            "cases": [
                {
                    "name": c.name,
                    "lua_lines": c.lua_lines,
                    "target": c.target,
                    "check": asdict(c.check) if c.check else None,
                    "luacheck": asdict(c.luacheck) if c.luacheck else None,
                    "verdicts": c.verdicts,
                }
                for c in cases
            ],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    missed = any("FAIL" in v or "failed" in v for c in cases for v in c.verdicts)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
