"""Regression baselines: one small, diff-friendly JSON file per suite, `baselines/<suite>.json`.

Meant to be committed. Keys are sorted, every row and every sample series is one line, rows are
sorted by their key, so a new baseline shows up in `git diff` as the lines that changed. It holds
the tidy rows (summary statistics, failures included), up to `MAX_SAMPLES` raw samples per series
(evenly spaced in time order, enough for the Mann-Whitney test), the environment per target and,
when set from several runs, each row's run-to-run noise (`"noise"`, sd of log(value)).
Each row keeps the sha256 of the artifact it measured, and the file keeps the suite's measurement
protocol (`"protocol"`, harness.compare.measurement_protocol): rows measured under another protocol
are not comparable. `set_baseline` with an artifact store pins the baseline: the artifact of every
latency row must be in the store, for the A/B re-measurement.
The file is plain JSON: `json.load` reads it.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness import __version__, defaults, stats
from harness.errors import UserError
from harness.results.rundir import RunDir, suite_name
from harness.results.schema import COLUMNS, KEY_COLUMNS, to_frame

if TYPE_CHECKING:
    from harness.results.artifact_store import ArtifactStore

SCHEMA_VERSION = 1
MAX_SAMPLES = 200
# columns kept per row (others are empty in a baseline or not needed to compare); the delegate
# coverage of latency rows is compared as deterministic rows
ROW_COLUMNS = KEY_COLUMNS + [
    "device_kind", "artifact_sha256", "runtime_version", "delegate", "delegated_nodes",
    "undelegated_ops", "method", "value", "unit", "n", "valid", "hint", "status", "error_kind",
    "phase", "message",
]
SAMPLE_KEYS = ["target", "model", "variant", "runtime", "threads", "measurement", "metric",
               "artifact_sha256", "unit"]
VOLATILE_ENV_KEYS = {"temperature_c"}


@dataclass
class Baseline:
    """A baseline as read back: rows as a tidy frame, samples as in samples.jsonl."""

    suite: str
    frame: pd.DataFrame
    samples: list[dict[str, Any]]
    environment: dict[str, dict[str, Any]]
    source_run: str | None = None
    created: str | None = None
    harness_version: str | None = None
    path: Path | None = None
    noise: dict[tuple, float] = field(default_factory=dict)   # row key -> sd of log(value)
    meta: dict[str, Any] = field(default_factory=dict)
    protocol: dict[str, Any] | None = None   # measurement_protocol of the run's suite


def baseline_path(suite: str, root: Path | str = defaults.BASELINES_DIR) -> Path:
    """Where the baseline of `suite` lives."""
    return Path(root) / f"{suite}.json"


def _clean(value: Any) -> Any:
    """JSON-safe scalars: NaN/NA -> None, numpy -> python, integral floats of int columns kept."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        return value
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and (math.isinf(value)):
        return None
    return value


def _row_record(row: dict[str, Any]) -> dict[str, Any]:
    record = {}
    for column in ROW_COLUMNS:
        value = _clean(row.get(column))
        if value is None or value == "":
            continue
        if column in ("threads", "n", "delegated_nodes", "undelegated_ops") \
                and isinstance(value, float) and value.is_integer():
            value = int(value)
        record[column] = value
    return record


def _sort_key(record: dict[str, Any]) -> tuple:
    return tuple(str(record.get(c, "")) for c in KEY_COLUMNS)


def _sample_record(series: dict[str, Any], limit: int) -> dict[str, Any]:
    values = [float(v) for v in series.get("samples") or [] if v is not None]
    record = {k: _clean(series.get(k)) for k in SAMPLE_KEYS if _clean(series.get(k)) is not None}
    if isinstance(record.get("threads"), float) and record["threads"].is_integer():
        record["threads"] = int(record["threads"])
    record["n"] = len(values)
    # 6 significant digits: 1 ns at 1 ms, independent of the unit
    record["samples"] = [float(f"{v:.6g}") for v in stats.thin(values, limit)]
    return record


