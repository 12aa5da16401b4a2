"""YAML loading and pydantic validation with errors that name the file, the field path and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import UserError

Model = TypeVar("Model", bound=BaseModel)


def _line_index(node: yaml.Node, path: tuple[Any, ...] = (), index: dict | None = None) -> dict:
    """Map each field path of a composed YAML document to its 1-based line number."""
    index = {} if index is None else index
    index[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            index[path + (key.value,)] = key.start_mark.line + 1
            _line_index(value, path + (key.value,), index)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), index)
    return index


def read_yaml(path: Path, what: str) -> tuple[Any, dict]:
    """Parse a YAML file; return the data and a path -> line index."""
    if not path.is_file():
        raise UserError(f"{what} file not found: {path}", hint="check the path")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}{where}: YAML syntax error: {problem}") from exc
    return data, (_line_index(node) if node is not None else {})


def _describe(err: dict) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        return f"got {err.get('input')!r}; allowed: {allowed}"
    return f"{msg} (got {err.get('input')!r})" if "input" in err and not isinstance(
        err.get("input"), (dict, list)) else msg


def _document_path(loc: tuple, data: Any) -> tuple:
    """The error location as a path in the document: the parts pydantic adds (validator names,
    the tags of a `kind:` union) are left out; the last part is kept (a missing field)."""
    path: list[Any] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(part, str) and part.startswith(("function-", "literal[")):
            continue
        present = ((isinstance(node, dict) and part in node)
                   or (isinstance(node, list) and isinstance(part, int) and part < len(node)))
        if not present and not last:
            continue
        path.append(part)
        node = node[part] if present else None
    return tuple(path)


def validate(model: type[Model], data: Any, path: Path, lines: dict) -> Model:
    """Validate `data` against `model`; the first error becomes a UserError naming field and line."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = _document_path(err["loc"], data)
        field = ".".join(str(part) for part in loc) or "<document>"
        line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), None)
        where = f"{path}:{line}" if line else str(path)
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise UserError(f"{where}: {field}: {_describe(err)}{more}") from exc


def load(model: type[Model], path: Path, what: str) -> Model:
    """Read and validate one YAML configuration file."""
    data, lines = read_yaml(path, what)
    return validate(model, data, path, lines)
