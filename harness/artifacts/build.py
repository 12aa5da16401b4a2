"""Build every artifact a suite needs, once, cached under a content hash of its inputs.

The workload (harness/workloads) provides the models, their calibration data and their evaluation
data; this module converts, quantizes and caches. A second run with nothing changed loads nothing
heavy: no TensorFlow import, no training, no conversion.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.artifacts import Artifact
from harness.artifacts.cache import (code_version, key_of, package_version, sha256_file,
                                     tree_sha256, write_atomic, write_json)
from harness.config.suite import Suite
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


class Builder:
    """Builds and caches the artifacts of one suite."""

    def __init__(self, suite: Suite, suite_path: Path, cache_dir: Path, step: Step | None = None):
        self.suite = suite
        self.suite_path = suite_path
        self.cache = cache_dir
        self.step = step or (lambda message: None)
        self.built = 0
        self.reused = 0
        self.workload: Workload | None = open_workload(suite, suite_path,
                                                       lambda message: self.step(message))

    # -- public -------------------------------------------------------------------------------
    def build(self, spec: ModelSpec) -> list[Artifact]:
        """All variants of one model (a failed conversion is an Artifact with `error`)."""
        workload = self._workload(spec)
        evaldata = workload.evaluation(spec, self.cache) if workload is not None else None
        if spec.file is not None and spec.file.suffix == ".tflite":
            artifacts = [self._file_artifact(spec)]
        else:
            model_key = self._model_key(spec)
            artifacts = [self._variant(spec, model_key, variant)
                         for variant in variants_for(spec, self.suite)]
            for artifact in artifacts:
                artifact.source = self._keras_path(spec, model_key)
        for artifact in artifacts:
            artifact.eval = evaldata
        return artifacts

    # -- models -------------------------------------------------------------------------------
    def _workload(self, spec: ModelSpec) -> Workload | None:
        """The workload that calibrates and scores a model (None for a bare model file)."""
        return self.workload if spec.workload is not None else None

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
        model = workload.build_model(spec, self.cache)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name("model.tmp.keras")
        model.save(tmp)
        tmp.replace(path)
        self.built += 1
        return path

    def _calibration(self, spec: ModelSpec) -> np.ndarray | None:
        workload = self._workload(spec)
        return workload.calibration(spec, self.cache) if workload is not None else None

    # -- variants -----------------------------------------------------------------------------
    def _variant(self, spec: ModelSpec, model_key: str, variant: str) -> Artifact:
        quant = self.suite.measurements.quant_error
        debug = quant is not None and variant in FULL_INTEGER and spec.workload is not None
        key = key_of("tflite", model_key, variant, code_version("artifacts/convert.py"),
                     code_version("artifacts/quant_debug.py"), quant and quant.model_dump(),
                     package_version("tensorflow-cpu", "tensorflow"))
        path = self.cache / "tflite" / f"{key}.tflite"
        failure = self.cache / "tflite" / f"{key}.failed.json"
        stats = self.cache / "tflite" / f"{key}.quant_debug.csv"
        if failure.is_file() or (path.is_file() and (stats.is_file() or not debug)):
            self.reused += 1
            return self._finish(spec, variant, path, failure, stats, cached=True)
        from harness.artifacts.convert import ConversionError, configure, convert

        factory = self._factory(spec, model_key)
        self.step(f"converting {spec.name} {variant}")
        self.built += 1
        representative = self._calibration(spec)
        try:
            if variant.endswith(DENYLIST_SUFFIX):
                data = self._denylisted(spec, model_key, variant, factory, representative)
            else:
                data = convert(factory, variant, representative)
                if debug:
                    from harness.artifacts.quant_debug import debug_full_int8

                    self.step(f"quantization debugger {spec.name} {variant}")
                    frame = debug_full_int8(lambda: configure(factory(), variant, representative),
                                            representative, quant.threshold)
                    write_atomic(stats, frame.to_csv(index=False).encode())
        except ConversionError as exc:
            log.warning("%s %s did not convert: %s", spec.name, variant, exc)
            write_json(failure, {"reason": str(exc), "kind": exc.kind})
        else:
            write_atomic(path, data)
        return self._finish(spec, variant, path, failure, stats, cached=False)

    def _factory(self, spec: ModelSpec, model_key: str) -> Callable[[], Any]:
        """Fresh converters over the batch-1 SavedModel of a model (built first if needed)."""
        from harness.artifacts.convert import converter_factory, export_batch1

        keras_path = self._keras_model(spec, model_key)
        workload = self._workload(spec)
        shape = None
        if workload is not None:
            workload.register_layers()
            shape = workload.input_shape(spec)
        saved = export_batch1(keras_path, self.cache / "models" / model_key / "saved_model", shape)
        return converter_factory(saved)

    def _denylisted(self, spec: ModelSpec, model_key: str, variant: str,
                    factory: Callable[[], Any], representative: np.ndarray | None) -> bytes:
        """The full-integer mode with its suspected layers (QuantizationDebugger) kept in float."""
        import pandas as pd

        from harness.artifacts.convert import ConversionError, configure
        from harness.artifacts.quant_debug import convert_with_denylist, suspected_nodes

        base = self._variant(spec, model_key, variant.removesuffix(DENYLIST_SUFFIX))
        stats = base.extra.get("quant_debug")
        if stats is None:
            raise ConversionError(f"{base.variant} has no quantization statistics "
                                  f"({base.error or 'not converted'})")
        nodes = suspected_nodes(pd.read_csv(stats))
        if not nodes:
            raise ConversionError(f"no suspected layers in {base.variant}: nothing to keep in float",
                                  kind="not_applicable")
        mode = variant.removesuffix(DENYLIST_SUFFIX)
        return convert_with_denylist(lambda: configure(factory(), mode, representative),
                                     representative, nodes)

    def _finish(self, spec: ModelSpec, variant: str, path: Path, failure: Path, stats: Path,
                cached: bool) -> Artifact:
        if path.is_file():
            artifact = _tflite_artifact(spec.name, variant, path, cached=cached)
        else:
            reason = json.loads(failure.read_text())
            artifact = Artifact(spec.name, variant, cached=cached, error=reason["reason"],
                                error_kind=reason.get("kind", "conversion_failed"))
        if stats.is_file():
            artifact.extra["quant_debug"] = stats
        return artifact

    def _file_artifact(self, spec: ModelSpec) -> Artifact:
        assert spec.file is not None
        self.reused += 1
        return _tflite_artifact(spec.name, AS_IS, spec.file, cached=True)


def _tflite_artifact(model: str, variant: str, path: Path, cached: bool) -> Artifact:
    return Artifact(model, variant, path=path, sha256=sha256_file(path),
                    size_bytes=path.stat().st_size, cached=cached)
