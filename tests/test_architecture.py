"""The import graph of the code base: no cycles, device kinds that never import each other, pure
parsers, results that do not reach up into the devices.

Imports are read with `ast` from every module of harness/ and targets/, including those inside
functions. Imports under `if TYPE_CHECKING:` are left out: they never run, and a type named in an
annotation (a kind receiving the plan's `Job`) is not a dependency. targets/ modules are scripts
that import each other by bare name (the runner ships them side by side), so a bare name that is a
file in targets/ is that module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.devices import KINDS
from testutil import ROOT

Graph = dict[str, set[str]]


def module_files(package: str) -> dict[str, Path]:
    """Module name → file, for every .py file under ROOT/package."""
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    """Every module name an import statement asks for (`from X import name`: X.name, which
    resolves to X when name is not a module)."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".strip(".")
            names.extend(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def resolve(name: str, modules: set[str], bare: dict[str, str]) -> str | None:
    """The project module an imported name is: itself, its longest known prefix, or a targets/
    script imported by bare name."""
    if name.split(".")[0] in bare:
        return bare[name.split(".")[0]]
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph(*packages: str) -> Graph:
    files: dict[str, Path] = {}
    for package in packages:
        files.update(module_files(package))
    bare = {name.split(".", 1)[1]: name for name in files if name.startswith("targets.")}
    graph: Graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        local_bare = bare if module.startswith("targets.") else {}
        edges = set()
        for name in imported_names(tree, module, path.name == "__init__.py"):
            target = resolve(name, set(files), local_bare)
            if target is not None and target != module:
                edges.add(target)
        graph[module] = edges
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


@pytest.fixture(scope="module")
def harness_graph() -> Graph:
    return import_graph("harness")


def test_the_walker_sees_function_level_imports_and_skips_type_checking(harness_graph: Graph,
                                                                        ) -> None:
    # orchestrate.run_plan imports harness.transport inside the function
    assert "harness.transport" in harness_graph["harness.orchestrate"]
    # a device kind names the plan's Job under TYPE_CHECKING only
    assert "harness.plan" not in harness_graph["harness.devices.cpu"]
    assert "harness.devices" in harness_graph["harness.plan"]


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_harness(harness_graph: Graph) -> None:
    assert cycles(harness_graph) == []


def test_no_import_cycles_in_targets() -> None:
    assert cycles(import_graph("targets")) == []


def test_device_kinds_never_import_each_other(harness_graph: Graph) -> None:
    kind_modules = {type(kind).__module__ for kind in KINDS.values()}
    assert kind_modules == {f"harness.devices.{name}" for name in KINDS}
    devices = [m for m in harness_graph if m.startswith("harness.devices.")]
    offenders = {m: sorted(harness_graph[m] & (kind_modules - {m})) for m in devices}
    assert {m: found for m, found in offenders.items() if found} == {}


def test_parsers_are_pure(harness_graph: Graph) -> None:
    """Parsers import nothing of the harness but its errors and each other."""
    for module, edges in harness_graph.items():
        if module.startswith("harness.parsers"):
            assert {e for e in edges if not e.startswith("harness.parsers")} <= {"harness.errors"}, \
                module


def test_results_and_artifacts_do_not_reach_up_into_devices(harness_graph: Graph) -> None:
    for module, edges in harness_graph.items():
        if module.startswith(("harness.results", "harness.artifacts", "harness.parsers")):
            assert not {e for e in edges if e.startswith(("harness.devices", "harness.plan",
                                                          "harness.orchestrate"))}, module
