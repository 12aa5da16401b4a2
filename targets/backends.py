"""Device-side: the runtimes a job can run a model with, and one model factory per runtime.

* `tflite`: a TFLite interpreter from ai_edge_litert, else tflite_runtime, else tensorflow.lite
  (`import_runtime` says which one was used); its default delegate (XNNPACK) where it applies one.
* `delegate`: a TFLite runtime with an external delegate (the Coral Edge TPU's libedgetpu.so.1),
  loaded with the runtime's own `load_delegate`; threads do not matter to the accelerator. The
  runtimes tried, in order, are the job's `delegate.runtimes` (the controller picks those that
  work with the device's libedgetpu), else tflite_runtime then ai_edge_litert; never
  tensorflow, whose tf.lite cannot run the Edge TPU delegate (google-coral/edgetpu#126). A job
  `runtime` other than "auto" is used as given.
* `onnxruntime`: an `.onnx` model in an ONNX Runtime CPU session.

Every model has the same surface: `invoke()` (what is timed), `set_input(x)` (float input,
quantized when the model's input is integer), `output_value()` (float output), `input`/`output`
({"shape", "dtype", ...}), `threads`, `init_ms` and `coverage` ({"delegate", "delegated_nodes",
"undelegated_ops"}). Standard library + numpy + the runtime in use only.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from runner_error import RunnerError

TFLITE_RUNTIMES = ("ai_edge_litert", "tflite_runtime", "tensorflow")
DELEGATE_RUNTIMES = ("tflite_runtime", "ai_edge_litert")
BACKENDS = ("tflite", "delegate", "onnxruntime")
INTEGER_DTYPES = ("int8", "uint8", "int16")
DEVICE_FIX = {
    "edgetpu": "install the Edge TPU runtime (`sudo apt-get install libedgetpu1-std` from the "
               "Coral apt repository), plug in the Coral USB Accelerator or use the Dev Board, and "
               "check the device node (/dev/apex_0 for PCIe/M.2, lsusb shows 18d1:9302 or "
               "1a6e:089a for USB)",
}
RUNTIME_FIX = {
    "edgetpu": "install the tflite-runtime that matches libedgetpu: Coral's tflite-runtime "
               "2.5.0.post1 (`python3-tflite-runtime` from the Coral apt repository, or the "
               "wheel from https://github.com/google-coral/pycoral/releases) for the stock "
               "libedgetpu 16.0, or a libedgetpu rebuilt for your TensorFlow Lite version",
}


# --------------------------------------------------------------------------- TFLite

def import_runtime(preferred: Optional[str] = "auto", order: Sequence[str] = TFLITE_RUNTIMES,
                   fix: Optional[str] = None) -> Tuple[str, str, Any]:
    """(name, version, interpreter module): the first of `order` that imports (by default
    ai_edge_litert, else tflite_runtime, else tf.lite), or `preferred` when it is not "auto"."""
    order = tuple(order) if preferred in ("auto", None) else (preferred,)
    for name in order:
        try:
            if name == "ai_edge_litert":
                import ai_edge_litert
                from ai_edge_litert import interpreter as module
                version = getattr(ai_edge_litert, "__version__", "?")
            elif name == "tflite_runtime":
                import tflite_runtime
                from tflite_runtime import interpreter as module
                version = getattr(tflite_runtime, "__version__", "?")
            elif name == "tensorflow":
                import tensorflow as tf
                module, version = tf.lite, tf.__version__
            else:
                raise ImportError(f"unknown TFLite runtime {name!r}")
            return name, version, module
        except ImportError:  # try the next one
            continue
    raise RunnerError("runtime_missing", f"no TFLite runtime for {sys.executable} (tried "
                      f"{', '.join(order)}); fix: "
                      f"{fix or sys.executable + ' -m pip install ai-edge-litert'}")


def delegate_coverage(ops: List[dict]) -> Dict[str, Any]:
    """Which nodes the default delegate (XNNPACK) took, from the interpreter's node list.

    The node list keeps the original nodes after delegation and appends one DELEGATE node per
    delegated partition. Walking back from the graph's consumers, a tensor produced by a DELEGATE
    node needs no original node; every original node still needed is executed undelegated.
    """
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    originals = [op for op in ops if op["op_name"] != "DELEGATE"]
    producer = {}
    for op in originals:
        for t in op["outputs"]:
            producer[int(t)] = op
    delegated_out = {int(t): op for op in delegates for t in op["outputs"]}
    consumed = {int(t) for op in ops for t in op["inputs"]}
    # graph outputs: tensors produced but never consumed
    needed = [t for t in list(producer) + list(delegated_out) if t not in consumed]
    seen, executed = set(), {}
    while needed:
        t = needed.pop()
        if t in seen:
            continue
        seen.add(t)
        op = delegated_out.get(t) or producer.get(t)
        if op is None:
            continue
        if op["op_name"] != "DELEGATE":
            executed[op["index"]] = op["op_name"]
        needed.extend(int(i) for i in op["inputs"] if int(i) >= 0)
    return {"delegate": "XNNPACK" if delegates else "none", "delegated_nodes": len(delegates),
            "undelegated_ops": sorted(executed.values())}


def external_delegate_coverage(ops: List[dict], name: str) -> Dict[str, Any]:
    """Coverage of an external delegate: its DELEGATE (or edgetpu-custom) nodes vs the rest."""
    on_device = [op for op in ops if op["op_name"] == "DELEGATE"
                 or "edgetpu" in op["op_name"].lower()]
    cpu_ops = sorted(op["op_name"] for op in ops if op not in on_device)
    return {"delegate": name, "delegated_nodes": len(on_device), "undelegated_ops": cpu_ops}


def quantized(detail: dict, x: Any) -> Any:
    """Float `x` shaped and typed for the tensor `detail` (quantized when it is integer)."""
    import numpy as np

    return typed(detail, np.asarray(x, dtype=np.float32).reshape(detail["shape"]))


def typed(detail: dict, x: Any) -> Any:
    """Float array `x` (any shape) in the dtype of the tensor `detail`, quantized when integer."""
    import numpy as np

    dtype = detail["dtype"]
    if np.dtype(dtype).name in INTEGER_DTYPES:
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        x = np.clip(np.round(np.asarray(x, dtype=np.float32) / scale + zero), info.min, info.max)
    return np.asarray(x).astype(dtype)


class TFLiteModel:
    """One TFLite interpreter: at a fixed thread count, or with an external delegate."""

    def __init__(self, module: Any, path: str, threads: int, delegate: Any = None,
                 delegate_name: str = "", delegate_library: str = "") -> None:
        import numpy as np

        if delegate is None:
            kwargs: Dict[str, Any] = {"model_path": path, "num_threads": threads}
            where = path
        else:  # the accelerator ignores the thread count
            kwargs = {"model_path": path, "experimental_delegates": [delegate]}
            where, threads = f"{path} with {delegate_library}", 1
        started = time.perf_counter()
        try:
            self.interp = module.Interpreter(**kwargs)
            self.interp.allocate_tensors()
        except ValueError as exc:
            unsupported = delegate is None and "op" in str(exc).lower()
            raise RunnerError("unsupported_op" if unsupported else "model_load",
                              f"{where}: {exc}") from exc
        except RuntimeError as exc:
            raise RunnerError("model_load", f"{where}: {exc}") from exc
        self.init_ms = (time.perf_counter() - started) * 1e3
        self.threads = threads
        self.invoke = self.interp.invoke  # the interpreter's own method: nothing added to a sample
        self.input = self.interp.get_input_details()[0]
        self.output = self.interp.get_output_details()[0]
        self._output_index = self.output["index"]
        integer = np.dtype(self.output["dtype"]).name in INTEGER_DTYPES
        self._output_quantization = self.output["quantization"] if integer else None
        try:
            ops = self.interp._get_ops_details()
        except AttributeError:  # very old runtimes
            ops = []
        self.coverage = (delegate_coverage(ops) if delegate is None
                         else external_delegate_coverage(ops, delegate_name))

    def set_input(self, x: Any) -> None:
        """Set the (float) input, quantizing it when the model has integer input."""
        self.interp.set_tensor(self.input["index"], quantized(self.input, x))

    def typed(self, x: Any) -> Any:
        """Float data (e.g. a whole series) in the input's dtype, quantized once for all windows."""
        import numpy as np

        return typed(self.input, np.nan_to_num(np.asarray(x, dtype=np.float32)))

    def set_typed_input(self, x: Any) -> None:
        """Set input data already in the input's dtype (`typed`): no conversion per call."""
        self.interp.set_tensor(self.input["index"], x.reshape(self.input["shape"]))

    def output_value(self) -> Any:
        """The output as float32 (dequantized when integer)."""
        import numpy as np

        y = self.interp.get_tensor(self._output_index)
        if self._output_quantization is not None:
            scale, zero = self._output_quantization
            return (y.astype(np.float32) - zero) * scale
        return y if y.dtype == np.float32 else y.astype(np.float32)


