"""Real daemons for tests: a subprocess per daemon, a real HTTP server on 127.0.0.1 recording epoch
bumps, real Git repositories and a bare remote, all in temporary directories."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.gitrepo import GIT_ENV, Repo

ROOT = Path(__file__).resolve().parent.parent
CLEAN_POLICY = ROOT / "examples" / "clean-policy" / "policy"

SAFE_SHAPING = '["default"]\nconnection_limit = 12\nmax_deliveries_per_connection = 100\n'
UNSAFE_INIT_ADDITION = (
    "\nkumo.on('smtp_server_message_received', function(msg)\n  os.execute('true')\nend)\n"
)


class BumpServer:
    """Records every request; answers 500 to the first `fail_first` POSTs."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[tuple[str, str, float]] = []
        self.fail_first = fail_first
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.requests.append(("POST", self.path, time.time()))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                failing = outer.fail_first > 0
                if failing:
                    outer.fail_first -= 1
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/admin/bump-config-epoch"

    @property
    def bumps(self) -> list[tuple[str, str, float]]:
        return [r for r in self.requests if r[1] == "/api/admin/bump-config-epoch"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def policy_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(CLEAN_POLICY.iterdir()) if p.is_file()}


def env() -> dict[str, str]:
    return {
        **os.environ,
        **GIT_ENV,
        "PYTHONPATH": str(ROOT),
        "KUMO_AUDIT_CACHE_DIR": os.environ.get("KUMO_AUDIT_CACHE_DIR", ""),
    }


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_config(path: Path, table: dict[str, Any]) -> Path:
    lines: list[str] = []
    sections = {k: v for k, v in table.items() if isinstance(v, dict)}
    for key, value in table.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {toml_value(value)}")
    for name, section in sections.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in section.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "auditor", *args],
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout,
        cwd=ROOT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kumo-audit {' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
        )
    return proc


class DaemonProc:
    """`kumo-audit daemon run` as a subprocess; its JSON log lines are collected as they arrive."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.proc = subprocess.Popen(
            self.command(config),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
            cwd=ROOT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @staticmethod
    def command(config: Path) -> list[str]:
        return [sys.executable, "-m", "auditor", "daemon", "run", "--config", str(config)]

    @staticmethod
    def environment() -> dict[str, str]:
        return env()

    @staticmethod
    def cwd() -> Path:
        return ROOT

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20, count: int = 1
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in list(self.events) if predicate(e)]
            if len(found) >= count:
                return found
            if self.proc.poll() is not None:
                time.sleep(0.1)
                raise AssertionError(
                    f"daemon exited ({self.proc.returncode}): {''.join(self.raw)[-3000:]}"
                )
            time.sleep(0.02)
        raise AssertionError(f"timed out; log tail: {''.join(self.raw)[-3000:]}")

    def verdicts(self, decision: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in list(self.events)
            if e.get("event") == "verdict" and (decision is None or e.get("decision") == decision)
        ]

    def wait_started(self) -> None:
        self.wait_for(lambda e: e.get("event") == "ready")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        return self.proc.returncode

    def kill9_during_decision(self, state_dir: Path) -> int:
        """kill -9 now; 1 when the state shows a decision in flight at that moment."""
        self.kill9()
        try:
            state = json.loads((state_dir / "state.json").read_text())
        except (OSError, ValueError):
            return 0
        return 1 if state.get("intent") or state.get("pending") else 0

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reader.join(timeout=5)


class Host:
    """One config host: a live policy directory, a state directory and a daemon configuration."""

    def __init__(
        self, base: Path, name: str, source: dict[str, Any], bump_url: str, **options: Any
    ) -> None:
        self.base = base / name
        self.etc = self.base / "etc"
        self.live = self.etc / "policy"
        self.state_dir = self.base / "state"
        self.etc.mkdir(parents=True)
        self.name = name
        table: dict[str, Any] = {
            "live": str(self.live),
            "state_dir": str(self.state_dir),
            "host": name,
            "debounce_ms": 100,
            "rescan_interval": 1.0,
            **{k: v for k, v in options.items() if not isinstance(v, dict)},
            "source": source,
            "kumod": {"bump_url": bump_url, "bump_backoff": 0.05, "bump_timeout": 2},
            "metrics": {"listen": ""},
        }
        for key, value in options.items():
            if isinstance(value, dict):
                table[key] = {**table.get(key, {}), **value}
        self.config = write_config(self.base / "daemon.toml", table)

    def seed_live(self, files: dict[str, bytes]) -> None:
        self.live.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (self.live / name).write_bytes(data)

    def init(self) -> None:
        cli("daemon", "init", "--config", str(self.config))

    def start(self) -> DaemonProc:
        daemon = DaemonProc(self.config)
        daemon.wait_started()
        return daemon

    def status(self) -> dict[str, Any]:
        return json.loads(
            cli("daemon", "status", "--format", "json", "--config", str(self.config)).stdout
        )

    def live_bytes(self) -> dict[str, bytes]:
        root = self.live.resolve()
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }


def entries(repo: Path, branch: str = "kumo-runbook") -> list[dict[str, Any]]:
    """Machine records of every runbook entry on `branch` of `repo` (a bare remote or a clone)."""
    from auditor.runbook.markdown import parse_entry_file

    listing = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-r", "--name-only", branch, "entries"],
        capture_output=True,
        text=True,
        check=False,
    )
    records = []
    for name in listing.stdout.split():
        blob = subprocess.run(
            ["git", "-C", str(repo), "show", f"{branch}:{name}"], capture_output=True, check=True
        ).stdout
        records.append(parse_entry_file(blob).record)
    return records


def checkout_repo(path: Path) -> Repo:
    repo = Repo(path)
    repo.write({name: data for name, data in policy_files().items()})
    repo.commit(message="initial policy")
    return repo


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)
