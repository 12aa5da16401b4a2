"""`harness import TOOL FILE…`: tool output users already have → the same tidy rows as a run.

Tools (`harness.parsers.IMPORTERS`), each file's layout told apart by content:
* `benchmark_model` — op-profiling CSV, console profile tables and/or console lines (any
  generation); an output in no layout the parser knows is refused with the lines it could not place;
* `edgetpu_compiler` — operation log (Operator / Count / Status table) or console summary;
* `trtexec` — performance summary, `--exportProfile` JSON or the `--dumpProfile` console table.

The controller stores the returned rows as a run (`harness.results.rundir`), so reports, compare
and baselines treat an import like any other run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.parsers import IMPORTERS
from harness.parsers.benchmark_model import BenchmarkModelOutput
from harness.results.profile_rows import benchmark_model_output_rows
from harness.results.rows import rows_from_records

TOOLS = tuple(IMPORTERS)
DEVICE_KIND = {"benchmark_model": "cpu", "edgetpu_compiler": "edgetpu", "trtexec": "tensorrt"}
SHOWN_LINES = 5


def _read(path: Path) -> str:
    try:
        return Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})", hint="check the file path") from exc


def base_fields(tool: str, target: str, model: str, variant: str) -> dict[str, Any]:
    """Columns every imported row carries."""
    return {"target": target, "device_kind": DEVICE_KIND[tool], "model": model, "variant": variant,
            "runtime": tool, "method": tool}


def _lines(lines: list[tuple[int, str]]) -> str:
    shown = "; ".join(f"line {number}: {' '.join(text.split())[:100]!r}"
                      for number, text in lines[:SHOWN_LINES])
    more = len(lines) - SHOWN_LINES
    return shown + (f" (and {more} more)" if more > 0 else "")


def _benchmark_model_rows(path: Path, output: BenchmarkModelOutput,
                          fields: dict[str, Any]) -> list[dict]:
    if output.misread:
        raise UserError(f"{path}: {len(output.misread)} line(s) inside a benchmark_model profile "
                        f"table are in no layout this version reads: {_lines(output.misread)}",
                        hint="pass the file written by --profiling_output_csv_file, or the "
                             "console output as printed")
    rows = benchmark_model_output_rows(output, fields)
    if not rows:
        raise UserError(f"{path}: no benchmark_model timings, profile tables or memory lines "
                        f"found; lines not placed: {_lines(output.unplaced) or 'none'}",
                        hint="pass benchmark_model's console output or its op-profiling CSV")
    return rows


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
        fields = base_fields(tool, target, model, variant)
        parsed = IMPORTERS[tool](text)
        if tool == "benchmark_model":
            produced = _benchmark_model_rows(path, parsed, fields)
        else:
            produced = rows_from_records(parsed.records, fields)
        if not produced:
            raise UserError(f"{path}: nothing recognisable as {tool} output",
                            hint=f"pass {tool}'s console output or its exported file")
        rows += produced
    return rows
