"""Build every artifact a suite needs, once, cached under a content hash of its inputs.

A second run with nothing changed loads nothing heavy: no TensorFlow import, no training, no conversion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.artifacts import Artifact, EvalData
from harness.artifacts.cache import (code_version, key_of, package_version, sha256_file,
                                     write_atomic, write_json)
from harness.config.suite import ModelFile, Suite
from harness.errors import UserError

log = logging.getLogger("harness.artifacts")

Step = Callable[[str], None]


@dataclass(frozen=True)
class ModelSpec:
    """One model of a suite: a NILM appliance × architecture, or a user's file."""

    name: str
    appliance: str | None = None
    arch: str | None = None
    file: Path | None = None


def model_specs(suite: Suite, suite_path: Path) -> list[ModelSpec]:
    """The models a suite names, in order."""
    specs: list[ModelSpec] = []
    if suite.workload is not None:
        specs += [ModelSpec(f"{appliance}_{arch}", appliance=appliance, arch=arch)
                  for appliance in suite.workload.appliances
                  for arch in suite.workload.architectures]
    for entry in suite.models:
        specs.append(ModelSpec(entry.name, file=_model_file(entry, suite_path)))
    return specs


def _model_file(entry: ModelFile, suite_path: Path) -> Path:
    path = Path(entry.path).expanduser()
    path = path if path.is_absolute() else (suite_path.parent / path)
    if not path.exists():
        raise UserError(f"{suite_path}: models.{entry.name}.path: {path} does not exist")
    if not (path.suffix in (".tflite", ".keras") or (path / "saved_model.pb").is_file()):
        raise UserError(f"{suite_path}: models.{entry.name}.path: {path} is not a .tflite file, "
                        "a .keras file or a SavedModel directory")
    return path


FULL_INTEGER = ("w8_a8", "w8_a16")
DENYLIST_SUFFIX = "_denylist"


