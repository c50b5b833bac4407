"""The package's import graph is a DAG, in layers: cli -> commands -> engine/evaluate -> models/degradations/metrics
-> registry/io. Every ``import`` counts, also the ones inside functions (a lazy import hides a cycle, it does not
remove it); only ``if TYPE_CHECKING:`` blocks are left out. Built-ins reach the registries by module name
(``Registry.builtins``) and trainers by ``"module:function"`` strings, which is how the engine stays model-free.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import uirbench

ROOT = Path(uirbench.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(name: str) -> set[str]:
    """The uirbench modules that module ``name`` imports anywhere in its body."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], *filter(None, [base])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_lazy_imports():
    assert "uirbench.uir_lora.backbone" in GRAPH["uirbench.uir_lora.train"]  # imported inside functions only


def test_the_package_import_graph_has_no_cycle():
    assert _cycles(GRAPH) == []


def _reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in GRAPH[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


MODEL_CODE = ("uirbench.baselines", "uirbench.uir_lora", "uirbench.models")


@pytest.mark.parametrize("module", ["uirbench.engine", "uirbench.train", "uirbench.runs", "uirbench.recipes"])
def test_the_training_engine_and_command_import_no_model_code(module):
    leaks = sorted(m for m in _reachable(module) if m.startswith(MODEL_CODE))
    assert leaks == []


@pytest.mark.parametrize("module", ["uirbench.registry", "uirbench.errors", "uirbench.io", "uirbench.options",
                                    "uirbench.provenance", "uirbench.manifest"])
def test_the_bottom_layer_imports_nothing_above_it(module):
    above = ("uirbench.cli", "uirbench.evaluate", "uirbench.engine", "uirbench.train", "uirbench.generate",
             "uirbench.leaderboard", *MODEL_CODE, "uirbench.degradations", "uirbench.metrics")
    assert sorted(m for m in _reachable(module) if m.startswith(above)) == []


def test_only_cli_modules_import_the_cli():
    importers = sorted(m for m, deps in GRAPH.items() if "uirbench.cli" in deps)
    assert importers == []
