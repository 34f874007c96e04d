"""`kumo-audit daemon init|run|status|sync|rollback|promote`."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from auditor.core.errors import AuditError

DEFAULT_CONFIG = Path("/etc/kumo-audit/daemon.toml")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    daemon = subparsers.add_parser(
        "daemon", help="gate policy changes on a KumoMTA config host (see README: Daemon)"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("KUMO_AUDIT_DAEMON_CONFIG", DEFAULT_CONFIG)),
        metavar="FILE",
        help=f"daemon configuration (default: {DEFAULT_CONFIG})",
    )
    commands = daemon.add_subparsers(dest="daemon_command", metavar="COMMAND", required=True)
    init = commands.add_parser(
        "init", parents=[common], help="turn the live directory into a link to a release"
    )
    init.add_argument("--undo", action="store_true", help="turn the link back into a directory")
    init.set_defaults(func=cmd_init)
    run = commands.add_parser("run", parents=[common], help="run the daemon in the foreground")
    run.set_defaults(func=cmd_run)
    status = commands.add_parser("status", parents=[common], help="show what the daemon knows")
    status.add_argument("--format", choices=("text", "json"), default="text")
    status.set_defaults(func=cmd_status)
    sync = commands.add_parser(
        "sync", parents=[common], help="fetch and gate now (the running daemon, or one pass)"
    )
    sync.set_defaults(func=cmd_sync)
    rollback = commands.add_parser(
        "rollback", parents=[common], help="promote an earlier release through the gate"
    )
    rollback.add_argument("rev", nargs="?", help="release or revision (default: the previous one)")
    rollback.add_argument("--force", action="store_true", help="skip the audit (still recorded)")
    rollback.add_argument("--timeout", type=float, default=120.0, help=argparse.SUPPRESS)
    rollback.set_defaults(func=cmd_rollback)
    promote = commands.add_parser(
        "promote", parents=[common], help="promote a held restart-required revision now"
    )
    promote.add_argument("rev", help="release or revision held for a restart")
    promote.add_argument("--timeout", type=float, default=120.0, help=argparse.SUPPRESS)
    promote.set_defaults(func=cmd_promote)


def _config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from auditor.daemon.config import load

    return load(args.config)


def cmd_init(args: argparse.Namespace) -> int:
    from auditor.daemon.layout import (
        Layout,
        init_layout,
        manifest_digest,
        tree_manifest,
        undo_layout,
    )
    from auditor.daemon.lock import TreeLock, lock_path
    from auditor.daemon.service import now_iso
    from auditor.daemon.state import StateFile

    cfg = _config(args)
    if cfg.source.kind == "watch":
        raise AuditError("a watch daemon keeps the live directory as it is: nothing to initialise")
    layout = Layout(cfg.live, cfg.state_dir)
    lock = TreeLock(lock_path(cfg.state_dir, cfg.live), cfg.live)
    lock.acquire()
    try:
        statefile = StateFile(cfg.state_dir / "state.json")
        if args.undo:
            manifest = undo_layout(layout)
            state = statefile.load()
            state.live_release = None
            state.history = []
            state.seen = {}
            statefile.save(state)
            print(f"{cfg.live} is a directory again ({len(manifest)} files, verified by hash)")
            return 0
        if not cfg.live.is_symlink():
            name = f"init-{manifest_digest(tree_manifest(cfg.live))[:16]}"
        else:
            name = layout.live_release() or "?"
        name, manifest = init_layout(layout, name)
        state = statefile.load()
        if state.live_release != name:
            state.live_release = name
            state.history = [
                {
                    "release": name,
                    "candidate": name,
                    "rev": None,
                    "at": now_iso(),
                    "decision": "init",
                }
            ]
            statefile.save(state)
        print(f"{cfg.live} -> {layout.release_dir(name)} ({len(manifest)} files, verified by hash)")
        return 0
    finally:
        lock.release()


def cmd_run(args: argparse.Namespace) -> int:
    from auditor.daemon.service import Daemon

    cfg = _config(args)
    return Daemon(cfg).run()


def _running_pid(cfg) -> int | None:  # type: ignore[no-untyped-def]
    from auditor.daemon.lock import holder, lock_path

    pid = holder(lock_path(cfg.state_dir, cfg.live))
    return pid if pid and pid > 0 else None


def status_data(cfg) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from auditor.daemon.layout import Layout
    from auditor.daemon.state import StateFile

    layout = Layout(cfg.live, cfg.state_dir)
    # the link first: a promotion saves its intent before it swaps, so the state read after a
    # swapped link always shows that promotion (in flight or finished)
    live_release = layout.live_release() if cfg.source.kind != "watch" else None
    state = StateFile(cfg.state_dir / "state.json").load()
    pid = _running_pid(cfg)
    return {
        "live": str(cfg.live),
        "source": cfg.source.kind,
        "running": pid is not None,
        "pid": pid,
        "live_release": live_release,
        "live_rev": state.live_rev,
        "promoted_at": state.promoted_at,
        "last_verdict": state.last_verdict,
        "pending": state.pending,
        "held": state.held,
        "drift": state.drift,
        "last_epoch_bump": state.last_bump,
        "unfinished_decision": state.intent["decision"] if state.intent else None,
        "runbook_unpushed": state.unpushed,
        "counts": state.counts,
        "validation": state.validation,
    }


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _config(args)
    data = status_data(cfg)
    if args.format == "json":
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    running = f"running (pid {data['pid']})" if data["running"] else "not running"
    rows = [("daemon", f"{running}, {data['source']} source")]
    live = data["live_release"] or "-"
    rev = f", revision {data['live_rev'][:12]}" if data["live_rev"] else ""
    since = f", since {data['promoted_at']}" if data["promoted_at"] else ""
    rows.append(("live", f"{data['live']} -> {live}{rev}{since}"))
    verdict = data["last_verdict"]
    rows.append(
        (
            "last verdict",
            f"{verdict['decision']} {verdict['candidate'][:16]} at {verdict['at']}"
            + (f" (entry {verdict['entry'][:7]})" if verdict.get("entry") else "")
            if verdict
            else "none yet",
        )
    )
    rows.append(("pending", data["pending"] or "none"))
    rows.append(("held", f"{data['held']} (restart required)" if data["held"] else "none"))
    drift = data["drift"]
    rows.append(
        (
            "drift",
            f"since {drift['since']}: {', '.join(drift.get('files') or []) or '?'} ({drift['mode']})"
            if drift
            else "none",
        )
    )
    bump = data["last_epoch_bump"]
    if bump:
        outcome = "ok" if bump.get("ok") else "FAILED"
        status = (
            f"HTTP {bump['status']}" if bump.get("status") else "; ".join(bump.get("errors") or [])
        )
        rows.append(
            (
                "epoch bump",
                f"{outcome} ({status}, {bump['attempts']} attempt(s)) at {bump.get('at')}",
            )
        )
    else:
        rows.append(("epoch bump", "none yet"))
    rows.append(
        ("runbook", "entries waiting to be pushed" if data["runbook_unpushed"] else "up to date")
    )
    validation = data.get("validation") or {}
    if validation.get("isolation") == "namespace":
        rows.append(
            ("kumod --validate", "private mount namespace: the live path shows the candidate")
        )
    elif validation.get("isolation") == "none":
        rows.append(
            (
                "kumod --validate",
                f"no private mount namespace ({validation.get('detail')}): absolute live paths "
                "show the live files (recorded with each decision)",
            )
        )
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key + ':':<{width + 1}} {value}")
    return 0


def _request(cfg, action: str, timeout: float, **fields: Any) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
    """Hand a request to the running daemon and wait for its answer; None when none is running."""
    pid = _running_pid(cfg)
    if pid is None:
        return None
    directory = cfg.state_dir / "requests"
    directory.mkdir(parents=True, exist_ok=True)
    request_id = f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}"
    tmp = directory / f".{request_id}.tmp"
    tmp.write_text(json.dumps({"action": action, **fields}), encoding="utf-8")
    tmp.rename(directory / f"{request_id}.json")
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGHUP)
    result = directory / f"{request_id}.result.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result.exists():
            answer = json.loads(result.read_text(encoding="utf-8"))
            result.unlink(missing_ok=True)
            return answer
        time.sleep(0.05)
    raise AuditError(f"the daemon (pid {pid}) did not answer within {timeout:.0f} s")


def _inline(cfg, work):  # type: ignore[no-untyped-def]
    """Run `work(daemon)` in this process, holding the tree lock (no daemon is running)."""
    from auditor.daemon.service import Daemon

    daemon = Daemon(cfg)
    daemon.open()
    try:
        daemon.resume()
        return work(daemon)
    finally:
        daemon.close()


def _report(answer: dict[str, Any]) -> int:
    message = answer.get("message") or ""
    decision = answer.get("decision")
    line = f"{decision}: {answer.get('release') or ''}".strip() if decision else ""
    text = "; ".join(x for x in (line, message) if x)
    print(
        text or ("done" if answer.get("ok") else "refused"),
        file=sys.stdout if answer.get("ok") else sys.stderr,
    )
    return 0 if answer.get("ok") else 1


def cmd_sync(args: argparse.Namespace) -> int:
    cfg = _config(args)
    pid = _running_pid(cfg)
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
        print(f"asked the daemon (pid {pid}) to sync")
        return 0

    def one_pass(daemon):  # type: ignore[no-untyped-def]
        daemon.fetch()
        if daemon.gated:
            daemon.check_drift()
        daemon.consider(time.monotonic())
        verdict = daemon.state.last_verdict
        print(
            f"last verdict: {verdict['decision']} {verdict['candidate']}"
            if verdict
            else "nothing to do"
        )
        return 0

    return _inline(cfg, one_pass)


def cmd_rollback(args: argparse.Namespace) -> int:
    cfg = _config(args)
    answer = _request(cfg, "rollback", args.timeout, rev=args.rev, force=args.force)
    if answer is None:
        answer = _inline(cfg, lambda d: d.handle_rollback(args.rev, args.force))
    return _report(answer)


def cmd_promote(args: argparse.Namespace) -> int:
    cfg = _config(args)
    answer = _request(cfg, "promote", args.timeout, rev=args.rev)
    if answer is None:
        answer = _inline(cfg, lambda d: d.handle_promote(args.rev))
    return _report(answer)
