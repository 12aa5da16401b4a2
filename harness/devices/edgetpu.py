"""Coral Edge TPU targets (`kind: edgetpu`): the full-int8 model with int8 I/O, compiled on the
controller by `edgetpu_compiler`, run on the device by the standard runner with the
`libedgetpu.so.1` delegate (`targets/delegate_runner.py`).

Build rows: the int8 model's size, the compiled model's size and what the compiler reported
(`harness.parsers.edgetpu_compiler`: operators on the Edge TPU vs the CPU, on-chip and off-chip
memory, subgraphs; off-chip streaming or CPU operators make those rows invalid, with a hint).

Latency on the device is the `invoke()` time of the compiled model (the standard latency rows,
delegate "edgetpu"); the Python loop rate with pre-processing is a separate metric
(`loop_rate_hz`, method "python_loop").

Which TFLite runtime runs the delegate. libedgetpu is built against one TensorFlow Lite version,
and not every runtime works with every libedgetpu (`pair_verdict`, docs/devices.md):

* tf.lite (the full tensorflow package) cannot run the Edge TPU delegate at all
  (google-coral/edgetpu#126, #124): it is never a fallback;
* the stock libedgetpu (Debian package version "16.0", "15.0", ...) works with tflite_runtime up
  to 2.11 (Coral's tested pair: 16.0 with 2.5.0.post1); from 2.12 the interpreter segfaults
  (google-coral/edgetpu#812), and ai-edge-litert does not work with it either;
* a libedgetpu rebuilt for a TensorFlow version (feranick/libedgetpu packages, version
  "16.0tf2.17.1-1") matches the tflite_runtime of that version and works with ai-edge-litert
  (google-ai-edge/LiteRT#3611).

`probe(ctx)` runs a small program on the device (`PROBE_SCRIPT`, standard library only, Python
3.5+: a Coral Dev Board runs Mendel with Python 3.7, where no ai-edge-litert wheel exists): can
the target's Python load libedgetpu.so.1, its `edgetpu_version()` and the Edge TPUs it lists
(`edgetpu_list_devices`, edgetpu_c.h), the libedgetpu Debian package and version (dpkg-query),
and the TFLite runtimes installed with their versions. From that, `delegate_runtimes` gives the
job the runtimes the runner may try, in order (tflite_runtime first); a target whose runtimes
are all known-bad with its libedgetpu, a library that does not load or no Edge TPU attached stop
the job with a row that names the fix, before the runner starts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.artifacts import Artifact
from harness.config import Target
from harness.devices import runner_exec
from harness.devices.base import DeviceKind, Rows, TargetContext
from harness.errors import HarnessError, InfraError
from harness.parsers.edgetpu_compiler import METHOD, parse_compilation
from harness.results.rows import rows_from_records
from harness.results.schema import failure_row, make_row

if TYPE_CHECKING:
    from harness.plan import Job

DELEGATE_LIBRARY = "libedgetpu.so.1"
DELEGATE_RUNTIMES = ("tflite_runtime", "ai_edge_litert")  # as targets/backends.py, in order
DEVICE_FIX = ("install the Edge TPU runtime (`sudo apt-get install libedgetpu1-std` from the "
              "Coral apt repository), plug in the Coral USB Accelerator or use the Dev Board, and "
              "check the device node (/dev/apex_0 for PCIe/M.2, lsusb shows 18d1:9302 or "
              "1a6e:089a for USB)")
RUNTIME_FIX = ("install Coral's tflite-runtime 2.5.0.post1 for the stock libedgetpu 16.0 "
               "(`sudo apt-get install python3-tflite-runtime` from the Coral apt repository, or "
               "the wheel from https://github.com/google-coral/pycoral/releases), or a libedgetpu "
               "rebuilt for the installed runtime's TensorFlow version "
               "(https://github.com/feranick/libedgetpu/releases); then `harness targets --check`")
LAST_STOCK_TFLITE = (2, 11)  # tflite_runtime >= 2.12 segfaults with the stock libedgetpu (#812)
REBUILT_RE = re.compile(r"tf(\d+)\.(\d+)")

# Runs on the device with the target's Python; prints one JSON document. Standard library only,
# Python 3.5+ (Mendel on the Coral Dev Board has 3.7): no f-strings, no importlib.metadata needed.
PROBE_SCRIPT = r'''
import ctypes, importlib, json, subprocess, sys
out = {"library": None, "library_error": None, "edgetpu_version": None, "devices": None,
       "package": None, "runtimes": {}}
try:
    lib = ctypes.CDLL(sys.argv[1])
    out["library"] = sys.argv[1]
except OSError as exc:
    lib = None
    out["library_error"] = str(exc)[:300]
if lib is not None:
    try:
        lib.edgetpu_version.restype = ctypes.c_char_p
        out["edgetpu_version"] = lib.edgetpu_version().decode("utf-8", "replace")
    except Exception as exc:
        out["edgetpu_version_error"] = str(exc)[:200]
    try:
        class Device(ctypes.Structure):
            _fields_ = [("type", ctypes.c_int), ("path", ctypes.c_char_p)]
        lib.edgetpu_list_devices.restype = ctypes.POINTER(Device)
        lib.edgetpu_list_devices.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
        count = ctypes.c_size_t(0)
        found = lib.edgetpu_list_devices(ctypes.byref(count))
        out["devices"] = [{"type": "pci" if found[i].type == 0 else "usb",
                           "path": (found[i].path or b"").decode("utf-8", "replace")}
                          for i in range(count.value)]
        if count.value:
            lib.edgetpu_free_devices.argtypes = [ctypes.POINTER(Device)]
            lib.edgetpu_free_devices(found)
    except Exception as exc:
        out["devices_error"] = str(exc)[:200]
try:
    proc = subprocess.Popen(["dpkg-query", "-W", "-f",
                             "${db:Status-Abbrev} ${Package} ${Version}\n",
                             "libedgetpu1-std", "libedgetpu1-max"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    text = proc.communicate()[0]
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith("ii"):
            out["package"] = {"name": parts[1], "version": parts[2]}
            break
except OSError:
    pass
def dist_version(names):
    try:
        from importlib import metadata
        for name in names:
            try:
                return metadata.version(name)
            except Exception:
                pass
    except ImportError:
        pass
    try:
        import pkg_resources
        for name in names:
            try:
                return pkg_resources.get_distribution(name).version
            except Exception:
                pass
    except ImportError:
        pass
    return None
import importlib.util
for module, names in (("tflite_runtime", ("tflite-runtime", "tflite_runtime")),
                      ("ai_edge_litert", ("ai-edge-litert", "ai-edge-litert-nightly")),
                      ("tensorflow", ("tensorflow", "tensorflow-cpu", "tensorflow-aarch64"))):
    try:
        spec = importlib.util.find_spec(module)
    except Exception:
        spec = None
    if spec is None:
        continue
    version = dist_version(names)
    if version is None and module != "tensorflow":
        try:
            version = getattr(importlib.import_module(module), "__version__", None)
        except Exception:
            version = None
    out["runtimes"][module] = version
print(json.dumps(out))
'''


def _major_minor(version: str | None) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def pair_verdict(package_version: str | None, runtime: str,
                 runtime_version: str | None) -> tuple[str, str]:
    """("ok" | "bad" | "unknown", why) for a TFLite runtime with the libedgetpu of Debian package
    version `package_version` (None when unknown)."""
    label = f"{runtime} {runtime_version or '?'}"
    if runtime == "tensorflow":
        return "bad", (f"{label}: tf.lite cannot run the Edge TPU delegate ('Unsupported data "
                       "type in custom op handler', google-coral/edgetpu#126); use tflite_runtime")
    if not package_version:
        return "unknown", f"{label}: the libedgetpu package version is unknown"
    rebuilt = REBUILT_RE.search(package_version)
    have = _major_minor(runtime_version)
    if rebuilt:
        built_for = (int(rebuilt.group(1)), int(rebuilt.group(2)))
        built = f"TensorFlow {built_for[0]}.{built_for[1]}"
        if runtime == "ai_edge_litert":
            return "ok", (f"{label} with libedgetpu {package_version} (rebuilt for {built}; "
                          "ai-edge-litert needs a rebuilt libedgetpu, google-ai-edge/LiteRT#3611)")
        if have == built_for:
            return "ok", f"{label} with libedgetpu {package_version}, built for {built}"
        return "unknown", (f"{label} with libedgetpu {package_version}, which was built for "
                           f"{built}: untested pair")
    if runtime == "ai_edge_litert":
        return "bad", (f"{label} with the stock libedgetpu {package_version}: ai-edge-litert "
                       "works only with a libedgetpu rebuilt for its TensorFlow version "
                       "(google-ai-edge/LiteRT#3611)")
    if have is None:
        return "unknown", f"{label} with libedgetpu {package_version}: runtime version unknown"
    if have > LAST_STOCK_TFLITE:
        return "bad", (f"{label} with the stock libedgetpu {package_version}: tflite-runtime "
                       "2.12 and newer segfault with it (google-coral/edgetpu#812)")
    return "ok", f"{label} with the stock libedgetpu {package_version}"


def package_version(findings: dict[str, Any]) -> str | None:
    package = findings.get("package") or {}
    return package.get("version")


def delegate_runtimes(findings: dict[str, Any] | None,
                      configured: str | None = "auto") -> tuple[list[str], str | None]:
    """(the runtimes the runner may try for the delegate, in order; why none can, or None).

    The inventory's `runtime:` (not "auto") is used as given. Otherwise the installed runtimes
    of DELEGATE_RUNTIMES that are not a known-bad pair with the device's libedgetpu, known-good
    pairs first; with nothing known about the device, DELEGATE_RUNTIMES.
    """
    if configured not in ("auto", None):
        return [configured], None
    if not findings or findings.get("runtimes") is None:
        return list(DELEGATE_RUNTIMES), None
    installed = findings["runtimes"]
    good, unknown, bad = [], [], []
    for name in DELEGATE_RUNTIMES:
        if name not in installed:
            continue
        verdict, why = pair_verdict(package_version(findings), name, installed[name])
        {"ok": good, "unknown": unknown, "bad": bad}[verdict].append(why if verdict == "bad"
                                                                     else name)
    if good or unknown:
        return good + unknown, None
    if bad:
        return [], "no installed TFLite runtime works with this libedgetpu: " + "; ".join(bad)
    return list(DELEGATE_RUNTIMES), None  # none installed: the runner says runtime_missing


def probe_findings(output: str) -> dict[str, Any]:
    """The device program's JSON document, with the verdict of each installed runtime."""
    found = json.loads(output.strip().splitlines()[-1])
    found["pairs"] = [dict(zip(("runtime", "version", "verdict", "reason"),
                               (name, version, *pair_verdict(package_version(found), name,
                                                             version))))
                      for name, version in sorted(found.get("runtimes", {}).items())]
    return found


