"""TFLite conversion in the five quantization modes, from a Keras model with a fixed batch of 1.

TensorFlow is imported here only, lazily: nothing else on the start-up path pays for it.

A refusal of the model by the converter is a `ConversionError` (a result, cached by the builder);
anything else is `ConverterFailed` or the error itself (OSError, MemoryError: it may not last, so it
is never cached). `ConverterProcess` runs conversions and the QuantizationDebugger in a separate
process, so a converter that crashes, aborts or is killed takes only that conversion with it.
TEST-ONLY: with `HARNESS_TEST_KILL_CONVERTER=<variant>` in its environment, the converter process
kills itself with SIGKILL when it starts converting that variant (a killed converter on demand).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from harness import fileio

KILL_ENV = "HARNESS_TEST_KILL_CONVERTER"

VARIANT_DESCRIPTIONS = {
    "convert_only": "float32",
    "w8": "dynamic-range int8 weights",
    "w8_a8": "full int8 (representative dataset), float I/O",
    "w8_a16": "16x8: int16 activations, int8 weights",
    "f16": "float16 weights",
}


class ConversionError(Exception):
    """A variant that the converter cannot produce; the message is the converter's reason.

    `kind` is `conversion_failed`, or `not_applicable` for a variant that has nothing to build.
    """

    def __init__(self, message: str, kind: str = "conversion_failed") -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self) -> tuple:  # keep `kind` across processes
        return (type(self), (str(self), self.kind))


class ConverterFailed(Exception):
    """A conversion step that failed without the converter refusing the model: it crashed, was
    killed, ran out of memory or hit a full disk. Never cached: the next run tries again."""


def export_batch1(model_path: Path, out_dir: Path, input_shape: tuple[int, ...] | None) -> Path:
    """Export a Keras model as a SavedModel whose signature has a fixed batch of 1.

    With the default dynamic batch the converter adds SHAPE/PACK ops and XNNPACK takes only parts of
    the graph; a static (1, ...) signature avoids that. A SavedModel directory is used as it is.
    """
    if model_path.is_dir():
        return model_path
    import keras
    import tensorflow as tf

    if (out_dir / "saved_model.pb").is_file():
        return out_dir
    model = keras.models.load_model(model_path, compile=False)
    shape = input_shape or tuple(int(d) for d in model.input_shape[1:])
    work = fileio.temp_dir_beside(out_dir)  # unique per writer: concurrent runs never collide
    try:
        model.export(str(work / "saved_model"), format="tf_saved_model", verbose=False,
                     input_signature=[tf.TensorSpec((1, *shape), tf.float32)])
        fileio.replace_dir(work / "saved_model", out_dir)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return out_dir


def converter_factory(saved_model: Path) -> Callable[[], Any]:
    """A factory of fresh converters over one SavedModel."""
    import tensorflow as tf

    return lambda: tf.lite.TFLiteConverter.from_saved_model(str(saved_model))


def _representative(windows: np.ndarray) -> Callable[[], Iterable[list[np.ndarray]]]:
    def generate() -> Iterable[list[np.ndarray]]:
        for window in windows:
            yield [window[np.newaxis].astype(np.float32)]
    return generate


def configure(converter: Any, variant: str, representative: np.ndarray | None) -> Any:
    """Set a converter up for one quantization mode."""
    import tensorflow as tf

    if variant == "convert_only":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "w8":
        return converter
    if variant == "f16":
        converter.target_spec.supported_types = [tf.float16]
        return converter
    if representative is None:
        raise ConversionError(f"{variant} needs a representative dataset (a workload or "
                              "calibration data); a bare model file has none")
    converter.representative_dataset = _representative(representative)
    if variant == "w8_a8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif variant == "w8_a16":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    else:
        raise ConversionError(f"unknown quantization variant {variant!r}")
    return converter


def converting(call: Callable[[], bytes]) -> bytes:
    """Run one conversion: what the converter raises is its refusal of the model (ConversionError
    with its reason), except OSError and MemoryError, which say nothing about the model."""
    try:
        return call()
    except (OSError, MemoryError, ConversionError):
        raise
    except Exception as exc:  # noqa: BLE001 - the converter raises many types; all mean "cannot"
        raise ConversionError(_reason(exc)) from exc


def convert(factory: Callable[[], Any], variant: str, representative: np.ndarray | None) -> bytes:
    """Convert one variant; the converter's refusal is a ConversionError with its reason."""
    converter = configure(factory(), variant, representative)
    return converting(converter.convert)


