"""Device-side code stays runnable on old devices (Python 3.7, numpy 1.16 on Coral Mendel).

Every targets/*.py, and every program the controller sends to a device as source text (the
target probe, the Edge TPU probe), is parsed as Python 3.7 (the parser rejects walrus, match,
positional-only parameters, f-string `=`, parenthesized context managers, except*), then walked for
the cheaply detectable newer APIs. An import of a newer module inside `try:` with an `except
ImportError` is a guarded fallback, not a use. Not detected: `|` on dicts and other runtime-only
differences.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TARGET_FILES = sorted((ROOT / "targets").glob("*.py"))
PYTHON = (3, 7)

# method names that do not exist on 3.7 / numpy 1.16, whatever object they are called on
NEWER_METHODS = {"removeprefix": "str.removeprefix (Python 3.9)",
                 "removesuffix": "str.removesuffix (Python 3.9)",
                 "default_rng": "numpy.random.default_rng (numpy 1.17; use RandomState)",
                 "is_relative_to": "PurePath.is_relative_to (Python 3.9)",
                 "bit_count": "int.bit_count (Python 3.10)"}
# module attributes newer than 3.7 / numpy 1.16 (module name as written in the code)
NEWER_ATTRIBUTES = {("math", "prod"): "3.8", ("math", "isqrt"): "3.8", ("math", "dist"): "3.8",
                    ("math", "comb"): "3.8", ("math", "perm"): "3.8",
                    ("statistics", "fmean"): "3.8", ("statistics", "quantiles"): "3.8",
                    ("statistics", "geometric_mean"): "3.8", ("shlex", "join"): "3.8",
                    ("functools", "cached_property"): "3.8", ("functools", "cache"): "3.9",
                    ("random", "Generator"): "numpy 1.17", ("typing", "Literal"): "3.8",
                    ("typing", "Protocol"): "3.8", ("typing", "TypedDict"): "3.8",
                    ("typing", "Final"): "3.8", ("typing", "final"): "3.8",
                    ("typing", "runtime_checkable"): "3.8", ("typing", "TypeAlias"): "3.10",
                    ("typing", "ParamSpec"): "3.10", ("typing", "Self"): "3.11"}
NEWER_MODULES = {"importlib.metadata": "3.8", "zoneinfo": "3.9", "graphlib": "3.9",
                 "tomllib": "3.11", "numpy.typing": "numpy 1.20"}
# keyword arguments newer than 3.7 / numpy 1.16 on the named call
NEWER_KEYWORDS = {("zip", "strict"): "3.10", ("quantile", "method"): "numpy 1.22",
                  ("percentile", "method"): "numpy 1.22", ("unlink", "missing_ok"): "3.8"}
BUILTIN_GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}


def _called_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _annotation_nodes(tree: ast.AST) -> set[int]:
    """ids of every node inside an annotation."""
    roots: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return {id(inner) for root in roots for inner in ast.walk(root)}


def _guarded_imports(tree: ast.AST) -> set[int]:
    """ids of import statements in a `try:` body whose handlers catch ImportError."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        names = set()
        for handler in node.handlers:
            kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            names |= {getattr(k, "id", None) for k in kinds}
        if names & {"ImportError", "ModuleNotFoundError"}:
            guarded |= {id(inner) for stmt in node.body for inner in ast.walk(stmt)
                        if isinstance(inner, (ast.Import, ast.ImportFrom))}
    return guarded


def _postponed(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
               and any(alias.name == "annotations" for alias in node.names) for node in tree.body)


