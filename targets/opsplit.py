"""Op-split profiling: time every operator of a TFLite model on its own (device side).

Used by the runner (`job.py`) for `measure.profile` when no `benchmark_model` binary is available (no pip
package ships one). Standard library + numpy + the TFLite runtime only; never imports TensorFlow
unless TensorFlow *is* the runtime in use.

How:
1. Read the flatbuffer with the flatbuffer utilities that ship with the runtime
   (`ai_edge_litert.tools.flatbuffer_utils`; with `tf.lite` as the runtime, TensorFlow's copy).
   `tflite_runtime` ships none: the section then says so (status "error", kind
   "flatbuffer_tools_missing") instead of crashing the job.
2. One full invoke with `experimental_preserve_all_tensors=True` on the runner's deterministic input
   (`numpy.random.RandomState(0).standard_normal`, quantized like `TFLiteModel.set_input`) captures
   every intermediate.
3. Cut the primary subgraph into single-operator models: the operator's non-constant inputs become
   graph inputs, its outputs graph outputs, constant buffers are kept. Operators whose inputs are
   all constant (DEQUANTIZE of float16 weights) are folded by the runtime at prepare time: they are
   not timed alone but travel with their consumer, which thus keeps static weights (and XNNPACK).
4. Each single-op model is loaded exactly like the whole model (`backends.TFLiteModel`: same
   runtime, same thread count, default delegate = XNNPACK where the runtime applies it), fed the real
   captured intermediates, and timed together with the whole model by `measure.measure_latency`
   (warm-up, then interleaved shuffled rounds until both a count and a minimum time are reached).
5. Report per-op medians, the whole-model median and their ratio. Every single-op invoke pays the
   fixed per-invoke cost (Python call, interpreter and delegate dispatch) that the whole model pays
   once; a one-ADD 1×1 probe model timed in the same rounds measures it, and `ratio` counts it once
   (`ratio_raw` is the plain sum of per-op medians / whole-model median).
"""

from __future__ import annotations

import copy
import os
import tempfile
from typing import Any

from backends import TFLiteModel, quantized  # shipped beside this file
from measure import measure_latency, sample_stats
from runner_error import RunnerError

SECTION_VERSION = 1
CONSTANT_OP = ("all inputs are constant: the runtime evaluates it once while preparing, not per "
               "inference (not timed; it is part of its consumer's single-op model)")


