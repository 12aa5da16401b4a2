"""Build every artifact a suite needs, once, cached under a content hash of its inputs.

The workload (harness/workloads) provides the models, their calibration data and their evaluation
data; this module converts, quantizes and caches. A second run with nothing changed loads nothing
heavy: no TensorFlow import, no training, no conversion.

Every build step (training, SavedModel export, evaluation data, conversion per variant, the
QuantizationDebugger, the denylist conversion) that fails becomes the failure of what it was
building: an Artifact with `error` (a `build` row per job), or a row in `failure_rows` (quant_error,
accuracy); the other steps go on. Only the converter's refusal of a model (`ConversionError`) is
cached; a crash, a killed converter, OSError or MemoryError (`build_failed`) is tried again on the
next run. Conversions run in a separate process (`convert.ConverterProcess`).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness import fileio
from harness.artifacts import Artifact
from harness.artifacts.cache import (code_version, key_of, package_version, sha256_file,
                                     tree_sha256, write_atomic, write_json)
from harness.config.suite import Suite
from harness.config.variants import parse_variant
from harness.errors import ErrorKind, HarnessError
from harness.results.schema import failure_row
from harness.workloads import ModelSpec, Workload, open_workload

log = logging.getLogger("harness.artifacts")

Step = Callable[[str], None]

FULL_INTEGER = ("w8_a8", "w8_a16")
DENYLIST_SUFFIX = "_denylist"
AS_IS = "as_is"


def variants_for(spec: ModelSpec, suite: Suite) -> list[str]:
    """A .tflite file is measured as is; everything else in every requested variant, plus w8_a8
    with its suspected layers kept in float when the suite asks for it (models with calibration
    data from a workload only)."""
    if spec.file is not None and spec.file.suffix == ".tflite":
        return [AS_IS]
    variants = list(suite.variants)
    quant = suite.measurements.quant_error
    if quant is not None and quant.denylist_variant and spec.workload is not None:
        variants += [v + DENYLIST_SUFFIX for v in suite.variants if v == "w8_a8"]
    return variants


class StepFailed(Exception):
    """A build step that failed for a reason that may not last: recorded, never cached."""


class Builder:
    """Builds and caches the artifacts of one suite (call `close` when done: it stops the
    converter process)."""

    def __init__(self, suite: Suite, suite_path: Path, cache_dir: Path, step: Step | None = None):
        self.suite = suite
        self.suite_path = suite_path
        self.cache = cache_dir
        self.step = step or (lambda message: None)
        self.built = 0
        self.reused = 0
        self.training_seconds = 0.0  # spent training models (the rest of a build is conversion)
        self.failure_rows: list[dict] = []  # failed build steps that are not an artifact
        self._failed_models: dict[str, str] = {}  # model key -> why its SavedModel is missing
        self._variants: dict[tuple[str, str], Artifact] = {}  # built in this run
        self._converter: Any = None
        self._evaluations: dict[str, Any] = {}  # model name -> its evaluation data
        self._calibrations: dict[str, np.ndarray | None] = {}  # model name -> calibration data
        self._counting = threading.Lock()  # `prepare` and `build` may run in two threads
        self.workload: Workload | None = open_workload(suite, suite_path,
                                                       lambda message: self.step(message))

    @property
    def converts_apart(self) -> bool:
        """True when, after `prepare`, a model's `build` runs only in the converter process (no
        TensorFlow or workload code in this one), so it may overlap the next model's `prepare`.
        Optimisation variants fine-tune in this process: a suite with any builds in sequence."""
        return all(parse_variant(variant).plain for variant in self.suite.variants)

    # -- public -------------------------------------------------------------------------------
    def prepare(self, spec: ModelSpec) -> None:
        """The part of a model's build that runs in this process: its evaluation and calibration
        data and, when a variant is still to convert, training and the SavedModel export. A failed
        step is recorded (`build` reports it for every variant)."""
        self._evaluation(spec)
        if spec.file is not None and spec.file.suffix == ".tflite":
            return
        model_key = self._model_key(spec)
        if all(self._cached(spec, model_key, variant)
               for variant in variants_for(spec, self.suite)):
            return
        self._calibration(spec)
        try:
            self._saved_model(spec, model_key)
        except StepFailed:
            pass  # recorded in _failed_models: every variant of the model reports it

    def build(self, spec: ModelSpec) -> list[Artifact]:
        """All variants of one model (a variant that could not be built is an Artifact with
        `error`; a failed measurement step is a row in `failure_rows`)."""
        evaldata = self._evaluation(spec)
        if spec.file is not None and spec.file.suffix == ".tflite":
            artifacts = [self._file_artifact(spec)]
        else:
            model_key = self._model_key(spec)
            artifacts = [self._variant(spec, model_key, variant)
                         for variant in variants_for(spec, self.suite)]
            for artifact in artifacts:  # an optimisation variant is not this Keras model
                if parse_variant(artifact.variant.removesuffix(DENYLIST_SUFFIX)).plain:
                    artifact.source = self._keras_path(spec, model_key)
        for artifact in artifacts:
            artifact.eval = evaldata
        return artifacts

    def _count(self, built: int = 0, reused: int = 0) -> None:
        with self._counting:
            self.built += built
            self.reused += reused

    def close(self) -> None:
        """Stop the converter process, if one was started."""
        if self._converter is not None:
            self._converter.close()
            self._converter = None

    # -- models -------------------------------------------------------------------------------
    def _workload(self, spec: ModelSpec) -> Workload | None:
        """The workload that calibrates and scores a model (None for a bare model file)."""
        return self.workload if spec.workload is not None else None

    def _evaluation(self, spec: ModelSpec) -> Any:
        """The workload's evaluation data; a failed step is an accuracy failure row."""
        if spec.name in self._evaluations:
            return self._evaluations[spec.name]
        workload = self._workload(spec)
        evaldata = None
        if workload is not None:
            try:
                evaldata = workload.evaluation(spec, self.cache)
            except HarnessError:
                raise
            except Exception as exc:  # noqa: BLE001 - a crashed step is a row; the rest goes on
                self._failed("accuracy", spec.name, None, "evaluation data", exc)
        self._evaluations[spec.name] = evaldata
        return evaldata

    def _model_key(self, spec: ModelSpec) -> str:
        workload = self._workload(spec)
        if workload is not None:
            return workload.model_key(spec)
        assert spec.file is not None
        return key_of("file", spec.name, tree_sha256(spec.file))

    def _keras_path(self, spec: ModelSpec, model_key: str) -> Path:
        """The Keras model (or SavedModel) a model's variants are converted from."""
        return spec.file if spec.file is not None else \
            self.cache / "models" / model_key / "model.keras"

    def _keras_model(self, spec: ModelSpec, model_key: str) -> Path:
        """The Keras model of a spec, built by its workload (trained) when not cached."""
        path = self._keras_path(spec, model_key)
        if spec.file is not None or path.is_file():
            return path
        workload = self._workload(spec)
        assert workload is not None
        started = time.perf_counter()
        try:
            model = workload.build_model(spec, self.cache)
        finally:
            self.training_seconds += time.perf_counter() - started
        work = fileio.temp_dir_beside(path)  # unique per writer: concurrent runs never collide
        try:
            model.save(work / path.name)
            (work / path.name).replace(path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self._count(built=1)
        return path

    def _saved_model(self, spec: ModelSpec, model_key: str) -> Path:
        """The batch-1 SavedModel every variant is converted from (trained and exported first if
        needed). StepFailed when training or the export crashed (once per model and run)."""
        from harness.artifacts.convert import export_batch1

        if model_key in self._failed_models:
            raise StepFailed(self._failed_models[model_key])
        step = "training"
        try:
            keras_path = self._keras_model(spec, model_key)
            step = "SavedModel export"
            workload = self._workload(spec)
            shape = None
            if workload is not None:
                workload.register_layers()
                shape = workload.input_shape(spec)
            return export_batch1(keras_path, self.cache / "models" / model_key / "saved_model",
                                 shape)
        except HarnessError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded for every variant of the model
            log.warning("%s: %s failed", spec.name, step, exc_info=True)
            self._failed_models[model_key] = f"{step} failed: {type(exc).__name__}: {exc}"
            raise StepFailed(self._failed_models[model_key]) from exc

    def _calibration(self, spec: ModelSpec) -> np.ndarray | None:
        if spec.name not in self._calibrations:
            workload = self._workload(spec)
            self._calibrations[spec.name] = workload.calibration(spec, self.cache) \
                if workload is not None else None
        return self._calibrations[spec.name]

    def _run(self, task: str, saved: Path, variant: str, representative: np.ndarray | None,
             extra: Any = None) -> Any:
        """One step in the converter process (started on first use)."""
        from harness.artifacts.convert import ConverterProcess

        if self._converter is None:
            self._converter = ConverterProcess()
        return self._converter.run(task, saved, variant, representative, extra)

    # -- variants -----------------------------------------------------------------------------
    def _variant(self, spec: ModelSpec, model_key: str, variant: str) -> Artifact:
        """One variant, built once per run (a denylist variant asks for its base again)."""
        if (model_key, variant) not in self._variants:
            self._variants[(model_key, variant)] = self._build_variant(spec, model_key, variant)
        return self._variants[(model_key, variant)]

    def _files(self, spec: ModelSpec, model_key: str, variant: str) -> tuple[Path, Path, Path]:
        """The cache files of one variant: (.tflite, the converter's refusal, its quantization
        statistics)."""
        quant = self.suite.measurements.quant_error
        key = key_of("tflite", model_key, variant, code_version("artifacts/convert.py"),
                     code_version("artifacts/quant_debug.py"), quant and quant.model_dump(),
                     package_version("tensorflow-cpu", "tensorflow"))
        if not parse_variant(variant.removesuffix(DENYLIST_SUFFIX)).plain:
            from harness.artifacts.optimized import cache_parts  # an optimisation variant

            key = key_of(key, cache_parts(self))
        folder = self.cache / "tflite"
        return (folder / f"{key}.tflite", folder / f"{key}.failed.json",
                folder / f"{key}.quant_debug.csv")

    def _debugged(self, spec: ModelSpec, variant: str) -> bool:
        """Whether the variant gets the QuantizationDebugger's statistics."""
        return (self.suite.measurements.quant_error is not None and variant in FULL_INTEGER
                and spec.workload is not None)

    def _cached(self, spec: ModelSpec, model_key: str, variant: str) -> bool:
        path, failure, stats = self._files(spec, model_key, variant)
        return failure.is_file() or (path.is_file() and
                                     (stats.is_file() or not self._debugged(spec, variant)))

    def _build_variant(self, spec: ModelSpec, model_key: str, variant: str) -> Artifact:
        debug = self._debugged(spec, variant)
        plan = parse_variant(variant.removesuffix(DENYLIST_SUFFIX))
        path, failure, stats = self._files(spec, model_key, variant)
        if self._cached(spec, model_key, variant):
            self._count(reused=1)
            return self._finish(spec, variant, path, failure, stats, cached=True)
        from harness.artifacts.convert import ConversionError

        self._count(built=1)
        try:
            if not plan.plain:
                from harness.artifacts.optimized import build_optimized

                write_atomic(path, build_optimized(self, spec, plan))
                return self._finish(spec, variant, path, failure, stats, cached=False)
            saved = self._saved_model(spec, model_key)
            representative = self._calibration(spec)
            if variant.endswith(DENYLIST_SUFFIX):
                data = self._denylisted(spec, model_key, variant, saved, representative)
                if isinstance(data, Artifact):  # its base has no statistics: nothing to cache
                    return data
            elif path.is_file():  # converted before; only its statistics are missing
                data = None
            else:
                self.step(f"converting {spec.name} {variant}")
                data = self._run("convert", saved, variant, representative)
            if data is not None:
                write_atomic(path, data)
        except ConversionError as exc:  # the converter refused the model: a result, cached
            log.warning("%s %s did not convert: %s", spec.name, variant, exc)
            write_json(failure, {"reason": str(exc), "kind": exc.kind})
            return self._finish(spec, variant, path, failure, stats, cached=False)
        except HarnessError:
            raise
        except Exception as exc:  # noqa: BLE001 - crashed, killed, OSError...: tried next run
            log.warning("%s %s: build failed: %s", spec.name, variant, exc)
            return Artifact(spec.name, variant, error=_why(exc),
                            error_kind=ErrorKind.BUILD_FAILED)
        if debug:
            self._debug(spec, variant, saved, representative, stats)
        return self._finish(spec, variant, path, failure, stats, cached=False)

    def _debug(self, spec: ModelSpec, variant: str, saved: Path,
               representative: np.ndarray | None, stats: Path) -> None:
        """The QuantizationDebugger's statistics of a full-integer variant; a failure is a
        quant_error row (not cached: the debugger runs again next time)."""
        quant = self.suite.measurements.quant_error
        assert quant is not None
        self.step(f"quantization debugger {spec.name} {variant}")
        try:
            frame = self._run("debug", saved, variant, representative, quant.threshold)
            write_atomic(stats, frame.to_csv(index=False).encode())
        except HarnessError:
            raise
        except Exception as exc:  # noqa: BLE001 - the debugger is a tool: its crash is a row
            self._failed("quant_error", spec.name, variant, "quantization debugger", exc)

    def _denylisted(self, spec: ModelSpec, model_key: str, variant: str, saved: Path,
                    representative: np.ndarray | None) -> bytes | Artifact:
        """The full-integer mode with its suspected layers (QuantizationDebugger) kept in float;
        an Artifact with the reason when its base variant has no statistics."""
        import pandas as pd

        from harness.artifacts.convert import ConversionError
        from harness.artifacts.quant_debug import suspected_nodes

        mode = variant.removesuffix(DENYLIST_SUFFIX)
        base = self._variant(spec, model_key, mode)
        stats = base.extra.get("quant_debug")
        if stats is None:
            failed = base.error_kind if base.error else ErrorKind.BUILD_FAILED
            return Artifact(spec.name, variant, error_kind=failed,
                            error=f"{mode} has no quantization statistics "
                                  f"({base.error or 'the quantization debugger failed'})")
        nodes = suspected_nodes(pd.read_csv(stats))
        if not nodes:
            raise ConversionError(f"no suspected layers in {mode}: nothing to keep in float",
                                  kind=ErrorKind.NOT_APPLICABLE)
        self.step(f"converting {spec.name} {variant}")
        return self._run("denylist", saved, mode, representative, nodes)

    def _failed(self, measurement: str, model: str, variant: str | None, step: str,
                exc: Exception) -> None:
        log.warning("%s %s: %s failed: %s", model, variant or "", step, exc)
        self.failure_rows.append(failure_row(
            measurement=measurement, error_kind=ErrorKind.BUILD_FAILED, phase="build",
            message=f"{step} failed: {_why(exc)}", suite=self.suite.name, model=model,
            variant=variant))

    def _finish(self, spec: ModelSpec, variant: str, path: Path, failure: Path, stats: Path,
                cached: bool) -> Artifact:
        if path.is_file():
            artifact = _tflite_artifact(spec.name, variant, path, cached=cached)
        else:
            reason = json.loads(failure.read_text())
            artifact = Artifact(spec.name, variant, cached=cached, error=reason["reason"],
                                error_kind=reason.get("kind", ErrorKind.CONVERSION_FAILED))
        if stats.is_file():
            artifact.extra["quant_debug"] = stats
        return artifact

    def _file_artifact(self, spec: ModelSpec) -> Artifact:
        assert spec.file is not None
        self._count(reused=1)
        return _tflite_artifact(spec.name, AS_IS, spec.file, cached=True)


def _why(exc: Exception) -> str:
    """An exception as a one-line reason (StepFailed and ConverterFailed already are one)."""
    from harness.artifacts.convert import ConverterFailed

    if isinstance(exc, (StepFailed, ConverterFailed)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _tflite_artifact(model: str, variant: str, path: Path, cached: bool) -> Artifact:
    return Artifact(model, variant, path=path, sha256=sha256_file(path),
                    size_bytes=path.stat().st_size, cached=cached)
