"""The package is layered: each subpackage imports only the layers below it, and no module imports
itself through others (no cycles). Built from the source's import statements, including imports
inside functions and type-checking blocks; only a module's `if __name__ == "__main__":` block (a
script entry point) is exempt."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "auditor"

# Lowest first. A module may import modules of its own layer's package and of lower layers; layers
# that share a rank (render and runbook; commands and daemon) do not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("core",),
    ("source",),
    ("config",),
    ("lua",),
    ("kumo",),
    ("data",),
    ("rules",),
    ("filter",),
    ("pipeline",),
    ("change",),
    ("render", "runbook"),
    ("commands", "daemon"),
    ("cli",),
    ("__main__",),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def imports_of(path: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import of an `auditor` module in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    body = [node for node in tree.body if not _is_main_guard(node)]
    for node in (n for top in body for n in ast.walk(top)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "auditor":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "auditor":
                continue
            for alias in node.names:  # `from auditor.x import y` may import the module auditor.x.y
                sub = f"{target}.{alias.name}"
                yield (sub if _exists(sub) else target), node.lineno


def _exists(module: str) -> bool:
    rel = Path(*module.split("."))
    return (ROOT / rel.with_suffix(".py")).is_file() or (ROOT / rel / "__init__.py").is_file()


def layer_of(module: str) -> str | None:
    """The layer (top-level subpackage or module) of `auditor.x...`; None for `auditor` itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def graph() -> dict[str, set[tuple[str, int]]]:
    return {
        module_name(path): set(imports_of(path))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def test_every_top_level_module_and_package_has_a_layer() -> None:
    top = {p.stem if p.suffix == ".py" else p.name for p in PACKAGE.iterdir()}
    top -= {"__init__", "__pycache__", "py.typed"}
    unknown = sorted(name for name in top if name not in RANK)
    assert unknown == [], f"not in a layer: {unknown} (auditor/ holds cli.py and subpackages only)"


def test_no_import_goes_up_or_across_a_layer() -> None:
    wrong = []
    for module, targets in graph().items():
        own = layer_of(module)
        if own is None:
            continue
        for target, line in sorted(targets):
            theirs = layer_of(target)
            if theirs is None or theirs == own:
                continue  # `from auditor import __version__`; the module's own layer
            if RANK[theirs] >= RANK[own]:
                wrong.append(f"{module}:{line} imports {target} ({own} -> {theirs})")
    assert wrong == [], "imports that go up or across a layer:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    edges = {m: {t for t, _ in targets if t != m} for m, targets in graph().items()}
    cycles = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_violations(tmp_path: Path) -> None:
    """The graph is built from real import statements, lazy ones included."""
    imports = dict(imports_of(PACKAGE / "pipeline" / "api.py"))
    assert "auditor.pipeline.stages" in imports  # imported inside a function
    assert "auditor.config.settings" in imports
