"""One run directory, `reports/<suite>/<run-id>/` (docs/CONTRACTS.md): metadata, rows, raw samples,
reports. Everything that writes or reads a run goes through `RunDir`.

    run.json       RunMeta, with `format_version`; a reader refuses a newer version than it knows
    rows.jsonl     tidy rows, appended as each job finishes (nothing measured is lost); the rows of
                   a job carry its key in `job` (bookkeeping, not a column of the tidy table)
    samples.jsonl  raw sample series, appended likewise
    jobs.jsonl     one line per finished job, written after its rows: {"job", "rows", "samples"}
    results.csv    the tidy table, written when the run finishes
    report.md      the Markdown report; compare.md / compare.csv the comparison, when there is one
    report.html    the HTML report: plots, tables, trends and the comparison when there are any
    targets/<name>/  raw result documents of each target; harness.log the run log
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from harness import fileio
from harness.errors import UserError
from harness.results.schema import COLUMNS, to_frame

log = logging.getLogger("harness.results")

FORMAT_VERSION = 1
RUN_FILE = "run.json"
ROWS_FILE = "rows.jsonl"
SAMPLES_FILE = "samples.jsonl"
JOBS_FILE = "jobs.jsonl"
JOB = "job"  # the key of the job a row or a series belongs to, in rows.jsonl / samples.jsonl
RESULTS_FILE = "results.csv"
REPORT_FILE = "report.md"
REPORT_HTML = "report.html"
LOG_FILE = "harness.log"
COMPARE_MD = "compare.md"
COMPARE_CSV = "compare.csv"
TARGETS_DIR = "targets"
RUN_DIR_HINT = "pass a directory like reports/<suite>/<run-id>"


def new_run_id() -> str:
    """A sortable, unique-enough run id: UTC time plus a short random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


@dataclass(frozen=True)
class RunMeta:
    """The contents of run.json. Keys this version does not know are kept in `extra`."""

    run_id: str
    suite: dict[str, Any] = field(default_factory=dict)  # the suite as loaded, at least its name
    targets: list[str] = field(default_factory=list)
    harness_version: str | None = None
    environment: dict[str, dict[str, Any]] = field(default_factory=dict)  # per target
    suite_path: str | None = None
    inventory_path: str | None = None
    inventory: dict[str, dict[str, Any]] = field(default_factory=dict)  # entries without secrets
    controller: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    imported: dict[str, Any] | None = None  # `harness import`: the tool and its files
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def suite_name(self) -> str | None:
        return self.suite.get("name")

    @property
    def thresholds(self) -> dict[str, float]:
        """The suite's regression thresholds (empty when it has none)."""
        return dict(self.suite.get("thresholds") or {})

    def with_environment(self, target: str, environment: dict[str, Any]) -> "RunMeta":
        """A copy with one target's environment set."""
        return dataclasses.replace(self, environment={**self.environment, target: environment})

    def to_json(self) -> dict[str, Any]:
        """run.json as a dict (empty optional fields left out)."""
        doc = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        doc = {k: v for k, v in doc.items() if v is not None}
        return {**self.extra, **doc}

    @classmethod
    def from_json(cls, doc: Any, source: str, run_id: str | None = None) -> "RunMeta":
        """Read run.json contents; `source` names it in errors, `run_id` is used if it has none."""
        if not isinstance(doc, dict):
            raise UserError(f"{source}: not a run.json object", hint="it must be a JSON object")
        version = doc.get("format_version", 1)  # files written before versioning are version 1
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise UserError(f"{source}: run format_version {version!r} is newer than this harness "
                            f"understands ({FORMAT_VERSION})",
                            hint="upgrade harness to read this run")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in doc.items() if k in known}
        suite = values.get("suite")
        values["suite"] = {"name": suite} if isinstance(suite, str) else dict(suite or {})
        values["run_id"] = str(values.get("run_id") or run_id or "")
        values["environment"] = dict(values.get("environment") or {})
        return cls(**values, extra={k: v for k, v in doc.items() if k not in known})


def suite_name(meta: RunMeta | None, frame: pd.DataFrame | None = None, *,
               required: bool = True) -> str | None:
    """The suite a run belongs to: run.json `suite`, else the `suite` column of its rows."""
    name = meta.suite_name if meta is not None else None
    if not name and frame is not None and "suite" in frame.columns:
        names = frame["suite"].dropna().unique()
        name = str(names[0]) if len(names) else None
    if not name and required:
        raise UserError("cannot tell which suite this run belongs to",
                        hint="run.json needs a `suite` entry, or pass --suite")
    return name