def _reason(exc: Exception) -> str:
    """The informative line of a converter error (they are long MLIR dumps)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "error:" in line:
            return line[line.index("error:"):][:300]
    return (lines[0] if lines else type(exc).__name__)[:300]


# --------------------------------------------------------------------------- converter process

def run_step(task: str, saved_model: str, variant: str, representative: np.ndarray | None,
             extra: Any = None) -> Any:
    """One build step over a batch-1 SavedModel (in whatever process calls it):
    `convert` -> .tflite bytes; `debug` -> the QuantizationDebugger's per-layer frame (`extra`:
    threshold); `denylist` -> .tflite bytes with the layers of `extra` (tensor names) in float."""
    from harness.artifacts import quant_debug

    if task not in ("convert", "debug", "denylist"):
        raise ValueError(f"unknown build step {task!r}")
    factory = converter_factory(Path(saved_model))
    configured = lambda: configure(factory(), variant, representative)  # noqa: E731
    if task == "convert":
        return convert(factory, variant, representative)
    if task == "debug":
        assert representative is not None
        return quant_debug.debug_full_int8(configured, representative, extra)
    assert representative is not None  # denylist
    return converting(lambda: quant_debug.convert_with_denylist(configured, representative,
                                                                extra))


def _work(task: str, saved_model: str, variant: str, representative: np.ndarray | None,
          extra: Any) -> tuple[str, Any]:
    """`run_step` in the converter process, its outcome as plain data (never raises):
    ("ok", value) | ("refused", (message, kind)) | ("failed", message)."""
    if task == "convert" and os.environ.get(KILL_ENV) == variant:  # TEST-ONLY fault injection
        os.kill(os.getpid(), signal.SIGKILL)
    try:
        return "ok", run_step(task, saved_model, variant, representative, extra)
    except ConversionError as exc:
        return "refused", (str(exc), exc.kind)
    except Exception as exc:  # noqa: BLE001 - any failure goes back to the builder as data
        return "failed", f"{type(exc).__name__}: {_reason(exc)}"


def _serve(conn: Any) -> None:
    """The converter process: steps in, outcomes out, until told to stop (None)."""
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        conn.send(_work(*request))


class ConverterProcess:
    """Build steps (`run_step`) in one separate process that imports TensorFlow once. A converter
    that crashes, aborts or is killed ends only the step it was running (`ConverterFailed`); the
    next step starts a new process."""

    def __init__(self) -> None:
        self._process: Any = None
        self._conn: Any = None

    def run(self, task: str, saved_model: Path, variant: str,
            representative: np.ndarray | None, extra: Any = None) -> Any:
        """The step's value; ConversionError for the converter's refusal, ConverterFailed else."""
        if self._process is None or not self._process.is_alive():
            self._start()
        try:
            self._conn.send((task, str(saved_model), variant, representative, extra))
            status, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            process = self._process
            process.join(10)
            self._forget()
            raise ConverterFailed(f"the converter process died during {task} {variant} "
                                  f"({_how(process.exitcode)})") from exc
        if status == "refused":
            raise ConversionError(*value)
        if status == "failed":
            raise ConverterFailed(value)
        return value

    def close(self) -> None:
        """Stop the process (it also ends with the harness: it is a daemon)."""
        if self._process is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._process.join(30)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._forget()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process that runs TF threads
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), daemon=True,
                                        name="harness-converter")
        self._process.start()
        child.close()

    def _forget(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"
