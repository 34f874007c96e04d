"""Benchmark the config-host daemon: change-to-verdict latency and memory over many changes.

Latency: a typical policy repository (`gen_policy.py`, 300 lines and six data files) is the checkout
source of a real daemon (`kumo-audit daemon run`, default debounce of 200 ms) gating a live tree, with
a local HTTP server answering the epoch bumps. Each of N commits changes a shaping value; the time
from the commit being written to the daemon's `decided` log line (the verdict) and to its `verdict`
line (promoted: release written, link swapped, epoch bumped, runbook entry written) is measured.

Memory: a watch daemon audits and records M in-place edits (each saved as an editor does, by rename);
its resident set size is sampled every K changes (default 1,000), with the time per change over each
window. Changes are driven as fast as the daemon answers (the next edit as soon as the previous verdict
is logged; 20 ms debounce). A leak shows as a positive RSS slope after the first window; a cost that
grows with the runbook as a positive time slope.

    .venv/bin/python bench/bench_daemon.py [--changes 200] [--rss-changes 10000] [--rss-every 1000]
                                           [--skip-rss] [--json FILE] [--strict]
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_policy import generate

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_P95_S = 0.5
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.net",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.net",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True,
                          capture_output=True, text=True)  # fmt: skip
    return proc.stdout.strip()


class BumpServer:
    def __init__(self) -> None:
        self.count = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/admin/bump-config-epoch"


class Daemon:
    """The daemon subprocess; log lines are timestamped on arrival."""

    def __init__(self, config: Path) -> None:
        self.lines: list[tuple[float, dict]] = []
        self.cond = threading.Condition()
        env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(REPO_ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "auditor", "daemon", "run", "--config", str(config)],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=REPO_ROOT,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            now = time.monotonic()
            try:
                event = json.loads(line)
            except ValueError:
                sys.stderr.write(line)
                continue
            with self.cond:
                self.lines.append((now, event))
                self.cond.notify_all()

    def wait(self, predicate, start: int = 0, timeout: float = 30.0) -> tuple[int, float, dict]:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    at, event = self.lines[i]
                    if predicate(event):
                        return i, at, event
                start = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise SystemExit(f"daemon did not answer (exit {self.proc.poll()})")
                self.cond.wait(left)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def config_text(table: dict) -> str:
    out = []
    for key, value in table.items():
        if not isinstance(value, dict):
            out.append(f"{key} = {json.dumps(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            out.append(f"[{key}]")
            out.extend(f"{k} = {json.dumps(v)}" for k, v in value.items())
    return "\n".join(out) + "\n"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_phase(work: Path, changes: int) -> dict:
    repo = work / "policy-repo"
    repo.mkdir()
    generate(repo, 300, seed=7)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "typical policy")
    live = work / "etc" / "policy"
    live.parent.mkdir()
    shutil.copytree(repo / "policy", live)
    bump = BumpServer()
    config = work / "daemon.toml"
    config.write_text(config_text({
        "live": str(live), "state_dir": str(work / "state"), "host": "bench",
        "source": {"kind": "checkout", "repo": str(repo), "path": "policy"},
        "kumod": {"bump_url": bump.url}, "metrics": {"listen": ""},
    }))  # fmt: skip
    subprocess.run([sys.executable, "-m", "auditor", "daemon", "init", "--config", str(config)],
                   check=True, cwd=REPO_ROOT, capture_output=True)  # fmt: skip
    daemon = Daemon(config)
    daemon.wait(lambda e: e.get("event") == "verdict", timeout=60)  # the checkout adopted
    shaping = repo / "policy" / "shaping.toml"
    original = shaping.read_text()
    decided: list[float] = []
    promoted: list[float] = []
    for i in range(changes):
        shaping.write_text(original + f'\n["bench.example"]\nconnection_limit = {i + 2}\n')
        git(repo, "commit", "-q", "-am", f"change {i}")
        written = time.monotonic()
        rev = git(repo, "rev-parse", "HEAD")
        mark = len(daemon.lines)
        _, at, _event = daemon.wait(
            lambda e, rev=rev: e.get("event") == "decided" and e.get("candidate") == rev, mark
        )
        decided.append(at - written)
        _, at2, event2 = daemon.wait(
            lambda e, rev=rev: e.get("event") == "verdict" and e.get("candidate") == rev, mark
        )
        promoted.append(at2 - written)
        if event2.get("decision") != "promoted":
            raise SystemExit(f"change {i} was {event2.get('decision')}, not promoted")
    daemon.stop()
    return {
        "changes": changes,
        "decided_p50_s": statistics.median(decided),
        "decided_p95_s": percentile(decided, 0.95),
        "promoted_p50_s": statistics.median(promoted),
        "promoted_p95_s": percentile(promoted, 0.95),
        "bumps": bump.count,
    }


def rss_phase(work: Path, changes: int, every: int) -> dict:
    live = work / "watched"
    generate(work / "gen", 300, seed=7)
    shutil.copytree(work / "gen" / "policy", live)
    runbook = work / "runbook"
    runbook.mkdir()
    git(runbook, "init", "-q", "-b", "main")
    git(runbook, "commit", "-q", "--allow-empty", "-m", "runbook home")
    config = work / "watch.toml"
    config.write_text(config_text({
        "live": str(live), "state_dir": str(work / "watch-state"), "host": "bench",
        "debounce_ms": 20, "rescan_interval": 3600.0,
        "source": {"kind": "watch"}, "runbook": {"repo": str(runbook)}, "metrics": {"listen": ""},
    }))  # fmt: skip
    daemon = Daemon(config)
    daemon.wait(lambda e: e.get("event") == "verdict", timeout=60)
    shaping = live / "shaping.toml"
    original = shaping.read_text()
    samples: list[tuple[int, int]] = [(0, daemon.rss_kib())]
    window: list[float] = []  # ms per change, per sampling window
    started = window_start = time.monotonic()
    for i in range(1, changes + 1):
        tmp = live / ".shaping.toml.swp"
        tmp.write_text(original + f'\n["rss.example"]\nconnection_limit = {i + 1}\n')
        mark = len(daemon.lines)
        os.rename(tmp, shaping)
        daemon.wait(lambda e: e.get("event") == "verdict", mark)
        with daemon.cond:  # the bench keeps no history of its own
            del daemon.lines[:mark]
        if i % every == 0:
            now = time.monotonic()
            samples.append((i, daemon.rss_kib()))
            window.append((now - window_start) / every * 1000)
            window_start = now
            print(f"  {i:>6} changes  RSS {samples[-1][1] / 1024:7.1f} MiB  "
                  f"{window[-1]:6.1f} ms/change over the last {every}", flush=True)  # fmt: skip
    elapsed = time.monotonic() - started
    daemon.stop()
    entries = int(git(runbook, "rev-list", "--count", "kumo-runbook"))
    after_start = [s for s in samples if s[0] >= every]  # the first window warms caches up
    return {
        "changes": changes,
        "runbook_commits": entries,
        "rss_mib": [(n, round(kib / 1024, 1)) for n, kib in samples],
        "ms_per_change": [round(ms, 1) for ms in window],
        "mean_ms_per_change": round(elapsed / changes * 1000, 1),
        "slope_kib_per_1000": round(_slope(after_start) * 1000, 1),
        "second_half_slope_kib_per_1000": round(
            _slope([s for s in samples if s[0] >= changes // 2]) * 1000, 1
        ),
        "time_slope_ms_per_1000": round(
            _slope([(every * (k + 1), ms) for k, ms in enumerate(window)]) * 1000, 2
        ),
    }


def _slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two points)."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / max(
        1e-9, sum((x - mx) ** 2 for x in xs)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--rss-changes", type=int, default=10_000)
    parser.add_argument("--rss-every", type=int, default=1000)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--strict", action="store_true", help="exit 1 when p95 misses the target")
    args = parser.parse_args(argv)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        work = Path(tmp)
        if not args.skip_latency:
            (work / "latency").mkdir()
            lat = latency_phase(work / "latency", args.changes)
            results["latency"] = lat
            print(f"latency over {lat['changes']} commits (typical repo, debounce 200 ms):")
            print(
                f"  change -> verdict   p50 {lat['decided_p50_s'] * 1000:6.0f} ms   "
                f"p95 {lat['decided_p95_s'] * 1000:6.0f} ms   (target p95 <= {TARGET_P95_S * 1000:.0f} ms)"
            )
            print(
                f"  change -> promoted  p50 {lat['promoted_p50_s'] * 1000:6.0f} ms   "
                f"p95 {lat['promoted_p95_s'] * 1000:6.0f} ms   (release, swap, bump, runbook entry)"
            )
            print(f"  epoch bumps: {lat['bumps']}")  # fmt: skip
        if not args.skip_rss:
            (work / "rss").mkdir()
            print(f"RSS over {args.rss_changes} in-place edits (watch daemon):", flush=True)
            rss = rss_phase(work / "rss", args.rss_changes, args.rss_every)
            results["rss"] = rss
            print(
                f"  RSS slope after the first {args.rss_every}: {rss['slope_kib_per_1000']} KiB "
                f"per 1,000 changes (second half: {rss['second_half_slope_kib_per_1000']})"
            )
            print(
                f"  time per change: mean {rss['mean_ms_per_change']} ms, slope "
                f"{rss['time_slope_ms_per_1000']} ms per 1,000 changes; "
                f"{rss['runbook_commits']} runbook commits"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.strict and "latency" in results and results["latency"]["decided_p95_s"] > TARGET_P95_S:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
