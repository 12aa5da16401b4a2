"""Every error kind the code can produce is an `ErrorKind`, and every `ErrorKind` is documented in
docs/CONTRACTS.md with its exit class, and nothing else is.

The raise sites are read with `ast` from harness/ and targets/: `kind=` of any `...Error(...)`
call, `error_kind=` of any call (`failure_row`, `make_row`, `Artifact`), the first argument of the
device-side errors (`RunnerError`, `OpSplitError`, `SerialError`, `_error`), the kind argument of
`error_result`, defaults of `getattr(exc, "kind", ...)` / `error.get("kind", ...)`, `ErrorKind.X`
attributes, and the `board_<kind>` rows made from what the Arduino sketch reports.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from harness.errors import (ErrorKind, ExitCode, HarnessError, InfraError, UserError, exit_code_of,
                            is_fatal, run_exit_code)
from testutil import ROOT

DEVICE_ERRORS = {"RunnerError", "OpSplitError", "SerialError", "_error"}
SKETCH = ROOT / "targets" / "arduino" / "harness_tflm.ino.in"
CLASS_NAMES = {ExitCode.OK: "model", ExitCode.USER: "user", ExitCode.INFRA: "infra",
               ExitCode.INTERNAL: "internal", ExitCode.INTERRUPTED: "interrupted"}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _kinds_of(value: ast.expr) -> tuple[list[str], bool]:
    """(kinds, board): the literal kinds an expression can be (a string, a default of getattr /
    .get, an ErrorKind member, either side of a conditional); `board` for f"board_{...}"."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return [value.value] if value.value else [], False  # "": no kind (a comparison cell)
    if isinstance(value, ast.Attribute) and _name(value.value) == "ErrorKind":
        return [ErrorKind[value.attr].value], False
    if isinstance(value, ast.IfExp):
        body, _ = _kinds_of(value.body)
        orelse, _ = _kinds_of(value.orelse)
        return body + orelse, False
    if isinstance(value, ast.Call) and len(value.args) == 2 + (_name(value.func) == "getattr") \
            and _name(value.func) in ("getattr", "get"):
        key, default = value.args[-2], value.args[-1]
        if isinstance(key, ast.Constant) and key.value == "kind":
            return _kinds_of(default)
    if isinstance(value, ast.JoinedStr) and isinstance(value.values[0], ast.Constant) \
            and value.values[0].value == "board_":
        return [], True
    return [], False


def raised_kinds() -> dict[str, set[str]]:
    """Every literal error kind in harness/ and targets/ -> where ("file:line")."""
    found: dict[str, set[str]] = {}
    board = False

    def add(kinds: list[str], path: Path, node: ast.AST) -> None:
        for kind in kinds:
            found.setdefault(kind, set()).add(f"{path.relative_to(ROOT)}:{node.lineno}")

    for path in sorted((ROOT / "harness").rglob("*.py")) + sorted((ROOT / "targets").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            for keyword in node.keywords:
                if keyword.arg == "error_kind" or (keyword.arg == "kind" and name.endswith("Error")):
                    kinds, is_board = _kinds_of(keyword.value)
                    add(kinds, path, node)
                    board |= is_board
            if name in DEVICE_ERRORS and node.args:
                add(_kinds_of(node.args[0])[0], path, node)
            if name == "error_result" and len(node.args) > 1:
                add(_kinds_of(node.args[1])[0], path, node)
    assert board, "the Arduino board_<kind> rows were not found"
    for kind in re.findall(r'\b(?:fail|report)\("([a-z_]+)"', SKETCH.read_text()):
        found.setdefault(f"board_{kind}", set()).add(str(SKETCH.relative_to(ROOT)))
    return found


def documented_kinds() -> dict[str, str]:
    """kind -> exit class column of the table in docs/CONTRACTS.md "Error kinds"."""
    text = (ROOT / "docs" / "CONTRACTS.md").read_text()
    section = text[text.index("## Error kinds"):]
    section = section[:section.index("\n## ", 1)]
    rows = re.findall(r"^\| ([a-z_0-9]+) \| ([a-z, ]+) \| .+ \|$", section, re.MULTILINE)
    assert rows and rows[0] == ("kind", "exit class"), "no error kind table in docs/CONTRACTS.md"
    return dict(rows[1:])


def test_the_walker_finds_known_raise_sites() -> None:
    found = raised_kinds()
    assert any(site.startswith("harness/transport/ssh.py") for site in found["hostkey"])
    assert any(site.startswith("targets/backends.py") for site in found["runtime_missing"])
    assert any(site.startswith("targets/opsplit.py") for site in found["capture"])
    assert "runner_crash" in found and "board_model_version" in found   # .get default, sketch
    assert "build_failed" in found and "internal_error" in found        # ErrorKind members


def test_every_raised_kind_is_an_error_kind() -> None:
    unknown = {kind: sorted(sites) for kind, sites in raised_kinds().items()
               if kind not in set(ErrorKind)}
    assert unknown == {}


def test_every_error_kind_is_documented_with_its_exit_class_and_nothing_else() -> None:
    documented = documented_kinds()
    assert set(documented) == {kind.value for kind in ErrorKind}
    for kind in ErrorKind:
        expected = CLASS_NAMES[kind.exit_code] + (", fatal" if kind.fatal else "")
        assert documented[kind.value] == expected, kind


def test_every_error_kind_is_raised_somewhere() -> None:
    assert {kind.value for kind in ErrorKind} - set(raised_kinds()) == set()


def test_classification() -> None:
    assert exit_code_of("conversion_failed") == ExitCode.OK
    assert exit_code_of("user_error") == ExitCode.USER
    assert exit_code_of("push_corrupt") == exit_code_of("workdir") == ExitCode.INFRA
    assert exit_code_of("device_mismatch") == ExitCode.INFRA
    assert exit_code_of("a kind from a newer runner") == ExitCode.INFRA   # nothing hidden
    assert is_fatal("unreachable") and is_fatal("workdir") and not is_fatal("timeout")
    assert not is_fatal("onnxruntime_missing") and not is_fatal(None)
    assert run_exit_code([]) == ExitCode.OK
    assert run_exit_code(["unsupported_op", "does_not_fit"]) == ExitCode.OK
    assert run_exit_code(["unsupported_op", "user_error"]) == ExitCode.USER
    assert run_exit_code(["user_error", "timeout", "model_load"]) == ExitCode.INFRA
    assert run_exit_code(["timeout", "internal_error"]) == ExitCode.INTERNAL


def test_errors_check_their_kind() -> None:
    assert InfraError("x", kind="unreachable").kind == "unreachable"
    assert InfraError("x").kind == "infra" and UserError("x").kind == "user_error"
    assert HarnessError("x", kind=ErrorKind.TIMEOUT).kind == "timeout"
    assert type(InfraError("x", kind=ErrorKind.AUTH).kind) is str      # plain text in rows
    with pytest.raises(ValueError, match="unknown error kind 'no_such_kind'"):
        InfraError("x", kind="no_such_kind")
    with pytest.raises(ValueError, match="unknown error kind"):
        UserError("x", kind="unreachabel")
