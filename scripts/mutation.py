"""Mutation testing on demand (not part of the default test run), driven by mutmut: how many small
code changes do the tests notice?

    pip install -e '.[mutation]'
    python scripts/mutation.py [--mutants N] [--seed S] [--jobs J] [MODULE ...]

mutmut writes every mutant of a module into a scratch copy of the repository and, for each one, runs
only the tests that reach the mutated function (it learns which from one instrumented run of the
module's tests). This script adds what mutmut leaves out: for each module it samples N of those
mutants (repeatably, from --seed), runs them against the tests mapped to the module in TARGETS, and
prints each survivor as a diff with its line, then the score per module. A mutant is killed when a
test fails or times out; "no tests" counts a mutant that no selected test reaches in-process (tests
that only run the CLI as a subprocess do not teach mutmut what they cover), and it is not killed.
Mutants that only change the text of a message (a string literal with a space in it) are not
sampled: tests pin behaviour, not wording; their number is printed as "prose".

The CPU is the limit: sample few mutants while iterating, or name the modules to look at.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# module -> the tests that exercise it (its own tests first, then the wider ones that also reach it)
TARGETS: dict[str, list[str]] = {
    "auditor/change/changeset.py": [
        "tests/test_changeset_fields.py",
        "tests/test_change_pins.py",
        "tests/test_change_audit.py",
        "tests/test_secret_redaction.py",
    ],
    "auditor/runbook/verify.py": ["tests/test_runbook_verify.py", "tests/test_runbook_signing.py"],
    "auditor/rules/security.py": ["tests/test_rules_security.py"],
    "auditor/rules/references.py": ["tests/test_rules_references.py"],
    "auditor/rules/reload.py": [
        "tests/test_rules_reload.py",
        "tests/test_computed_values.py",
        "tests/test_fidelity_fixes.py",
    ],
    "auditor/rules/delivery.py": ["tests/test_rules_delivery.py"],
    "auditor/kumo/monitor.py": [
        "tests/test_monitor_globs.py",
        "tests/test_computed_values.py",
        "tests/test_rules_reload.py",
        "tests/test_changeset_fields.py",
    ],
    "auditor/lua/literal.py": [
        "tests/test_lua_literal.py",
        "tests/test_lua_literal_lua54.py",
        "tests/test_computed_values.py",
    ],
    "auditor/rules/api_use.py": ["tests/test_rules_api_use.py", "tests/test_rules_reload.py"],
    "auditor/rules/change.py": [
        "tests/test_change_rules.py",
        "tests/test_change_pins.py",
        "tests/test_audited_state.py",
    ],
}

KILLED = {1, 3}  # a test failed (3: pytest's internal error, as mutmut counts it)
TIMEOUT = {36, 24, -24, 152, 255}  # mutmut's timeout codes: a hang is noticed too
SURVIVED = 0
NO_TESTS = {5, 33}


def _mutmut() -> str:
    beside = Path(sys.executable).parent / "mutmut"
    found = str(beside) if beside.exists() else shutil.which("mutmut")
    if not found:
        sys.exit("mutmut is not installed: pip install -e '.[mutation]'")
    return found


def _tracked_files() -> list[str]:
    proc = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in proc.stdout.splitlines() if (ROOT / line).is_file()]


def _scratch_copy(dest: Path, module: str, tests: list[str]) -> None:
    """The repository's files (as Git sees them) under `dest`, with mutmut configured for `module`."""
    files = _tracked_files()
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    # everything a test may read beside the package: fixtures, examples, schemas, hooks...
    (dest / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    also_copy = sorted({rel.split("/", 1)[0] for rel in files} - {"auditor", "pyproject.toml"})
    also_copy.append("sitecustomize.py")
    config = {
        "source_paths": ["auditor"],
        "only_mutate": [module],
        "also_copy": also_copy,
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-x"],
        # each mutant in a process that has run no test: module-level caches (lru_cache) filled by
        # the original code would otherwise hide the mutant
        "process_isolation": "forkserver",
    }
    with (dest / "pyproject.toml").open("a", encoding="utf-8") as out:
        out.write("\n[tool.mutmut]\n")
        for key, value in config.items():
            out.write(f"{key} = {json.dumps(value)}\n")


# Imported first by mutmut's own processes and by every Python subprocess a test starts. mutmut
# calls each function through a trampoline (two more frames per call), so the recursion limit is
# raised for tests that nest deeply. While mutmut learns which tests reach which function, a
# subprocess runs the original code, as it could not report what it reached anyway.
SITECUSTOMIZE = """import os
import sys
sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    os.environ["MUTANT_UNDER_TEST"] = ""
"""


GENERATE_ONLY = "__generate_only__"


def _run_mutmut(workdir: Path, names: list[str], jobs: int, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [_mutmut(), "run", "--max-children", str(jobs), *names],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    generated = (workdir / "mutants" / "mutmut-stats.json").exists()
    if names[0].endswith(GENERATE_ONLY) and generated and "nothing matches" in proc.stderr:
        return  # mutants written and tests mapped; the name matched no mutant, as intended
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"mutmut run failed ({proc.returncode}):\n{tail}")


@dataclass
class Mutant:
    name: str  # mutmut's name: <dotted module>.<mangled function>__mutmut_<n>
    prose: bool  # only the text of a message changed (a string literal with a space in it)
    diff: list[str]  # "<line>: -old" / "<line>: +new", lines of the original module


def _functions(
    tree: ast.AST, mangle: bool = True
) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function of a module by mutmut's mangled name (x_f, or xǁClassǁf for a method);
    `mangle=False` for the module mutmut wrote, whose mutants carry those names already."""
    out: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out[f"x_{node.name}" if mangle else node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    name = f"x\u01c1{node.name}\u01c1{item.name}" if mangle else item.name
                    out[name] = item
    return out


def _message_nodes(function: ast.AST) -> set[int]:
    """Positions (in ast.walk order) of the nodes that only make the wording of a finding: the
    third argument of `RULE.finding(path, span, message, key=...)`, and the value of every local
    that is read nowhere else (`what = ...` used only in messages)."""
    nodes = list(ast.walk(function))
    inside: set[int] = set()
    for node in nodes:
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "finding"
            and len(node.args) >= 3
        ):
            inside |= {id(n) for n in ast.walk(node.args[2])}
    assigns = [
        n
        for n in nodes
        if isinstance(n, ast.Assign) and all(isinstance(t, ast.Name) for t in n.targets)
    ]
    changed = True
    while changed:  # a local read only inside wording is wording too
        changed = False
        for assign in assigns:
            if id(assign.value) in inside:
                continue
            names = {t.id for t in assign.targets}  # type: ignore[attr-defined]
            reads = [
                n
                for n in nodes
                if isinstance(n, ast.Name) and n.id in names and isinstance(n.ctx, ast.Load)
            ]
            if reads and all(id(r) in inside for r in reads):
                inside |= {id(n) for n in ast.walk(assign.value)}
                changed = True
    return {i for i, n in enumerate(nodes) if id(n) in inside}


def _only_prose(orig: ast.AST, mutant: ast.AST) -> bool:
    """True when the two functions differ only in the wording of messages: string literals holding
    prose (with a space), or anything inside the message argument of a finding."""
    a, b = list(ast.walk(orig)), list(ast.walk(mutant))
    if len(a) != len(b):
        return False
    messages = _message_nodes(orig)
    changed = False
    for index, (x, y) in enumerate(zip(a, b, strict=True)):
        if index == 0:
            continue  # the def, renamed in every mutant
        if type(x) is not type(y):
            if index not in messages:
                return False
            changed = True
            continue
        for name, value in ast.iter_fields(x):
            other = getattr(y, name)
            if isinstance(value, ast.AST | list) or value == other:
                continue
            prose = name == "value" and isinstance(value, str) and " " in value.strip()
            if not (prose or index in messages):
                return False
            changed = True
    return changed


def _mutants(workdir: Path, module: str, names: list[str]) -> list[Mutant]:
    """What each mutant changes, read from the module mutmut wrote and the original."""
    source = (workdir / module).read_text(encoding="utf-8")
    original = _functions(ast.parse(source))
    mutated_text = (workdir / "mutants" / module).read_text(encoding="utf-8")
    mutated = _functions(ast.parse(mutated_text), mangle=False)
    lines = mutated_text.splitlines()
    dotted = module.removesuffix(".py").replace("/", ".")
    out = []
    for name in names:
        function = name.removeprefix(dotted + ".")
        base = function.rsplit("__mutmut_", 1)[0]
        orig, mut, home = (
            mutated.get(base + "__mutmut_orig"),
            mutated.get(function),
            original.get(base),
        )
        if orig is None or mut is None or home is None:
            out.append(Mutant(name, False, []))
            continue
        old = lines[orig.lineno - 1 : orig.end_lineno]
        new = lines[mut.lineno - 1 : mut.end_lineno]
        diff = []
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new).get_opcodes():
            if tag == "equal":
                continue
            diff += [f"{home.lineno + i}: -{old[i].strip()}" for i in range(max(i1, 1), i2)]
            first = max(i1, 1)  # line 0 is the def, renamed in every mutant
            diff += [f"{home.lineno + first}: +{new[j].strip()}" for j in range(max(j1, 1), j2)]
        out.append(Mutant(name, _only_prose(orig, mut), diff))
    return out


def score_module(
    module: str, tests: list[str], mutants: int, seed: int, jobs: int, tmp: Path, show: bool
) -> tuple[int, int, int, int, int, float]:
    """(sampled, killed, survived, no tests, prose mutants left out, seconds) for one module;
    survivors printed."""
    start = time.monotonic()
    workdir = tmp / module.replace("/", "_")
    _scratch_copy(workdir, module, tests)
    site = workdir / ".mutation-site"  # not a source path: mutmut keeps it on sys.path
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = {**os.environ, "NO_COLOR": "1", "KUMO_AUDIT_NO_CACHE": "1", "PYTHONPATH": str(site)}
    dotted = module.removesuffix(".py").replace("/", ".")
    # First pass: mutmut writes every mutant of the module and learns which test reaches which
    # function (one run of the tests); a name that matches no mutant stops it there.
    _run_mutmut(workdir, [f"{dotted}.{GENERATE_ONLY}"], jobs, env)
    meta = workdir / "mutants" / (module + ".meta")
    every = _mutants(workdir, module, sorted(json.loads(meta.read_text())["exit_code_by_key"]))
    behaviour = [m for m in every if not m.prose]
    rng = random.Random(f"{seed}:{module}")
    chosen = sorted(rng.sample(behaviour, min(mutants, len(behaviour))), key=lambda m: m.name)
    if chosen:
        _run_mutmut(workdir, [m.name for m in chosen], jobs, env)
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    killed = [m for m in chosen if codes[m.name] in KILLED | TIMEOUT]
    no_tests = [m for m in chosen if codes[m.name] in NO_TESTS]
    for mutant in chosen:
        if mutant in killed:
            continue
        status = "no tests" if mutant in no_tests else "survived"
        print(f"  {status}: {mutant.name.removeprefix(dotted + '.')}")
        if show:
            for text in mutant.diff:
                print(f"      {module}:{text}")
    shutil.rmtree(workdir, ignore_errors=True)
    survived = len(chosen) - len(killed) - len(no_tests)
    prose = len(every) - len(behaviour)
    return len(chosen), len(killed), survived, len(no_tests), prose, time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules (default: every module in TARGETS)")
    parser.add_argument("--mutants", type=int, default=20, help="sampled mutants per module")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once")
    parser.add_argument("--no-diff", action="store_true", help="name survivors without their diff")
    args = parser.parse_args()
    modules = args.modules or list(TARGETS)
    unknown = [m for m in modules if m not in TARGETS]
    if unknown:
        print(f"no tests mapped in TARGETS for: {', '.join(unknown)}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="kumo-audit-mutation-") as tmp:
        for module in modules:
            print(f"{module}:", flush=True)
            try:
                row = score_module(
                    module,
                    TARGETS[module],
                    args.mutants,
                    args.seed,
                    args.jobs,
                    Path(tmp),
                    not args.no_diff,
                )
            except RuntimeError as exc:
                print(f"  {exc}", file=sys.stderr)
                continue
            rows.append((module, *row))
            sys.stdout.flush()
    print(
        f"\n{'module':32} {'mutants':>7} {'killed':>6} {'survived':>8} {'no tests':>8} "
        f"{'score':>6} {'prose':>6} {'seconds':>8}"
    )
    total = killed_all = 0
    for module, sampled, killed, survived, no_tests, prose, seconds in rows:
        score = 100.0 * killed / sampled if sampled else 100.0
        total, killed_all = total + sampled, killed_all + killed
        print(
            f"{module:32} {sampled:7} {killed:6} {survived:8} {no_tests:8} {score:5.0f}% "
            f"{prose:6} {seconds:8.0f}"
        )
    if total:
        print(
            f"{'overall':32} {total:7} {killed_all:6} {'':8} {'':8} {100 * killed_all / total:5.0f}%"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