def load_delegate(module: Any, library: str, options: Optional[dict]) -> Any:
    """The runtime's `load_delegate(library, options)` (tf.lite keeps it under experimental)."""
    load = getattr(module, "load_delegate", None)
    if load is None:
        load = getattr(getattr(module, "experimental", None), "load_delegate", None)
    if load is None:
        raise AttributeError("this TFLite runtime has no load_delegate")
    return load(library, options or {})


# --------------------------------------------------------------------------- ONNX Runtime

def import_onnxruntime() -> Tuple[str, Any]:
    """(version, module) of onnxruntime, or a RunnerError with the fix.

    The kind is `onnxruntime_missing`, not `runtime_missing`: the controller stops a target after
    `runtime_missing`, and the target's TFLite jobs must still run without onnxruntime.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise RunnerError("onnxruntime_missing", f"onnxruntime is not installed for "
                          f"{sys.executable} ({exc}); fix: {sys.executable} -m pip install "
                          "onnxruntime") from exc
    return onnxruntime.__version__, onnxruntime


class OrtModel:
    """One ONNX Runtime CPU session at a fixed thread count (same surface as TFLiteModel)."""

    def __init__(self, ort: Any, path: str, threads: int) -> None:
        import numpy as np

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        started = time.perf_counter()
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise RunnerError("model_load", f"{path}: {exc}") from exc
        self.init_ms = (time.perf_counter() - started) * 1e3
        self.threads = threads
        first_in, first_out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name = first_in.name
        self.input = {"shape": [d if isinstance(d, int) else 1 for d in first_in.shape],
                      "dtype": np.float32}
        self.output = {"shape": [d if isinstance(d, int) else 1 for d in first_out.shape],
                       "dtype": np.float32}
        self.feed = {self.input_name: np.zeros(self.input["shape"], dtype=np.float32)}
        self.result: Any = None
        provider = self.session.get_providers()[0]
        self.coverage = {"delegate": provider, "delegated_nodes": None, "undelegated_ops": []}

    def invoke(self) -> None:
        self.result = self.session.run(None, self.feed)

    def set_input(self, x: Any) -> None:
        import numpy as np

        self.feed = {self.input_name: np.asarray(x, dtype=np.float32).reshape(self.input["shape"])}

    def output_value(self) -> Any:
        import numpy as np

        return np.asarray(self.result[0], dtype=np.float32)


# --------------------------------------------------------------------------- backends

class Backend:
    """A runtime opened for one job: name, version, and `load(path, threads)` → a model."""

    kind = ""
    name = ""
    version = ""
    profiles = False  # can run op-split profiling (`measure.profile`)
    parallel_outputs = True  # several interpreters of one model may run at once (CPU only)

    def thread_counts(self, requested: List[int]) -> List[int]:
        """The thread counts this backend measures, from the job's list."""
        return list(requested) or [1]

    def check_model(self, path: str) -> None:
        """Raise RunnerError when this backend cannot run a model file of this kind."""

    def load(self, path: str, threads: int) -> Any:
        raise NotImplementedError