def _summary(found: dict[str, Any], order: list[str]) -> str:
    package = found.get("package") or {}
    if found.get("library") is None:
        return f"{DELEGATE_LIBRARY} does not load"
    library = f"{package['name']} {package['version']}" if package else found["library"]
    devices = found.get("devices")
    attached = ("no Edge TPU attached" if devices == [] else
                f"{len(devices)} Edge TPU ({', '.join(d['type'] for d in devices)})"
                if devices else "Edge TPUs not listed")
    runtimes = found.get("runtimes") or {}
    runs = (f"delegate runs with {order[0]} {runtimes.get(order[0]) or ''}".strip()
            if order and order[0] in runtimes else "no usable TFLite runtime")
    version = found.get("edgetpu_version")
    return f"{library}{f' ({version})' if version else ''}; {attached}; {runs}"


class EdgeTpuKind(DeviceKind):
    """`kind: edgetpu`: the w8_a8 variant with int8 I/O, compiled, run with the delegate."""

    name = "edgetpu"

    def unsupported(self, target: Target, variant: str) -> str | None:
        """The Edge TPU runs full-integer models only."""
        if variant == "w8_a8":
            return None
        if variant == "as_is":
            return ("a .tflite file is measured as is; the Edge TPU needs the w8_a8 variant of a "
                    "Keras model (int8 I/O, compiled by edgetpu_compiler)")
        return f"the Edge TPU runs only full-int8 models (w8_a8), not {variant}"

    def prepare(self, target: Target, artifact: Artifact, cache: Path) -> Artifact:
        """The int8-I/O model (always built) and, where the compiler exists, the compiled model.

        A missing compiler does not raise here: the built int8 model and the error go into
        `extra` and `execute` reports both (the build rows, then the failure row).
        """
        from harness.artifacts.edgetpu_compile import compile_model, require_compiler
        from harness.artifacts.int8_io import int8_io_model

        assert artifact.path is not None
        model = int8_io_model(artifact.path, cache)
        extra: dict[str, Any] = {"int8_model": str(model.path), "int8_sha256": model.sha256,
                                 "int8_size_bytes": model.size_bytes,
                                 "input_shape": model.input_shape}
        prepared = Artifact(artifact.model, artifact.variant, path=model.path, sha256=model.sha256,
                            size_bytes=model.size_bytes, source=artifact.source,
                            eval=artifact.eval, cached=model.cached, extra=extra)
        try:
            compiler = require_compiler()
            compiled = compile_model(model, cache, compiler)
        except HarnessError as exc:
            extra["deferred_error"] = exc
            return prepared
        extra.update(compiled=True, compiler_version=compiled.compiler_version,
                     compiler_argv=compiled.argv, compiler_stdout=compiled.stdout,
                     compiler_log=compiled.log)
        prepared.path, prepared.sha256, prepared.size_bytes = (compiled.path, compiled.sha256,
                                                               compiled.size_bytes)
        return prepared

    def probe(self, ctx: TargetContext) -> dict[str, Any]:
        """libedgetpu (loadable? version, Debian package), the Edge TPUs it lists, the TFLite
        runtimes installed and the runtimes the delegate may use (`delegate_runtimes`), with
        a hint for each known-bad libedgetpu/runtime pair.

        `delegate_library` is None when the library does not load; `devices` is None when it
        could not be asked. A probe that fails altogether gives {"probe_error": ...}."""
        try:
            res = ctx.transport.run([ctx.target.python_exe, "-c", PROBE_SCRIPT, DELEGATE_LIBRARY],
                                    timeout=60)
            found = probe_findings(res.stdout)
        except (InfraError, ValueError, IndexError) as exc:
            detail = str(exc) if isinstance(exc, InfraError) else \
                (res.stderr or res.stdout).strip()[-300:]
            return {"delegate_library": None, "probe_error": detail,
                    "hints": [f"Edge TPU probe failed on {ctx.name}: {detail}"]}
        order, refusal = delegate_runtimes(found, ctx.target.runtime)
        found.update(delegate_library=found.get("library"), delegate_runtimes=order,
                     refusal=refusal, summary=_summary(found, order))
        hints = [f"known-bad pair, not used: {p['reason']}" for p in found["pairs"]
                 if p["verdict"] == "bad" and p["runtime"] in DELEGATE_RUNTIMES
                 and p["runtime"] not in order]
        hints += [f"`runtime: {p['runtime']}` in inventory.yaml is a known-bad pair: "
                  f"{p['reason']}" for p in found["pairs"]
                  if p["verdict"] == "bad" and p["runtime"] in order]
        if found["library"] is None:
            hints.append(f"{DELEGATE_LIBRARY} does not load ({found.get('library_error')}): "
                         f"{DEVICE_FIX}")
        elif found.get("devices") == []:
            hints.append(f"no Edge TPU attached: {DEVICE_FIX}")
        if refusal:
            hints.append(f"{refusal}; fix: {RUNTIME_FIX}")
        found["hints"] = hints
        return found

    def device_problem(self, ctx: TargetContext) -> tuple[str, str] | None:
        """(error kind, message) when the probe shows the job cannot run here, else None."""
        found = self.probed(ctx)
        if found.get("probe_error"):
            return None  # the runner reports what is wrong, with the same fixes
        if found.get("delegate_library") is None:
            return "device_missing", (f"{ctx.name}: {DELEGATE_LIBRARY} cannot be loaded by "
                                      f"{ctx.target.python_exe} ({found.get('library_error')}); "
                                      f"fix: {DEVICE_FIX}")
        if found.get("devices") == []:
            return "device_missing", (f"{ctx.name}: {DELEGATE_LIBRARY} "
                                      f"({found.get('edgetpu_version') or 'version unknown'}) "
                                      f"lists no Edge TPU; fix: {DEVICE_FIX}")
        if found.get("refusal"):
            return "runtime_missing", f"{ctx.name}: {found['refusal']}; fix: {RUNTIME_FIX}"
        return None

    def build_rows(self, artifact: Artifact, fields: dict[str, Any]) -> Rows:
        """Rows for what prepare() built: the int8 model's size and the compiler's report."""
        extra = artifact.extra
        rows = [make_row(**fields, measurement="size", metric="int8_model_bytes",
                         value=extra.get("int8_size_bytes"), unit="B", n=1, method="int8_io",
                         message=f"int8 input/output, input shape {extra.get('input_shape')}")]
        if extra.get("compiled"):
            rows.append(make_row(**fields, measurement="size", metric="size_bytes",
                                 value=artifact.size_bytes, unit="B", n=1, method=METHOD))
            rows += rows_from_records(parse_compilation(extra.get("compiler_stdout", ""),
                                                        extra.get("compiler_log")), fields)
        return rows

    def execute(self, ctx: TargetContext, job: "Job", artifact: Artifact) -> tuple[Rows, Rows]:
        """Build rows, then (compiled model + device) the runner with the Edge TPU delegate."""
        fields = dict(ctx.fields, model=artifact.model, variant=artifact.variant,
                      artifact_sha256=artifact.sha256, runtime=job.runtime)
        rows = self.build_rows(artifact, fields)
        exc = artifact.extra.get("deferred_error")
        if exc is not None:
            return rows + [failure_row(measurement="build", error_kind=getattr(exc, "kind",
                                                                               "user_error"),
                                       message=str(exc), phase=getattr(exc, "phase", None)
                                       or "build", **fields)], []
        extra: dict[str, Any] = {"loop_rate": True}
        if ctx.target.accelerator in (None, "edgetpu"):  # a compiled model needs the delegate
            problem = self.device_problem(ctx)
            if problem is not None:
                return rows + [failure_row(measurement="latency", error_kind=problem[0],
                                           message=problem[1], phase="probe", **fields)], []
            extra["delegate"] = {"name": "edgetpu", "library": DELEGATE_LIBRARY,
                                 "runtimes": self.probed(ctx).get("delegate_runtimes")
                                 or list(DELEGATE_RUNTIMES)}
        measured, series = runner_exec.execute(ctx, job, artifact, extra)
        return rows + measured, series
