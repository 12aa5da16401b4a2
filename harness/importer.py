"""`harness import TOOL FILE…`: tool output users already have → the same tidy rows as a run.

Tools:
* `benchmark_model` — op-profiling CSV or console output (any generation), told apart by content
  (`harness.devices.benchmark_model`).
* `edgetpu_compiler` — operation log (Operator / Count / Status table) or console summary, via
  `harness.devices.edgetpu.parse_edgetpu_log` / `parse_edgetpu_summary`.
* `trtexec` — performance summary, `--exportProfile` JSON (`parse_trtexec_profile`), or the
  `--dumpProfile` console table, via `harness.devices.tensorrt.parse_trtexec_summary` /
  `parse_trtexec_profile` (and `parse_trtexec_dump_profile` when that module has one).

The edgetpu/tensorrt parsers are imported lazily by name. Whatever they return is made into rows
here: a list of row-like dicts (with `metric`) gets the import's columns filled in; a dict of
figures is flattened into one row per number (nested dicts → metric path; lists of dicts → one key
per entry).

The controller stores the returned rows as a run (`harness.results.rundir`), so reports, compare
and baselines treat an import like any other run.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any, Callable

from harness.errors import UserError
from harness.results.schema import COLUMNS, make_row

TOOLS = ("benchmark_model", "edgetpu_compiler", "trtexec")
DEVICE_KIND = {"benchmark_model": "cpu", "edgetpu_compiler": "edgetpu", "trtexec": "tensorrt"}


def _read(path: Path) -> str:
    try:
        return Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})", hint="check the file path") from exc


def _parser(module: str, name: str, required: bool = True) -> Callable[[str], Any] | None:
    """A parser function from another device module, looked up by name at call time."""
    try:
        mod = importlib.import_module(f"harness.devices.{module}")
    except ImportError as exc:
        if not required:
            return None
        raise UserError(f"importing this tool needs harness.devices.{module} ({exc})",
                        hint="that parser module is not available in this installation") from exc
    fn = getattr(mod, name, None)
    if fn is None and required:
        raise UserError(f"harness.devices.{module} has no {name}()",
                        hint="that parser is not available in this installation")
    return fn


def base_fields(tool: str, target: str, model: str, variant: str, source: Path) -> dict[str, Any]:
    """Columns every imported row carries."""
    return {"target": target, "device_kind": DEVICE_KIND[tool], "model": model, "variant": variant,
            "runtime": tool, "method": tool}


# --------------------------------------------------------------------------- adapting parser output

def rows_from_parsed(parsed: Any, fields: dict[str, Any], measurement: str) -> list[dict]:
    """Rows from another parser's output: row-like dicts kept, a dict of figures flattened."""
    if isinstance(parsed, list) and all(isinstance(r, dict) and "metric" in r for r in parsed):
        rows = []
        for r in parsed:
            merged = {k: v for k, v in fields.items()}
            merged.update({k: v for k, v in r.items() if k in COLUMNS and v is not None})
            merged.setdefault("measurement", measurement)
            rows.append(make_row(**merged))
        return rows
    rows: list[dict] = []
    _flatten(parsed, "", None, dict(fields, measurement=measurement), rows)
    return rows


KEY_FIELDS = ("name", "layer", "operator", "op", "node", "label")


def _flatten(value: Any, path: str, key: str | None, fields: dict, rows: list[dict]) -> None:
    if isinstance(value, bool):
        rows.append(make_row(**fields, metric=path or "value", key=key, value=int(value),
                             unit="bool"))
    elif isinstance(value, (int, float)):
        rows.append(make_row(**fields, metric=path or "value", key=key, value=value,
                             unit=_unit(path)))
    elif isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{path}.{k}" if path else str(k), key, fields, rows)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            item_key = key
            if isinstance(item, dict):
                named = next((item[f] for f in KEY_FIELDS if isinstance(item.get(f), str)), None)
                item_key = named if named is not None else f"{i}"
                item = {k: v for k, v in item.items() if k not in KEY_FIELDS or
                        not isinstance(v, str)}
            _flatten(item, path, item_key, fields, rows)


def _unit(metric: str) -> str | None:
    m = re.search(r"_(ms|us|s|mb|mib|kb|kib|b|bytes|pct|qps|count)$", metric.lower())
    return {"pct": "%", "bytes": "B", "b": "B", "mib": "MiB", "kib": "KiB"}.get(
        m.group(1), m.group(1)) if m else None


# --------------------------------------------------------------------------- per tool

def _benchmark_model(path: Path, text: str, fields: dict[str, Any]) -> list[dict]:
    from harness.devices import benchmark_model as bm
    from harness.results import profile_rows as pr

    if bm.looks_like_profile_csv(text):
        parsed = bm.parse_profile_csv(text)
        if not parsed:
            raise UserError(f"{path}: no profiling sections found", hint="pass the file written by "
                            "--profiling_output_csv_file, or the console output")
        return pr.benchmark_model_csv_rows(parsed, fields)
    parsed = bm.parse_console(text)
    rows = pr.benchmark_model_console_rows(parsed, fields)
    if not rows:
        raise UserError(f"{path}: no benchmark_model timings or memory lines found",
                        hint="pass benchmark_model's console output or its op-profiling CSV")
    return rows


def _edgetpu_compiler(path: Path, text: str, fields: dict[str, Any]) -> list[dict]:
    if re.search(r"^\s*Operator\s+Count\s+Status", text, re.MULTILINE):
        parsed = _parser("edgetpu", "parse_edgetpu_log")(text)
    else:
        parsed = _parser("edgetpu", "parse_edgetpu_summary")(text)
    return rows_from_parsed(parsed, fields, "build")


def _trtexec(path: Path, text: str, fields: dict[str, Any]) -> list[dict]:
    stripped = text.lstrip()
    if stripped.startswith("[") and _is_json(stripped):
        return rows_from_parsed(_parser("tensorrt", "parse_trtexec_profile")(text), fields,
                                "profile")
    if "=== Profile (" in text:
        dump = _parser("tensorrt", "parse_trtexec_dump_profile", required=False)
        if dump is not None:
            return rows_from_parsed(dump(text), fields, "profile")
    return rows_from_parsed(_parser("tensorrt", "parse_trtexec_summary")(text), fields, "latency")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


IMPORTERS = {"benchmark_model": _benchmark_model, "edgetpu_compiler": _edgetpu_compiler,
             "trtexec": _trtexec}


def import_files(tool: str, files: list[Path], target: str, model: str, variant: str) -> list[dict]:
    """Tidy rows for tool output files (UserError for an unknown tool, unreadable or unparsable file).

    Every row has target, device_kind, model, variant, and runtime = method = tool.
    """
    if tool not in IMPORTERS:
        raise UserError(f"unknown tool {tool!r} for import", hint=f"use one of {', '.join(TOOLS)}")
    if not files:
        raise UserError("no files to import", hint="give one or more tool output files")
    rows: list[dict] = []
    for file in files:
        path = Path(file)
        text = _read(path)
        if not text.strip():
            raise UserError(f"{path}: file is empty", hint="pass the tool's output file")
        fields = base_fields(tool, target, model, variant, path)
        produced = IMPORTERS[tool](path, text, fields)
        if not produced:
            raise UserError(f"{path}: nothing recognisable as {tool} output",
                            hint=f"pass {tool}'s console output or its exported file")
        rows += produced
    return rows