class TFLiteBackend(Backend):
    """A TFLite interpreter with its default delegate."""

    kind = "tflite"
    profiles = True

    def __init__(self, preferred: Optional[str], order: Sequence[str] = TFLITE_RUNTIMES,
                 fix: Optional[str] = None) -> None:
        self.name, self.version, self.module = import_runtime(preferred, order, fix)

    def load(self, path: str, threads: int) -> TFLiteModel:
        return TFLiteModel(self.module, path, threads)


class DelegateBackend(TFLiteBackend):
    """A TFLite interpreter with an external delegate, loaded on the first model."""

    kind = "delegate"
    profiles = False
    parallel_outputs = False  # one accelerator: a second interpreter would queue or fail

    def __init__(self, preferred: Optional[str], spec: dict) -> None:
        if not isinstance(spec, dict) or not spec.get("library"):
            raise RunnerError("bad_job", 'job field `delegate` needs {"name", "library"}, got '
                              f"{spec!r}")
        order = spec.get("runtimes") or DELEGATE_RUNTIMES
        if not isinstance(order, (list, tuple)) or not set(order) <= set(TFLITE_RUNTIMES):
            raise RunnerError("bad_job", "job field `delegate.runtimes` must list TFLite runtimes "
                              f"({', '.join(TFLITE_RUNTIMES)}), got {order!r}")
        super().__init__(preferred, order, RUNTIME_FIX.get(spec.get("name", "")))
        self.delegate_name = spec.get("name", "delegate")
        self.library = spec["library"]
        self.options = spec.get("options")
        self._delegate: Any = None

    def thread_counts(self, requested: List[int]) -> List[int]:
        return [1]

    def delegate(self) -> Any:
        """The loaded delegate, or a `device_missing` RunnerError with the fix."""
        if self._delegate is None:
            try:
                self._delegate = load_delegate(self.module, self.library, self.options)
            except (ValueError, OSError, RuntimeError, AttributeError) as exc:
                fix = DEVICE_FIX.get(self.delegate_name, "install the delegate library")
                raise RunnerError("device_missing", f"{self.delegate_name} delegate "
                                  f"{self.library} cannot be loaded with {self.name} "
                                  f"{self.version}: {exc}; fix: {fix}") from exc
        return self._delegate

    def load(self, path: str, threads: int) -> TFLiteModel:
        return TFLiteModel(self.module, path, threads, self.delegate(), self.delegate_name,
                           self.library)