class OpSplitError(Exception):
    """Op-split cannot run at all (kind is machine-readable)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --------------------------------------------------------------------------- flatbuffer access

def flatbuffer_tools(module: Any) -> tuple[Any, Any]:
    """(flatbuffer_utils, schema_py_generated) that ship with the runtime in use.

    ai_edge_litert ships both under `ai_edge_litert.tools` / `ai_edge_litert`; TensorFlow under
    `tensorflow.lite.tools` / `tensorflow.lite.python` (only tried when `tf.lite` is the runtime,
    so a device with tflite_runtime never pays for importing TensorFlow); tflite_runtime ships none.
    """
    errors = []
    try:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils as fbu
        return fbu, schema
    except ImportError as exc:
        errors.append(f"ai_edge_litert: {exc}")
    if getattr(module, "__name__", "").startswith("tensorflow"):
        try:
            from tensorflow.lite.python import schema_py_generated as schema
            from tensorflow.lite.tools import flatbuffer_utils as fbu
            return fbu, schema
        except ImportError as exc:
            errors.append(f"tensorflow: {exc}")
    raise OpSplitError(
        "flatbuffer_tools_missing",
        f"op-split profiling needs the TFLite flatbuffer utilities, which runtime "
        f"{getattr(module, '__name__', module)!r} does not ship ({'; '.join(errors) or 'none found'}); "
        "fix: pip install ai-edge-litert on the target (it ships ai_edge_litert.tools.flatbuffer_utils),"
        " or give the target a benchmark_model binary (inventory field `benchmark_model`)")


def op_name(fbu: Any, schema: Any, model: Any, op: Any) -> str:
    """Builtin operator name (CONV_2D, …) or the custom code."""
    opcode = model.operatorCodes[op.opcodeIndex]
    # extended builtin codes live in builtinCode, old ones in deprecatedBuiltinCode (TensorFlow's
    # flatbuffer_utils has no helper for this)
    code = max(opcode.builtinCode or 0, opcode.deprecatedBuiltinCode or 0)
    if code == schema.BuiltinOperator.CUSTOM:
        custom = opcode.customCode
        return custom.decode() if isinstance(custom, bytes) else str(custom)
    names = getattr(op_name, "_names", None)
    if names is None:
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        op_name._names = names  # type: ignore[attr-defined]
    return names.get(code, str(code))


def _is_constant(model: Any, tensor: Any) -> bool:
    buf = model.buffers[tensor.buffer] if 0 <= tensor.buffer < len(model.buffers) else None
    return buf is not None and ((buf.data is not None and len(buf.data) > 0) or bool(buf.size))


def _name(tensor: Any) -> str:
    name = tensor.name
    return name.decode(errors="replace") if isinstance(name, bytes) else str(name)


def constant_ops(model: Any) -> set[int]:
    """Operators of the primary subgraph whose inputs are all constant (e.g. DEQUANTIZE of float16
    weights): the runtime folds them while preparing, so they cost nothing per inference."""
    graph = model.subgraphs[0]
    return {i for i, op in enumerate(graph.operators)
            if all(t < 0 or _is_constant(model, graph.tensors[t]) for t in op.inputs)}


def single_op_model(fbu: Any, model: Any, index: int) -> tuple[bytes, list[int]]:
    """A model holding only operator `index` of the primary subgraph.

    The operator's non-constant inputs become graph inputs and its outputs graph outputs, constant
    buffers are kept. Producers with only constant inputs (`constant_ops`, e.g. DEQUANTIZE of
    float16 weights) come along, so the operator still sees static weights and a delegate takes it
    as in the whole model. Returns the serialized model and, in graph-input order, the original
    tensor index that feeds each input. With one subgraph, only the buffers used are kept; with
    control flow (several subgraphs), the other subgraphs and all buffers are kept.
    """
    graph = model.subgraphs[0]
    op = graph.operators[index]
    folded = constant_ops(model) - {index}
    producer = {t: i for i, o in enumerate(graph.operators) for t in o.outputs}
    prelude = sorted({producer[t] for t in op.inputs if t >= 0 and producer.get(t) in folded})
    members = [graph.operators[i] for i in prelude] + [op]
    produced = {t for o in members[:-1] for t in o.outputs}
    used: list[int] = []
    for member in members:
        for t in list(member.inputs) + list(member.outputs) + list(member.intermediates or []):
            if t >= 0 and t not in used:
                used.append(t)
    remap = {old: new for new, old in enumerate(used)}
    prune = len(model.subgraphs) == 1
    buffers = [model.buffers[0]] if prune else model.buffers
    tensors = []
    for old in used:
        tensor = copy.copy(graph.tensors[old])
        if prune:
            if _is_constant(model, tensor):
                buffers.append(model.buffers[tensor.buffer])
                tensor.buffer = len(buffers) - 1
            else:
                tensor.buffer = 0
        tensors.append(tensor)
    feeds = [t for t in op.inputs
             if t >= 0 and t not in produced and not _is_constant(model, graph.tensors[t])]
    feeds = list(dict.fromkeys(feeds))

    new_ops = []
    for member in members:
        new_op = copy.copy(member)
        new_op.inputs = [remap[t] if t >= 0 else -1 for t in member.inputs]
        new_op.outputs = [remap[t] for t in member.outputs]
        if member.intermediates:
            new_op.intermediates = [remap[t] for t in member.intermediates]
        new_ops.append(new_op)
    new_graph = copy.copy(graph)
    new_graph.tensors = tensors
    new_graph.inputs = [remap[t] for t in feeds]
    new_graph.outputs = [remap[t] for t in op.outputs]
    new_graph.operators = new_ops
    new_model = copy.copy(model)
    new_model.subgraphs = [new_graph] + list(model.subgraphs[1:])
    new_model.buffers = buffers
    new_model.signatureDefs = None
    if prune:  # metadata points at buffers that were dropped
        new_model.metadata = None
        new_model.metadataBuffer = None
    return bytes(fbu.convert_object_to_bytearray(new_model)), feeds


def overhead_probe_model(schema: Any, fbu: Any) -> bytes:
    """A one-ADD model on a 1×1 float tensor: its invoke time is the fixed per-invoke cost.

    Every single-op model pays that cost (Python call, interpreter and delegate dispatch) once, as
    the whole model does once; summing N per-op medians counts it N times. Timed together with the
    others, it lets the section report the sum with the cost counted once (`ratio`) beside the raw
    sum (`ratio_raw`).
    """
    model = schema.ModelT()
    model.version = 3
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.ADD
    code.version = 1
    model.operatorCodes = [code]
    tensors = []
    for name in (b"x", b"y"):
        t = schema.TensorT()
        t.shape, t.type, t.buffer, t.name = [1, 1], schema.TensorType.FLOAT32, 0, name
        tensors.append(t)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 0], [1]
    op.builtinOptionsType = schema.BuiltinOptions.AddOptions
    op.builtinOptions = schema.AddOptionsT()
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = tensors, [0], [1], [op]
    model.subgraphs = [graph]
    model.buffers = [schema.BufferT()]
    return bytes(fbu.convert_object_to_bytearray(model))


# --------------------------------------------------------------------------- capture

def deterministic_inputs(interp: Any) -> None:
    """The runner's input: RandomState(0) standard normal, quantized like the runner's models."""
    import numpy as np

    rng = np.random.RandomState(0)
    for detail in interp.get_input_details():
        interp.set_tensor(detail["index"], quantized(detail, rng.standard_normal(detail["shape"])))


def capture_tensors(module: Any, model_path: str, graph: Any, model: Any) -> dict[int, Any]:
    """Every non-constant tensor of the primary subgraph after one invoke (preserve_all_tensors)."""
    import warnings

    import numpy as np

    with warnings.catch_warnings():  # "intended for debugging purposes only": that is the use here
        warnings.simplefilter("ignore")
        interp = module.Interpreter(model_path=model_path, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    deterministic_inputs(interp)
    interp.invoke()
    values = {}
    for i, tensor in enumerate(graph.tensors):
        if _is_constant(model, tensor):
            continue
        try:
            values[i] = np.array(interp.get_tensor(i))  # a copy: no reference into the arena
        except ValueError:  # tensors with no data (e.g. optional, resource handles)
            pass
    return values


def _feed(m: TFLiteModel, feeds: list[int], values: dict[int, Any]) -> None:
    details = m.interp.get_input_details()
    resized = False
    for detail, t in zip(details, feeds):
        if t not in values:
            raise OpSplitError("missing_intermediate", f"tensor {t} was not captured")
        if tuple(detail["shape"]) != tuple(values[t].shape):
            m.interp.resize_tensor_input(detail["index"], list(values[t].shape))
            resized = True
    if resized:
        m.interp.allocate_tensors()
    for detail, t in zip(details, feeds):
        m.interp.set_tensor(detail["index"], values[t].astype(detail["dtype"], copy=False))


# --------------------------------------------------------------------------- profile

def _threads(spec: dict) -> int:
    threads = spec.get("threads", 1)
    if isinstance(threads, (list, tuple)):
        threads = threads[0] if threads else 1
    return int(threads or 1)


def _error(kind: str, message: str, spec: dict) -> dict[str, Any]:
    return {"section_version": SECTION_VERSION, "method": "op_split", "status": "error",
            "error": {"kind": kind, "message": message}, "threads": _threads(spec),
            "protocol": None, "whole": None, "ops": [], "overhead_us": None,
            "sum_op_median_us": None, "sum_op_median_raw_us": None, "whole_median_us": None,
            "ratio": None, "ratio_raw": None, "ops_failed": None, "ops_skipped": None}


def profile_model(module: Any, model_path: str, spec: dict) -> dict[str, Any]:
    """Profile every operator of `model_path` on its own and the whole model, same protocol.

    module: the runtime's interpreter module (ai_edge_litert.interpreter, tflite_runtime.interpreter
    or tf.lite). spec: threads (int, or the first of a list), warmup_runs, warmup_seconds, runs,
    min_seconds, rounds (the keys of the latency spec). A model or runtime problem never raises: the
    section then has status "error" and error {kind, message}.

    Returns (times in µs)::

        {"section_version": 1, "method": "op_split", "status": "ok"|"error",
         "error": {"kind", "message"} | None, "threads": int,
         "protocol": {"warmup_runs", "warmup_seconds", "runs", "min_seconds", "rounds"},
         "capture": {"input", "preserve_all_tensors", "tensors"},
         "whole": {"samples_us": [...], "median_us", "p10_us", "p90_us", "iqr_us", "n", "init_ms",
                   "delegate", "delegated_nodes", "undelegated_ops"},
         "ops": [  # execution order
             {"index", "op" (CONV_2D, …), "name" ("[<first output tensor>]:<index>"), "output",
              "status": "ok"|"error"|"skipped" (all inputs constant), "error": str|None, "median_us", "p10_us", "p90_us",
              "iqr_us", "n", "net_us" (median − overhead, ≥ 0), "init_ms", "delegate",
              "delegated_nodes"}],
         "overhead_us": median invoke time of a one-ADD 1×1 model (fixed per-invoke cost),
         "sum_op_median_raw_us": Σ per-op medians,
         "sum_op_median_us": Σ per-op medians with the per-invoke cost counted once
                             (= Σ net_us + overhead_us, like the whole model pays it once),
         "whole_median_us", "ratio": sum_op_median_us / whole_median_us,
         "ratio_raw": sum_op_median_raw_us / whole_median_us, "ops_failed": int,
         "ops_skipped": int}
    """
    threads = _threads(spec)
    try:
        fbu, schema = flatbuffer_tools(module)
    except OpSplitError as exc:
        return _error(exc.kind, str(exc), spec)
    try:
        model = fbu.read_model(model_path)
    except Exception as exc:  # noqa: BLE001 - a broken file is data, not a crash
        return _error("model_load", f"{model_path}: cannot read the flatbuffer: {exc}", spec)
    graph = model.subgraphs[0]
    try:
        values = capture_tensors(module, model_path, graph, model)
    except (ValueError, RuntimeError) as exc:
        return _error("capture", f"{model_path}: one invoke with experimental_preserve_all_tensors "
                      f"failed: {exc}", spec)

    folded = constant_ops(model)
    ops: list[dict[str, Any]] = []
    timed_ops: list[tuple[dict[str, Any], TFLiteModel]] = []
    with tempfile.TemporaryDirectory(prefix="opsplit-") as tmp:
        try:
            whole = TFLiteModel(module, model_path, threads)
            probe_path = os.path.join(tmp, "overhead_probe.tflite")
            with open(probe_path, "wb") as f:
                f.write(overhead_probe_model(schema, fbu))
            probe = TFLiteModel(module, probe_path, threads)
        except RunnerError as exc:
            return _error(exc.kind, str(exc), spec)
        deterministic_inputs(whole.interp)
        deterministic_inputs(probe.interp)
        for index, op in enumerate(graph.operators):
            out = graph.tensors[op.outputs[0]] if len(op.outputs) else None
            entry: dict[str, Any] = {
                "index": index, "op": op_name(fbu, schema, model, op),
                "output": _name(out) if out is not None else "", "status": "ok", "error": None,
                **sample_stats([]), "net_us": None, "init_ms": None, "delegate": None,
                "delegated_nodes": None}
            entry["name"] = f"[{entry['output']}]:{index}"
            ops.append(entry)
            if index in folded:  # e.g. DEQUANTIZE of float16 weights: part of its consumer
                entry.update(status="skipped", error=CONSTANT_OP)
                continue
            try:
                content, feeds = single_op_model(fbu, model, index)
                path = os.path.join(tmp, f"op{index}.tflite")
                with open(path, "wb") as f:
                    f.write(content)
                m = TFLiteModel(module, path, threads)
                _feed(m, feeds, values)
                m.interp.invoke()  # fail here, not inside the timing loop
            except Exception as exc:  # noqa: BLE001 - one odd operator must not end the profile
                entry.update(status="error", error=f"{type(exc).__name__}: {exc}")
                continue
            entry.update(init_ms=round(m.init_ms, 3), delegate=m.coverage["delegate"],
                         delegated_nodes=m.coverage["delegated_nodes"])
            timed_ops.append((entry, m))
        results = measure_latency([whole, probe] + [m for _, m in timed_ops], spec)

    whole_result, probe_result = results[0], results[1]
    overhead = sample_stats(probe_result["samples_us"])["median_us"] or 0.0
    for (entry, _), result in zip(timed_ops, results[2:]):
        entry.update(sample_stats(result["samples_us"]))
        entry["net_us"] = round(max(entry["median_us"] - overhead, 0.0), 3)
    whole_stats = sample_stats(whole_result["samples_us"])
    whole_median = whole_stats["median_us"]
    ok = [e for e, _ in timed_ops]
    raw = round(sum(e["median_us"] for e in ok), 3)
    once = round(sum(e["net_us"] for e in ok) + overhead, 3) if ok else 0.0
    return {
        "section_version": SECTION_VERSION, "method": "op_split", "status": "ok", "error": None,
        "threads": threads,
        "protocol": {k: spec.get(k) for k in ("warmup_runs", "warmup_seconds", "runs",
                                              "min_seconds", "rounds")},
        "capture": {"input": "RandomState(0).standard_normal", "preserve_all_tensors": True,
                    "tensors": len(values)},
        "whole": {"samples_us": whole_result["samples_us"], **whole_stats,
                  "init_ms": whole_result["init_ms"], "delegate": whole_result["delegate"],
                  "delegated_nodes": whole_result["delegated_nodes"],
                  "undelegated_ops": whole_result["undelegated_ops"]},
        "ops": ops,
        "overhead_us": round(overhead, 3),
        "sum_op_median_raw_us": raw,
        "sum_op_median_us": once,
        "whole_median_us": whole_median,
        "ratio": round(once / whole_median, 4) if whole_median else None,
        "ratio_raw": round(raw / whole_median, 4) if whole_median else None,
        "ops_failed": sum(1 for e in ops if e["status"] == "error"),
        "ops_skipped": sum(1 for e in ops if e["status"] == "skipped"),
    }