class RunDir:
    """One run directory. Appends are thread-safe; run.json, results.csv and the reports are
    written atomically."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @classmethod
    def create(cls, reports: Path, suite: str, run_id: str | None = None) -> "RunDir":
        """A new, empty run directory `reports/<suite>/<run-id>/`."""
        run = cls(Path(reports) / suite / (run_id or new_run_id()))
        run.path.mkdir(parents=True, exist_ok=True)
        return run

    @classmethod
    def open(cls, path: Path | str) -> "RunDir":
        """An existing run directory; a UserError naming it when it is not one."""
        run = cls(path)
        if not run.path.is_dir():
            raise UserError(f"{run.path}: no such run directory", hint=RUN_DIR_HINT)
        if not any((run.path / name).is_file() for name in (RESULTS_FILE, ROWS_FILE)):
            raise UserError(f"{run.path}: not a run directory (no {RESULTS_FILE} or {ROWS_FILE})",
                            hint=RUN_DIR_HINT)
        return run

    @property
    def run_id(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        """A file of the run (one of the *_FILE / COMPARE_* names)."""
        return self.path / name

    @property
    def targets_dir(self) -> Path:
        return self.path / TARGETS_DIR

    # -- run.json ------------------------------------------------------------------------------
    def has_meta(self) -> bool:
        return (self.path / RUN_FILE).is_file()

    def meta(self) -> RunMeta:
        """run.json; a run without one gets a RunMeta with only its run id."""
        path = self.path / RUN_FILE
        if not path.is_file():
            return RunMeta(run_id=self.run_id)
        try:
            doc = json.loads(path.read_text())
        except ValueError as exc:
            raise UserError(f"{path}: not valid JSON ({exc})") from exc
        return RunMeta.from_json(doc, str(path), run_id=self.run_id)

    def write_meta(self, meta: RunMeta) -> None:
        _write_text(self.path / RUN_FILE,
                    json.dumps(meta.to_json(), indent=1, default=_json_default))

    # -- rows and samples ----------------------------------------------------------------------
    def append(self, rows: list[dict], series: list[dict], job: str | None = None) -> None:
        """Persist rows and raw samples immediately (JSON lines). With `job`, they are marked as
        that job's and a line in jobs.jsonl, written after them, says the job finished with
        this many rows and series (what `complete_jobs` checks)."""
        mark = {JOB: job} if job else {}
        with self._lock:
            self.path.mkdir(parents=True, exist_ok=True)
            _append_jsonl(self.path / ROWS_FILE, [{**row, **mark} for row in rows])
            _append_jsonl(self.path / SAMPLES_FILE, [{**item, **mark} for item in series])
            if job:
                _append_jsonl(self.path / JOBS_FILE,
                              [{JOB: job, "rows": len(rows), "samples": len(series)}])

    def rows(self) -> list[dict]:
        return [_unmarked(row) for row in _read_jsonl(self.path / ROWS_FILE)]

    def samples(self) -> list[dict]:
        return [_unmarked(item) for item in _read_jsonl(self.path / SAMPLES_FILE)]

    def complete_jobs(self) -> dict[str, list[dict]]:
        """The rows of every job whose rows and series are all there (as many as jobs.jsonl
        says it wrote), by job key."""
        rows: dict[str, list[dict]] = {}
        series: dict[str, int] = {}
        for row in _read_jsonl(self.path / ROWS_FILE):
            rows.setdefault(row.get(JOB), []).append(_unmarked(row))
        for item in _read_jsonl(self.path / SAMPLES_FILE):
            series[item.get(JOB)] = series.get(item.get(JOB), 0) + 1
        complete = {}
        for entry in _read_jsonl(self.path / JOBS_FILE):
            job = entry.get(JOB)
            if job and len(rows.get(job, [])) == entry.get("rows") \
                    and series.get(job, 0) == entry.get("samples"):
                complete[job] = rows[job]
        return complete

    def drop_jobs(self, jobs: set[str], build_rows: bool = False) -> None:
        """Remove every row, series and jobs.jsonl line of these jobs (and, with `build_rows`,
        the rows of no job: the build's), before `--resume` runs them again."""
        def keep(record: dict) -> bool:
            job = record.get(JOB)
            return job not in jobs and (job is not None or not build_rows)

        with self._lock:
            for name in (ROWS_FILE, SAMPLES_FILE, JOBS_FILE):
                if (self.path / name).is_file():
                    _write_jsonl(self.path / name, [r for r in _read_jsonl(self.path / name)
                                                    if keep(r)])

    def drop_rows(self, keep: Callable[[dict], bool]) -> None:
        """Rewrite the row log keeping only rows for which `keep(row)` is true."""
        with self._lock:
            rows = [row for row in _read_jsonl(self.path / ROWS_FILE) if keep(_unmarked(row))]
            _write_jsonl(self.path / ROWS_FILE, rows)

    def frame(self) -> pd.DataFrame:
        """The tidy table: results.csv, or the row log of an unfinished run."""
        csv = self.path / RESULTS_FILE
        if csv.is_file():
            frame = pd.read_csv(csv, dtype={"key": "string", "message": "string", "hint": "string"})
            frame = to_frame(frame.reindex(columns=COLUMNS).to_dict("records"))
            if frame["run_id"].isna().all():
                frame["run_id"] = self.meta().run_id
            return frame
        frame = to_frame(self.rows())
        frame["run_id"] = self.run_id
        return frame

    def finish(self) -> pd.DataFrame:
        """Write results.csv from all rows so far and return the frame."""
        frame = to_frame(self.rows())
        frame["run_id"] = self.run_id
        _write_text(self.path / RESULTS_FILE, frame.to_csv(index=False))
        return frame

    # -- reports -------------------------------------------------------------------------------
    def write_report(self, markdown: str) -> Path:
        path = self.path / REPORT_FILE
        _write_text(path, markdown)
        return path

    def write_report_html(self, html: str) -> Path:
        """report.html: the self-contained HTML report (`harness.api.write_html_report`)."""
        path = self.path / REPORT_HTML
        _write_text(path, html)
        return path

    def write_comparison(self, markdown: str, csv: str) -> tuple[Path, Path]:
        """compare.md and compare.csv (kept with the run, uploaded by CI)."""
        paths = (self.path / COMPARE_MD, self.path / COMPARE_CSV)
        _write_text(paths[0], markdown)
        _write_text(paths[1], csv)
        return paths

    def suite_name(self) -> str:
        """The suite this run belongs to (UserError when neither run.json nor the rows say)."""
        meta = self.meta()
        return str(suite_name(meta, None if meta.suite_name else self.frame()))


_warned: set[str] = set()  # files whose truncated last line was reported already


def _read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file. A last line cut short (a run killed while appending) is
    left out with a warning, shown once per file; a bad line elsewhere is a UserError naming it."""
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            if any(rest.strip() for rest in lines[number:]):
                raise UserError(f"{path}:{number}: not a JSON line ({exc})",
                                hint="the file was edited or damaged; delete that line") from exc
            _report_cut(path)
    return records


def _report_cut(path: Path) -> None:
    if str(path) not in _warned:
        _warned.add(str(path))
        log.warning("%s: its last line is cut short (the run was interrupted while writing it); "
                    "it is left out, and `harness run --resume` measures that job again", path)


def _append_jsonl(path: Path, records: list[dict]) -> None:
    """Append records; a cut-short last line already there is removed first, so it never glues
    itself to the next record."""
    if not records:
        return
    if path.is_file() and path.stat().st_size:
        with path.open("rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.seek(0)
                data = handle.read()
                end = data.rfind(b"\n") + 1
                try:
                    json.loads(data[end:])
                    handle.write(b"\n")  # whole, only its newline missing
                except ValueError:
                    _report_cut(path)
                    handle.truncate(end)
    with path.open("a") as handle:
        handle.write("".join(json.dumps(r, default=_json_default) + "\n" for r in records))


def _write_jsonl(path: Path, records: list[dict]) -> None:
    _write_text(path, "".join(json.dumps(r, default=_json_default) + "\n" for r in records))


def _unmarked(record: dict) -> dict:
    """A row or series without the run directory's bookkeeping."""
    return {k: v for k, v in record.items() if k != JOB}


def _write_text(path: Path, text: str) -> None:
    """Write a file so that a reader never sees half of it (unique temp file + os.replace)."""
    fileio.write_atomic(path, text)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