def newer_than_37(source: str, filename: str = "<source>") -> list[str]:
    """What in `source` needs more than Python 3.7 / numpy 1.16 (empty when nothing found)."""
    try:
        tree = ast.parse(source, filename, feature_version=PYTHON)
    except SyntaxError as exc:
        return [f"{filename}:{exc.lineno}: {exc.msg}"]
    found = []
    in_annotation = _annotation_nodes(tree)
    postponed = _postponed(tree)
    guarded = _guarded_imports(tree)

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr in NEWER_METHODS:
                flag(node, NEWER_METHODS[node.attr])
            owner = node.value.attr if isinstance(node.value, ast.Attribute) else \
                getattr(node.value, "id", None)
            if (owner, node.attr) in NEWER_ATTRIBUTES:
                flag(node, f"{owner}.{node.attr} ({NEWER_ATTRIBUTES[owner, node.attr]})")
        elif isinstance(node, ast.Name) and node.id in NEWER_METHODS:
            flag(node, NEWER_METHODS[node.id])
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) in guarded:
            continue
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if full in NEWER_MODULES or module in NEWER_MODULES:
                    flag(node, f"import {full} ({NEWER_MODULES.get(full) or NEWER_MODULES[module]})")
                elif (module.split(".")[-1], alias.name) in NEWER_ATTRIBUTES:
                    flag(node, f"from {module} import {alias.name} "
                         f"({NEWER_ATTRIBUTES[module.split('.')[-1], alias.name]})")
                elif alias.name in NEWER_METHODS:
                    flag(node, NEWER_METHODS[alias.name])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in NEWER_MODULES:
                    flag(node, f"import {alias.name} ({NEWER_MODULES[alias.name]})")
        elif isinstance(node, ast.Call):
            name = _called_name(node.func)
            for keyword in node.keywords:
                if (name, keyword.arg) in NEWER_KEYWORDS:
                    flag(node, f"{name}({keyword.arg}=...) ({NEWER_KEYWORDS[name, keyword.arg]})")
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                and node.value.id in BUILTIN_GENERICS:
            if id(node) not in in_annotation:
                flag(node, f"{node.value.id}[...] evaluated at run time (Python 3.9)")
            elif not postponed:
                flag(node, f"{node.value.id}[...] in an annotation without "
                           "`from __future__ import annotations` (Python 3.9)")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) \
                and id(node) in in_annotation and not postponed:
            flag(node, "X | Y in an annotation without `from __future__ import annotations` "
                       "(Python 3.10)")
    return found


def test_targets_are_found() -> None:
    names = {path.name for path in TARGET_FILES}
    assert {"runner.py", "job.py", "backends.py", "measure.py", "opsplit.py"} <= names


@pytest.mark.parametrize("path", TARGET_FILES, ids=lambda path: path.name)
def test_device_code_runs_on_python37_and_numpy116(path: Path) -> None:
    assert newer_than_37(path.read_text(), path.name) == []


@pytest.mark.parametrize("source", [
    "if (n := 3): pass",
    "def f(a, /): pass",
    "match x:\n    case 1: pass",
    "y = f'{x=}'",
    "name = 'runner.py'.removeprefix('run')",
    "import numpy as np\nrng = np.random.default_rng(0)",
    "from numpy.random import default_rng",
    "from typing import Protocol",
    "from functools import cached_property",
    "import importlib.metadata",
    "import math\nn = math.prod([1, 2])",
    "for a, b in zip(x, y, strict=True): pass",
    "import numpy as np\nq = np.quantile([1.0], 0.5, method='linear')",
    "def f(x: list[int]) -> None: pass",
    "def f(x: int | None) -> None: pass",
    "from __future__ import annotations\nsizes = list[int]",
    "try:\n    from importlib import metadata\nexcept ValueError:\n    pass",
])
def test_the_checker_flags_newer_code(source: str) -> None:
    assert newer_than_37(source), source


def device_programs() -> dict[str, str]:
    """Programs the controller sends to a device as source text, by name."""
    from harness import probe
    from harness.devices import edgetpu

    return {"harness.probe.PROBE_SCRIPT": probe.PROBE_SCRIPT,
            "harness.devices.edgetpu.PROBE_SCRIPT": edgetpu.PROBE_SCRIPT}


@pytest.mark.parametrize("name", sorted(device_programs()))
def test_programs_sent_to_devices_run_on_python37(name: str) -> None:
    assert newer_than_37(device_programs()[name], name) == []


@pytest.mark.parametrize("source", [
    "from __future__ import annotations\ndef f(x: list[int] | None) -> dict[str, int]: pass",
    "try:\n    from importlib import metadata\nexcept ImportError:\n    metadata = None",
    "import numpy as np\nrng = np.random.RandomState(0)\np = np.prod([1, 2])",
    "from typing import Any, Dict, Optional",
    "name = 'runner.py'.split('.')[0]",
])
def test_the_checker_accepts_37_code(source: str) -> None:
    assert newer_than_37(source) == []


def _imports(path: Path) -> set[str]:
    """Top-level module names `path` imports (anywhere in the file, lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - {"__future__"}


DEVICE_PACKAGES = {"numpy", "ai_edge_litert", "tflite_runtime", "tensorflow", "onnxruntime",
                   "serial"}


def test_device_code_imports_the_standard_library_numpy_and_runtimes_only() -> None:
    import sys

    local = {path.stem for path in TARGET_FILES}
    for path in TARGET_FILES:
        foreign = _imports(path) - local - DEVICE_PACKAGES - set(sys.stdlib_module_names)
        assert not foreign, f"{path.name} imports {sorted(foreign)}"


def test_device_modules_have_no_import_cycle() -> None:
    import graphlib

    local = {path.stem for path in TARGET_FILES}
    graph = {path.stem: _imports(path) & local for path in TARGET_FILES}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError on a cycle
    assert "runner" not in graph["opsplit"] and "runner" not in graph["job"]
