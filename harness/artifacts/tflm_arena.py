"""TensorFlow Lite Micro on the controller: which variants it runs, the tensor arena a model needs
(measured with `tflite-micro`), and whether it fits a microcontroller.

The `tflite-micro` package (`pip install tflite-micro`, extra `tflm`) runs the same reference
kernels as the MCU build. `Interpreter.print_allocations()` writes the RecordingMicroAllocator report
(`[RecordingMicroAllocator] Arena allocation total N bytes`, …) to the C-level stderr, file
descriptor 2 — not `sys.stderr` — so it is captured by pointing fd 2 at a temporary file.

The reported total depends on the arena's alignment (the allocator aligns the head up and tail
allocations down to 16 bytes, so a generous arena's total carries up to 15 bytes of padding) and
counts what stays allocated, not temporary memory some kernels take while preparing. So
`tflm_arena` reads the total once with a generous arena and then searches for the smallest arena the
interpreter accepts: that is the arena the model needs (one byte less fails to allocate), and for
the NILM CNNs `print_allocations()` with exactly that arena reports the same number.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from harness.config.variants import parse_variant
from harness.errors import InfraError
from harness.parsers.tflm import parse_print_allocations

ALIGNMENT = 16
# converter modes TFLM can run: float, full-integer int8 and int16x8, int8 with float fallback
TFLM_VARIANTS = ("convert_only", "w8_a8", "w8_a16", "w8_a8_fallback")
NOT_TFLM = {"w8": "dynamic-range (hybrid) kernels are not in TFLM",
            "f16": "float16 weights (DEQUANTIZE from float16) are not in TFLM"}


class TFLMError(InfraError):
    """The model cannot be loaded or allocated by TFLM (kind unsupported_op / arena)."""


def capture_fd2(fn: Callable[[], Any]) -> tuple[Any, str]:
    """Run fn with the C-level stderr (fd 2) redirected to a temp file; return (result, text)."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            result = fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return result, tmp.read().decode("utf-8", errors="replace")


def _runtime() -> Any:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:
        raise InfraError(f"tflite-micro is not installed ({exc})", kind="tool_missing",
                         phase="probe", hint="pip install 'harness[tflm]' (or tflite-micro)") from exc
    return runtime


def _interpreter(model: bytes, arena_size: int) -> tuple[Any | None, str]:
    """(interpreter or None when allocation fails, what TFLM printed on fd 2)."""
    runtime = _runtime()

    error: list[str] = []

    def load() -> Any:
        try:
            return runtime.Interpreter.from_bytes(model, arena_size=arena_size)
        except Exception as exc:  # noqa: BLE001 - RuntimeError (allocation), struct.error (not a model)
            error.append(f"{type(exc).__name__}: {exc}")
            return None
    interp, log = capture_fd2(load)
    return interp, log + "".join(f"\n{e}" for e in error)


def allocates(model_path: str | Path, arena_size: int) -> bool:
    """Whether TFLM can allocate the model's tensors in an arena of `arena_size` bytes."""
    interp, _ = _interpreter(Path(model_path).read_bytes(), int(arena_size))
    return interp is not None


def print_allocations(model_path: str | Path, arena_size: int) -> str:
    """The print_allocations() text for the model loaded with `arena_size` (TFLMError if it fails)."""
    model = Path(model_path).read_bytes()
    interp, log = _interpreter(model, int(arena_size))
    if interp is None:
        raise TFLMError(f"{model_path}: TFLM cannot allocate the model in {arena_size} bytes: "
                        f"{_last_lines(log)}", kind="arena", phase="run")
    _, text = capture_fd2(interp.print_allocations)
    return text


def _last_lines(log: str, n: int = 3) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return " | ".join(lines[-n:]) or "no message"


def tflm_supports(model_path: str | Path) -> tuple[bool, str | None]:
    """(True, None) if TFLM loads and allocates the model with a generous arena, else (False, why)."""
    model = Path(model_path).read_bytes()
    interp, log = _interpreter(model, _generous(model))
    if interp is None:
        return False, _last_lines(log)
    return True, None


def _generous(model: bytes) -> int:
    return max(len(model) * 10, 1 << 20)