def variants_for(spec: ModelSpec, suite: Suite) -> list[str]:
    """A .tflite file is measured as is; everything else in every requested variant, plus w8_a8
    with its suspected layers kept in float when the suite asks for it."""
    if spec.file is not None and spec.file.suffix == ".tflite":
        return ["as_is"]
    variants = list(suite.variants)
    quant = suite.measurements.quant_error
    if quant is not None and quant.denylist_variant and spec.appliance is not None:
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
        self._data: dict[str, Any] = {}

    # -- public -------------------------------------------------------------------------------
    def build(self, spec: ModelSpec) -> list[Artifact]:
        """All variants of one model (a failed conversion is an Artifact with `error`)."""
        if spec.file is not None and spec.file.suffix == ".tflite":
            return [self._file_artifact(spec)]
        model_key = self._model_key(spec)
        artifacts = [self._variant(spec, model_key, variant) for variant in variants_for(spec, self.suite)]
        evaldata = self._eval_data(spec) if spec.appliance else None
        for artifact in artifacts:
            artifact.eval = evaldata
            artifact.source = self.cache / "models" / model_key / "model.keras"
        return artifacts

    # -- keys ---------------------------------------------------------------------------------
    def _data_key(self, appliance: str) -> str:
        from harness.workloads.nilm import data_fingerprint

        workload = self.suite.workload
        assert workload is not None
        return key_of("data", data_fingerprint(workload, appliance), workload.window,
                      workload.training.max_eval_windows, code_version("workloads/nilm"))

    def _model_key(self, spec: ModelSpec) -> str:
        if spec.file is not None:
            return key_of("file", spec.name, _tree_hash(spec.file))
        workload = self.suite.workload
        assert workload is not None and spec.arch is not None and spec.appliance is not None
        arch_spec = getattr(workload, spec.arch).model_dump()
        return key_of("model", self._data_key(spec.appliance), spec.arch, arch_spec,
                      workload.training.model_dump(), package_version("tensorflow-cpu", "tensorflow"))

    # -- data and models ----------------------------------------------------------------------
    def _nilm_data(self, appliance: str) -> Any:
        if appliance not in self._data:
            from harness.workloads.nilm import prepare

            self.step(f"preparing {appliance} data")
            assert self.suite.workload is not None
            self._data[appliance] = prepare(self.suite.workload, appliance, self.cache / "data")
        return self._data[appliance]

    def _eval_data(self, spec: ModelSpec) -> EvalData:
        import json

        from harness.workloads.nilm.appliances import params

        assert spec.appliance is not None
        folder = self.cache / "eval" / self._data_key(spec.appliance)
        inputs, truth, meta = (folder / "test_inputs.npy", folder / "test_truth_w.npy",
                               folder / "meta.json")
        if not (inputs.is_file() and truth.is_file() and meta.is_file()):
            data = self._nilm_data(spec.appliance)
            write_atomic(truth, _npy_bytes(np.asarray(data.test_targets_w, dtype=np.float32)))
            write_atomic(inputs, _npy_bytes(np.asarray(data.test_inputs, dtype=np.float32)))
            write_json(meta, {"sample_seconds": data.test_sample_seconds})
        return EvalData(spec.appliance, inputs, sha256_file(inputs), truth,
                        float(params(spec.appliance).max_power_w),
                        float(json.loads(meta.read_text())["sample_seconds"]))

    def _keras_model(self, spec: ModelSpec, model_key: str) -> Path:
        """Path of the trained (or user's) Keras model, training it if not cached."""
        if spec.file is not None:
            return spec.file
        path = self.cache / "models" / model_key / "model.keras"
        if path.is_file():
            return path
        from harness.workloads.nilm.models import build_model, export_model
        from harness.workloads.nilm.train import train

        workload = self.suite.workload
        assert spec.appliance is not None and spec.arch is not None and workload is not None
        data = self._nilm_data(spec.appliance)
        self.step(f"training {spec.name}")

        def epoch_done(epoch: int, epochs: int, logs: dict) -> None:
            self.step(f"training {spec.name}: epoch {epoch}/{epochs} "
                      f"val_loss {logs.get('val_loss', float('nan')):.4f}")

        model = train(workload, spec.appliance, spec.arch, data, progress=epoch_done)
        inference = build_model(spec.arch, workload)  # same weights, no training loss/optimizer
        inference.set_weights(model.get_weights())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name("model.tmp.keras")
        export_model(inference, workload.window).save(tmp)
        tmp.replace(path)
        self.built += 1
        return path

    def _representative(self, spec: ModelSpec) -> np.ndarray | None:
        if spec.appliance is None:
            return None
        return np.asarray(self._nilm_data(spec.appliance).representative, dtype=np.float32)

    def _variant(self, spec: ModelSpec, model_key: str, variant: str) -> Artifact:
        quant = self.suite.measurements.quant_error
        debug = quant is not None and variant in FULL_INTEGER and spec.appliance is not None
        key = key_of("tflite", model_key, variant, code_version("artifacts/convert.py"),
                     code_version("workloads/nilm/quant_debug.py"), quant and quant.model_dump(),
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
        representative = self._representative(spec)
        try:
            if variant.endswith(DENYLIST_SUFFIX):
                data = self._denylisted(spec, model_key, variant, factory, representative)
            else:
                data = convert(factory, variant, representative)
                if debug:
                    from harness.workloads.nilm.quant_debug import debug_full_int8

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
        """Fresh converters over the batch-1 SavedModel of a model (trained first if needed)."""
        from harness.artifacts.convert import converter_factory, export_batch1

        keras_path = self._keras_model(spec, model_key)
        if spec.appliance is not None:
            import harness.workloads.nilm.models  # noqa: F401 - registers the custom layers
        shape = (self.suite.workload.window, 1) if self.suite.workload and spec.appliance else None
        saved = export_batch1(keras_path, self.cache / "models" / model_key / "saved_model", shape)
        return converter_factory(saved)

    def _denylisted(self, spec: ModelSpec, model_key: str, variant: str,
                    factory: Callable[[], Any], representative: np.ndarray | None) -> bytes:
        """The full-integer mode with its suspected layers (QuantizationDebugger) kept in float."""
        import pandas as pd

        from harness.artifacts.convert import ConversionError, configure
        from harness.workloads.nilm.quant_debug import convert_with_denylist, suspected_nodes

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
            import json

            reason = json.loads(failure.read_text())
            artifact = Artifact(spec.name, variant, cached=cached, error=reason["reason"],
                                error_kind=reason.get("kind", "conversion_failed"))
        if stats.is_file():
            artifact.extra["quant_debug"] = stats
        return artifact

    def _file_artifact(self, spec: ModelSpec) -> Artifact:
        assert spec.file is not None
        self.reused += 1
        return _tflite_artifact(spec.name, "as_is", spec.file, cached=True)


def _tflite_artifact(model: str, variant: str, path: Path, cached: bool) -> Artifact:
    return Artifact(model, variant, path=path, sha256=sha256_file(path),
                    size_bytes=path.stat().st_size, cached=cached)


def _tree_hash(path: Path) -> str:
    if path.is_file():
        return sha256_file(path)
    return key_of([(str(p.relative_to(path)), sha256_file(p)) for p in sorted(path.rglob("*"))
                   if p.is_file()])


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