def _dumps_line(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(", ", ": "), allow_nan=False)


def _with_noise(record: dict[str, Any], noise: dict[tuple, float] | None) -> dict[str, Any]:
    if noise:
        from harness.compare import row_key

        sd = noise.get(row_key(record))
        if sd is not None:
            record["noise"] = round(float(sd), 6)
    return record


def render_baseline(frame: pd.DataFrame, samples: list[dict[str, Any]], *, suite: str,
                    environment: dict[str, dict[str, Any]] | None = None,
                    source_run: str | None = None, created: str | None = None,
                    max_samples: int = MAX_SAMPLES, noise: dict[tuple, float] | None = None,
                    noise_runs: list[str] | None = None,
                    protocol: dict[str, Any] | None = None) -> str:
    """The baseline file's text (see the module docstring for the layout).

    `noise` ({row key: sd of log(value)}, harness.compare.series_noise over several runs) is
    stored per row as `"noise"`; `noise_runs` names the runs it came from. `protocol` is the
    measurement protocol of the run's suite (None: unknown).
    """
    rows = sorted((_with_noise(_row_record(r), noise) for r in frame.to_dict("records")),
                  key=_sort_key)
    series = sorted((_sample_record(s, max_samples) for s in samples or []),
                    key=lambda r: tuple(str(r.get(k, "")) for k in SAMPLE_KEYS))
    env = {t: {k: _clean(v) for k, v in sorted((e or {}).items()) if k not in VOLATILE_ENV_KEYS}
           for t, e in sorted((environment or {}).items())}
    created = created or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    head = {"schema_version": SCHEMA_VERSION, "suite": suite, "source_run": source_run,
            "created": created, "harness_version": __version__, "max_samples": max_samples}
    if noise_runs:
        head["noise_runs"] = list(noise_runs)
    if protocol is not None:
        head["protocol"] = protocol
    lines = ["{"]
    for k in sorted(head):
        lines.append(f"  {json.dumps(k)}: {_dumps_line(head[k])},")
    lines.append('  "environment": {')
    env_items = [f"    {json.dumps(t)}: {_dumps_line(e)}" for t, e in env.items()]
    lines.append(",\n".join(env_items)) if env_items else None
    lines.append("  },")
    lines.append('  "rows": [')
    lines.append(",\n".join(f"    {_dumps_line(r)}" for r in rows)) if rows else None
    lines.append("  ],")
    lines.append('  "samples": [')
    lines.append(",\n".join(f"    {_dumps_line(s)}" for s in series)) if series else None
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_baseline(path: Path | str, frame: pd.DataFrame, samples: list[dict[str, Any]], *,
                   suite: str, environment: dict[str, dict[str, Any]] | None = None,
                   source_run: str | None = None, created: str | None = None,
                   max_samples: int = MAX_SAMPLES, noise: dict[tuple, float] | None = None,
                   noise_runs: list[str] | None = None,
                   protocol: dict[str, Any] | None = None) -> Path:
    """Write a baseline file atomically; returns its path."""
    path = Path(path)
    text = render_baseline(frame, samples, suite=suite, environment=environment,
                           source_run=source_run, created=created, max_samples=max_samples,
                           noise=noise, noise_runs=noise_runs, protocol=protocol)
    json.loads(text)  # never write a file that does not parse
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def read_baseline(path: Path | str) -> Baseline:
    """Read a baseline file; a missing or malformed file is a UserError naming it and the fix."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no baseline at {path}",
                        hint="create one with `harness baseline set RUN_DIR`")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a valid baseline file ({exc})",
                        hint="restore it from version control or set it again") from exc
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        raise UserError(f"{path}: unsupported baseline schema_version "
                        f"{doc.get('schema_version') if isinstance(doc, dict) else None!r}",
                        hint=f"expected {SCHEMA_VERSION}; set the baseline again")
    from harness.compare import row_key

    rows = [{c: r.get(c) for c in COLUMNS if c in r} for r in doc.get("rows", [])]
    noise = {row_key(r): float(r["noise"]) for r in doc.get("rows", [])
             if r.get("noise") is not None}
    frame = to_frame(rows)
    frame["status"] = frame["status"].fillna("ok")
    frame["suite"] = doc.get("suite")
    frame["run_id"] = doc.get("source_run")
    return Baseline(suite=doc.get("suite"), frame=frame, samples=list(doc.get("samples", [])),
                    environment=dict(doc.get("environment", {})), source_run=doc.get("source_run"),
                    created=doc.get("created"), harness_version=doc.get("harness_version"),
                    path=path, noise=noise,
                    meta={k: doc[k] for k in ("max_samples", "noise_runs") if k in doc},
                    protocol=doc.get("protocol"))


def set_baseline(run_dir: Path | str | list, root: Path | str = defaults.BASELINES_DIR, *,
                 max_samples: int = MAX_SAMPLES, store: "ArtifactStore | None" = None) -> Path:
    """Make a stored run the baseline of its suite: writes `<root>/<suite>.json`.

    Given several run directories (oldest first), the LAST one is the baseline and all of them
    give the run-to-run noise of every row (stored per row, used by the verdict on any clone).
    With a `store`, the baseline is pinned first: the artifact of every ok latency row must be in
    it (else a UserError naming them and the fix, and nothing is written).
    """
    from harness.compare import NOISE_MIN_RUNS, measurement_protocol, series_noise

    runs = [RunDir.open(d) for d in (run_dir if isinstance(run_dir, (list, tuple)) else [run_dir])]
    if not runs:
        raise UserError("baseline set: give at least one run directory")
    loaded = [(run, run.frame(), run.meta()) for run in runs]
    last, frame, meta = loaded[-1]
    suite = str(suite_name(meta, frame))
    for other, other_frame, other_meta in loaded:
        other_suite = suite_name(other_meta, other_frame)
        if other_suite != suite:
            raise UserError(f"{other.path} is a run of suite {other_suite!r}, not {suite!r}",
                            hint="give runs of one suite")
    if store is not None:
        store.pin(pinned_rows(frame))
    noise, noise_runs = None, None
    if len(loaded) > 1:
        if len(loaded) < NOISE_MIN_RUNS:
            raise UserError(f"baseline set: {len(loaded)} runs give no noise estimate",
                            hint=f"give one run, or at least {NOISE_MIN_RUNS}")
        noise = series_noise(pd.concat([f for _, f, _ in loaded], ignore_index=True))
        noise_runs = [m.run_id or run.run_id for run, _, m in loaded]
    return write_baseline(baseline_path(suite, root), frame, last.samples(), suite=suite,
                          environment=meta.environment, source_run=meta.run_id or last.run_id,
                          max_samples=max_samples, noise=noise, noise_runs=noise_runs,
                          protocol=measurement_protocol(meta.suite))


PINNED_DEVICE_KINDS = ("cpu",)    # kinds that measure the built artifact itself


def pinned_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows whose artifact a baseline pins: ok latency rows with an artifact sha256 that
    measured a built TFLite artifact (what the A/B re-measurement runs again). Kinds that measure
    an artifact they derive on the way (Edge TPU compile, ONNX export, TFLM) are not pinned: the
    run does not store those files."""
    status = frame["status"].fillna("ok")
    kind = frame["device_kind"].fillna("cpu")
    rows = frame[(frame["measurement"] == "latency") & (status == "ok")
                 & frame["artifact_sha256"].notna() & kind.isin(PINNED_DEVICE_KINDS)
                 & (frame["runtime"] != "onnxruntime")]
    return rows[["target", "model", "variant", "artifact_sha256"]].to_dict("records")
