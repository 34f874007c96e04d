"""Fidelity of the auditor on KumoMTA's own repository.

Runs the check pipeline (in process) over every Lua file and every ```lua snippet of the docs of a
KumoMTA checkout given on the command line (a work tree: fetched, never copied into this
repository), and prints:

- internal errors: any exception other than the auditor's own one-line errors;
- E101 agreement: whether the auditor reports a syntax error exactly when Lua 5.4 (lupa's `lua54`,
  compiled here independently) refuses the chunk, and on the same line;
- error findings on KumoMTA's policies and helper modules (assets/, examples/, the integration tests,
  top-level *.lua), split by code; each one must be listed with the reason it is a true finding in
  `fidelity_reviewed.toml` beside this script, or it counts as unexplained.

    .venv/bin/python bench/bench_fidelity.py /path/to/kumomta [--json OUT] [--strict] [-v]

With --strict the exit status is 1 when there is an internal error, an E101 disagreement or an
unexplained error finding.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import tomllib
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

REVIEWED = Path(__file__).resolve().parent / "fidelity_reviewed.toml"
POLICY_AREAS = ("assets/", "examples/", "crates/integration-tests/")
_FENCE = re.compile(r"^([ \t]*)```lua[^\n]*\n(.*?)^\1```", re.M | re.S)


@dataclass
class Item:
    label: str  # path in the checkout, or path#N for the Nth snippet of a doc page
    root: Path
    entry: str
    source: str
    policy_area: bool


@dataclass
class Outcome:
    internal_errors: list[tuple[str, str]] = field(default_factory=list)
    e101_checked: int = 0
    e101_disagree: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str, int, int, str]] = field(default_factory=list)  # label, code, ...
    modes: Counter = field(default_factory=Counter)
    audited: int = 0


def lua_items(checkout: Path) -> list[Item]:
    items = []
    for path in sorted(checkout.rglob("*.lua")):
        rel = path.relative_to(checkout).as_posix()
        if any(part in (".git", "target", "node_modules") for part in path.parts):
            continue
        area = rel.startswith(POLICY_AREAS) or "/" not in rel
        text = path.read_text("utf-8", "replace")
        items.append(Item(rel, path.parent, path.name, text, area))
    return items


def snippet_items(checkout: Path, scratch: Path) -> list[Item]:
    items = []
    docs = checkout / "docs"
    for page in sorted(docs.rglob("*.md")):
        text = page.read_text("utf-8", "replace")
        for n, match in enumerate(_FENCE.finditer(text), 1):
            indent, body = match.group(1), match.group(2)
            if indent:
                body = "\n".join(line.removeprefix(indent) for line in body.split("\n"))
            label = f"{page.relative_to(checkout).as_posix()}#{n}"
            folder = scratch / f"s{len(items):04d}"
            folder.mkdir()
            (folder / "snippet.lua").write_text(body, "utf-8")
            items.append(Item(label, folder, "snippet.lua", body, False))
    return items


def lua54_error_line(source: str) -> int | None:
    """Line of Lua 5.4's compile error for `source`, or None when it compiles."""
    from lupa import lua54

    runtime = _RUNTIME.get("lua")
    if runtime is None:
        runtime = lua54.LuaRuntime(register_eval=False, register_builtins=False)
        _RUNTIME["lua"] = runtime
        _RUNTIME["load"] = runtime.eval(
            "function(s) local f, e = load(s, '=chunk', 't', {}) return e end"
        )
    err = _RUNTIME["load"](source)
    if err is None:
        return None
    match = re.match(r"chunk:(\d+):", str(err))
    return int(match.group(1)) if match else 1


_RUNTIME: dict[str, object] = {}


