"""Mutation testing on demand (not part of the default test run): how many small code changes do the
tests notice?

    python scripts/mutation.py [--mutants N] [--seed S] [--timeout SECONDS] [MODULE ...]

For each module, N mutation sites are sampled (comparison and boolean operators swapped, `not`
dropped, constants changed, arithmetic flipped); each mutant is written into a scratch copy of the
repository and the module's own tests run against it. A mutant the tests fail on is killed; one they
pass is a survivor, printed with its line so a test can pin the behaviour. Prints the score per module.
CPU is the limit: sample few mutants, or name the modules to look at.
"""

from __future__ import annotations

import argparse
import ast
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# module -> the tests that exercise it
TARGETS: dict[str, list[str]] = {
    "auditor/change/changeset.py": ["tests/test_change_audit.py", "tests/test_secret_redaction.py"],
    "auditor/runbook/verify.py": ["tests/test_runbook_verify.py"],
    "auditor/rules/security.py": ["tests/test_rules_security.py"],
    "auditor/core/secrets.py": ["tests/test_rules_security.py"],
    "auditor/filter/codes.py": ["tests/test_unknown_codes.py"],
    "auditor/rules/reload.py": ["tests/test_rules_reload.py"],
    "auditor/rules/references.py": ["tests/test_rules_references.py"],
    "auditor/rules/delivery.py": ["tests/test_rules_delivery.py"],
    "auditor/lua/literal.py": ["tests/test_lua_literal.py"],
}

SWAPS: dict[type, type] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.And: ast.Or,
    ast.Or: ast.And,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
}


@dataclass(frozen=True)
class Site:
    index: int  # position among the mutable nodes of the module, in ast.walk order
    line: int
    what: str


def _mutable(node: ast.AST) -> str | None:
    if isinstance(node, ast.Compare) and type(node.ops[0]) in SWAPS:
        return f"{type(node.ops[0]).__name__} -> {SWAPS[type(node.ops[0])].__name__}"
    if isinstance(node, ast.BoolOp):
        return f"{type(node.op).__name__} -> {SWAPS[type(node.op)].__name__}"
    if isinstance(node, ast.BinOp) and type(node.op) in SWAPS:
        return f"{type(node.op).__name__} -> {SWAPS[type(node.op)].__name__}"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return "drop `not`"
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return f"{node.value} -> {not node.value}"
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return f"{node.value} -> {node.value + 1}"
    return None


def _docstrings(tree: ast.Module) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            out.add(id(body[0].value))
    return out


def sites(source: str) -> list[Site]:
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = []
    for index, node in enumerate(ast.walk(tree)):
        what = _mutable(node) if id(node) not in skip else None
        if what:
            found.append(Site(index, getattr(node, "lineno", 0), what))
    return found


def mutate(source: str, site: Site) -> str:
    tree = ast.parse(source)
    node = list(ast.walk(tree))[site.index]
    if isinstance(node, ast.Compare):
        node.ops[0] = SWAPS[type(node.ops[0])]()
    elif isinstance(node, ast.BoolOp | ast.BinOp):
        node.op = SWAPS[type(node.op)]()
    elif isinstance(node, ast.UnaryOp):
        _replace(tree, node, node.operand)
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        node.value = not node.value
    elif isinstance(node, ast.Constant):
        node.value = node.value + 1
    return ast.unparse(ast.fix_missing_locations(tree))


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    """Put `new` where `old` is in its parent."""
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new
                        return


def run_tests(workdir: Path, tests: list[str], timeout: float) -> bool:
    """True when the tests pass (the mutant survives)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=workdir,
            capture_output=True,
            timeout=timeout,
            env={
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(workdir),
                "NO_COLOR": "1",
                "HOME": str(workdir),
                "KUMO_AUDIT_NO_CACHE": "1",
            },
        )
    except subprocess.TimeoutExpired:
        return False  # a hang is noticed
    return proc.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules (default: all targets)")
    parser.add_argument("--mutants", type=int, default=8, help="sampled mutants per module")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    modules = args.modules or list(TARGETS)
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kumo-audit-mutation-") as tmp:
        work = Path(tmp) / "repo"
        shutil.copytree(
            ROOT, work, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", ".ruff_cache")
        )
        for module in modules:
            tests = TARGETS.get(module)
            if tests is None:
                print(f"{module}: no tests mapped in TARGETS", file=sys.stderr)
                continue
            original = (ROOT / module).read_text()
            chosen = sorted(
                rng.sample(sites(original), min(args.mutants, len(sites(original)))),
                key=lambda s: s.line,
            )
            killed, survivors = 0, []
            start = time.monotonic()
            for site in chosen:
                (work / module).write_text(mutate(original, site))
                if run_tests(work, tests, args.timeout):
                    survivors.append(site)
                else:
                    killed += 1
            (work / module).write_text(original)
            score = 100.0 * killed / len(chosen) if chosen else 100.0
            rows.append((module, len(chosen), killed, score, time.monotonic() - start))
            for site in survivors:
                print(f"  survived: {module}:{site.line}: {site.what}")
    print(f"{'module':40} {'mutants':>7} {'killed':>6} {'score':>6} {'seconds':>8}")
    for module, total, killed, score, seconds in rows:
        print(f"{module:40} {total:7} {killed:6} {score:5.0f}% {seconds:8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