class OrtBackend(Backend):
    """ONNX Runtime on the CPU execution provider."""

    kind = "onnxruntime"
    name = "onnxruntime"

    def __init__(self) -> None:
        self.version, self.ort = import_onnxruntime()

    def check_model(self, path: str) -> None:
        if not path.endswith(".onnx"):
            raise RunnerError("model_load", f"{path}: onnxruntime runs .onnx models")

    def load(self, path: str, threads: int) -> OrtModel:
        return OrtModel(self.ort, path, threads)


def backend_kind(job: dict) -> str:
    """The backend a job asks for: `runtime: onnxruntime`, a `delegate` entry, else TFLite."""
    if job.get("runtime") == "onnxruntime":
        return "onnxruntime"
    if job.get("delegate"):
        return "delegate"
    return "tflite"


def open_backend(job: dict, kind: Optional[str] = None) -> Backend:
    """Import the runtime for `job` (backend `kind`, default: from the job's fields)."""
    kind = kind or backend_kind(job)
    if kind == "onnxruntime":
        return OrtBackend()
    if kind == "delegate":
        if not job.get("delegate"):
            raise RunnerError("bad_job", "a delegate job needs a `delegate` entry "
                              "{\"name\", \"library\"}")
        return DelegateBackend(job.get("runtime", "auto"), job["delegate"])
    if kind == "tflite":
        return TFLiteBackend(job.get("runtime", "auto"))
    raise RunnerError("bad_job", f"unknown backend {kind!r} (one of {', '.join(BACKENDS)})")