def audit_item(item: Item, outcome: Outcome) -> None:
    from auditor.core.errors import AuditError
    from auditor.pipeline.stages import audit_snapshot
    from auditor.source.snapshot import FsSnapshot

    try:
        result = audit_snapshot(FsSnapshot(item.root), entry=item.entry)
    except AuditError as err:  # a one-line error is the contract for bad input
        outcome.modes["refused"] += 1
        print(f"  refused {item.label}: {err}", file=sys.stderr)
        return
    except Exception:
        outcome.internal_errors.append((item.label, traceback.format_exc(limit=3)))
        return
    outcome.audited += 1
    outcome.modes[getattr(result, "mode", "policy")] += 1
    own = [f for f in result.findings if f.path == item.entry and not f.suppressed]
    e101 = [f for f in own if f.code == "E101"]
    expected = lua54_error_line(item.source)
    outcome.e101_checked += 1
    got = e101[0].line if e101 else None
    if (expected is None) != (got is None) or (expected is not None and expected != got):
        outcome.e101_disagree.append((item.label, f"lua54 line {expected}, auditor line {got}"))
    if item.policy_area:
        for f in result.findings:
            if f.severity.value == "error" and not f.suppressed and f.code != "E101":
                where = item.label if f.path == item.entry else f"{item.label} -> {f.path}"
                outcome.errors.append((where, f.code, f.line, f.column, f.message))


def load_reviewed() -> dict[tuple[str, str], list[dict]]:
    reviewed: dict[tuple[str, str], list[dict]] = {}
    if REVIEWED.exists():
        for entry in tomllib.loads(REVIEWED.read_text("utf-8")).get("finding", []):
            reviewed.setdefault((entry["path"], entry["code"]), []).append(entry)
    return reviewed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a KumoMTA work tree")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 on any unexplained result")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every error finding")
    args = parser.parse_args(argv)
    checkout = args.checkout.resolve()
    if not (checkout / "docs").is_dir() or not (checkout / "assets").is_dir():
        print(
            f"error: {checkout} is not a KumoMTA work tree (no docs/ or assets/)", file=sys.stderr
        )
        return 2
    started = time.perf_counter()
    outcome = Outcome()
    with tempfile.TemporaryDirectory(prefix="kumo-fidelity-") as scratch:
        files = lua_items(checkout)
        snippets = snippet_items(checkout, Path(scratch))
        for item in [*files, *snippets]:
            audit_item(item, outcome)
    elapsed = time.perf_counter() - started

    reviewed = load_reviewed()
    explained, unexplained = [], []
    for error in outcome.errors:
        (explained if (error[0], error[1]) in reviewed else unexplained).append(error)
    by_code = Counter(e[1] for e in outcome.errors)
    unexplained_by_code = Counter(e[1] for e in unexplained)

    print(f"KumoMTA checkout: {checkout}")
    print(f"audited: {len(files)} Lua files, {len(snippets)} doc snippets in {elapsed:.1f} s")
    print(f"modes: {dict(sorted(outcome.modes.items()))}")
    print(f"internal errors: {len(outcome.internal_errors)}")
    for label, tb in outcome.internal_errors:
        print(f"  {label}\n    " + tb.strip().replace("\n", "\n    "))
    agree = outcome.e101_checked - len(outcome.e101_disagree)
    print(f"E101 agreement with Lua 5.4: {agree}/{outcome.e101_checked}")
    for label, why in outcome.e101_disagree:
        print(f"  {label}: {why}")
    print(f"error findings on policies and helper modules: {len(outcome.errors)}")
    for code, count in sorted(by_code.items()):
        print(f"  {code}: {count} ({unexplained_by_code.get(code, 0)} unexplained)")
    print(f"explained in {REVIEWED.name}: {len(explained)}; unexplained: {len(unexplained)}")
    for where, code, line, column, message in unexplained if not args.verbose else outcome.errors:
        print(f"  {where}:{line}:{column}: {code} {message[:160]}")
    stale = sorted(key for key in reviewed if key not in {(e[0], e[1]) for e in outcome.errors})
    for path, code in stale:
        print(f"  reviewed but not reported any more: {path} {code}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "lua_files": len(files),
                    "snippets": len(snippets),
                    "internal_errors": len(outcome.internal_errors),
                    "e101_checked": outcome.e101_checked,
                    "e101_disagree": len(outcome.e101_disagree),
                    "errors_by_code": dict(sorted(by_code.items())),
                    "unexplained": len(unexplained),
                    "modes": dict(outcome.modes),
                },
                indent=2,
                sort_keys=True,
            )
            + "\n"
        )
    failed = outcome.internal_errors or outcome.e101_disagree or unexplained
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