def tflm_arena(model_path: str | Path) -> dict[str, Any]:
    """The tensor arena the model needs under TFLM, and what print_allocations() says about it.

    Returns {"arena_bytes": the smallest arena the interpreter allocates the model in (one byte less
    fails), "reported_bytes": print_allocations()' total with exactly that arena,
    "reported_generous_bytes": its total with a generous arena, "head_bytes", "tail_bytes"}.

    print_allocations() reports what stays allocated, with up to 15 bytes of alignment padding; for
    most models that is the arena (arena_bytes == reported_bytes), but kernels that take temporary
    memory while preparing (e.g. per-channel int8 CONV_2D on tiny models) need more than stays
    allocated, so the search goes up from the reported total until an arena works, then bisects.
    TFLMError if the model does not load at all.
    """
    model = Path(model_path).read_bytes()
    interp, log = _interpreter(model, _generous(model))
    if interp is None:
        raise TFLMError(f"{model_path}: TFLM cannot load the model: {_last_lines(log)}",
                        kind="unsupported_op", phase="run",
                        hint="TFLM runs float32 and full-integer models with its builtin ops only")
    _, text = capture_fd2(interp.print_allocations)
    generous = parse_print_allocations(text)
    del interp

    def works(size: int) -> bool:
        return _interpreter(model, size)[0] is not None

    lo = max(generous["total_bytes"] - (ALIGNMENT - 1), 1)  # cannot need less than what stays
    if works(lo):
        hi = lo
    else:
        step, hi = ALIGNMENT, generous["total_bytes"]
        while not works(hi):
            lo = hi + 1
            hi = generous["total_bytes"] + step
            step *= 2
            if hi > _generous(model):
                hi = _generous(model)
                break
    while lo < hi:  # smallest working size in [lo, hi]
        mid = (lo + hi) // 2
        if works(mid):
            hi = mid
        else:
            lo = mid + 1
    interp, _ = _interpreter(model, lo)
    _, text = capture_fd2(interp.print_allocations)
    at_arena = parse_print_allocations(text)
    return {"arena_bytes": lo, "reported_bytes": at_arena["total_bytes"],
            "reported_generous_bytes": generous["total_bytes"],
            "head_bytes": at_arena["head_bytes"], "tail_bytes": at_arena["tail_bytes"]}


def tflm_arena_bytes(model_path: str | Path) -> int:
    """The smallest tensor arena (bytes) in which TFLM allocates the model (see `tflm_arena`)."""
    return tflm_arena(model_path)["arena_bytes"]


def tflm_can_run(variant: str) -> bool:
    """Whether a variant's converter mode is one TFLM can run at all (float, full-integer; an
    optimisation variant such as `prune50` or `qat` by the mode it converts to).

    Dynamic-range `w8` and `f16` are not; whether every operator is supported is decided by
    loading the model (`tflm_supports`).
    """
    return _mode(variant) in TFLM_VARIANTS


def why_not(variant: str) -> str | None:
    """The reason a variant is skipped for TFLM, or None if it is a TFLM variant."""
    if tflm_can_run(variant):
        return None
    return NOT_TFLM.get(_mode(variant), f"variant {variant!r} is not float32 or full-integer")


def _mode(variant: str) -> str:
    """The converter mode a variant name means (`qat` -> w8_a8); the name itself if unknown."""
    try:
        return parse_variant(variant).mode
    except ValueError:
        return variant


def fits(arena: int, model_bytes: int, ram_kb: int | None, flash_kb: int | None, *,
         ram_reserved_bytes: int = 0, flash_reserved_bytes: int = 0) -> dict[str, Any]:
    """Whether a model fits an MCU: the arena in RAM and the model (flatbuffer) in flash.

    Reserved bytes stand for what else lives there (stack, firmware, TFLM code). Returns
    {"ram_needed_bytes", "ram_bytes", "ram_margin_bytes", "ram_used_pct", "ram_fits",
     "flash_needed_bytes", "flash_bytes", "flash_margin_bytes", "flash_used_pct", "flash_fits",
     "fits"}; a side without a capacity (None) has None figures and does not decide `fits`
    (None when neither side is known). A negative margin is how much is missing.
    """
    out: dict[str, Any] = {}
    verdicts = []
    for side, needed, capacity_kb in (("ram", arena + ram_reserved_bytes, ram_kb),
                                      ("flash", model_bytes + flash_reserved_bytes, flash_kb)):
        capacity = capacity_kb * 1024 if capacity_kb is not None else None
        out[f"{side}_needed_bytes"] = int(needed)
        out[f"{side}_bytes"] = capacity
        if capacity is None:
            out.update({f"{side}_margin_bytes": None, f"{side}_used_pct": None,
                        f"{side}_fits": None})
            continue
        ok = needed <= capacity
        out[f"{side}_margin_bytes"] = int(capacity - needed)
        out[f"{side}_used_pct"] = round(100.0 * needed / capacity, 2) if capacity else None
        out[f"{side}_fits"] = ok
        verdicts.append(ok)
    out["fits"] = all(verdicts) if verdicts else None
    return out
