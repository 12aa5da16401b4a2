"""What is on a target: `harness targets --check`.

`probe(transport, target)` runs one small Python program on the device (standard library only, Python
3.6+) and returns a dict: reachable, reason, arch, OS, Python, TFLite runtime and version (tried in the
runner's order: ai_edge_litert, tflite_runtime, tensorflow), numpy version, CPU governor, temperature,
free disk in the work dir, and hints with the concrete fix for what is missing; then what the
target's device kind checks (`kind_probe`: `DeviceKind.probe`, e.g. trtexec and its TensorRT
version, or libedgetpu and which runtime can run the Edge TPU delegate). `check_targets` connects
to several targets concurrently and never raises for a device that is down: that is a row too.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from harness.errors import HarnessError, InfraError

log = logging.getLogger("harness.probe")

RUNTIMES = ("ai_edge_litert", "tflite_runtime", "tensorflow")

# Runs on the device; prints one JSON document. Keep it Python 3.6 compatible, stdlib only.
PROBE_SCRIPT = r'''
import json, os, platform, shutil, sys, glob
out = {"arch": platform.machine(), "python": platform.python_version(),
       "python_executable": sys.executable, "hostname": platform.node(),
       "cpu_count": os.cpu_count()}
try:
    rel = dict(l.rstrip("\n").split("=", 1) for l in open("/etc/os-release") if "=" in l)
    out["os"] = rel.get("PRETTY_NAME", "").strip('"') or platform.platform()
except Exception:
    out["os"] = platform.platform()
out["kernel"] = platform.release()
try:
    from importlib import metadata as md
except ImportError:
    md = None
def dist_version(*names):
    for n in names:
        try:
            return md.version(n) if md else None
        except Exception:
            pass
    return None
import importlib.util
found = {}
for mod, dists in (("ai_edge_litert", ("ai-edge-litert", "ai-edge-litert-nightly")),
                   ("tflite_runtime", ("tflite-runtime", "tflite_runtime")),
                   ("tensorflow", ("tensorflow", "tensorflow-cpu", "tensorflow-aarch64"))):
    try:
        spec = importlib.util.find_spec(mod)
    except Exception:
        spec = None
    if spec is None:
        continue
    entry = {"version": dist_version(*dists)}
    if mod == "tflite_runtime":
        try:
            import tflite_runtime
            entry["version"] = entry["version"] or getattr(tflite_runtime, "__version__", None)
            import tflite_runtime.interpreter
        except BaseException as exc:
            entry["error"] = "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
    found[mod] = entry
out["runtimes"] = found
out["numpy"] = dist_version("numpy")
def read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except Exception:
        return None
out["governor"] = read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
temps = []
for zone in glob.glob("/sys/class/thermal/thermal_zone*/temp"):
    v = read(zone)
    if v and v.lstrip("-").isdigit():
        temps.append(int(v) / 1000.0)
out["temperature_c"] = max(temps) if temps else None
model = None
for line in (read("/proc/cpuinfo") or "").splitlines():
    k = line.split(":", 1)[0].strip()
    if k in ("model name", "Model", "Hardware") and ":" in line:
        model = line.split(":", 1)[1].strip()
        if k == "Model":
            break
out["cpu_model"] = model
wd = sys.argv[1] if len(sys.argv) > 1 else "."
while wd and not os.path.isdir(wd):
    wd = os.path.dirname(wd.rstrip("/")) or "/"
try:
    out["disk_free_mb"] = round(shutil.disk_usage(wd).free / 1e6)
except Exception:
    out["disk_free_mb"] = None
print(json.dumps(out))
'''


def _major_minor(version: str | None) -> tuple[int, int] | None:
    try:
        parts = (version or "").split(".")
        return int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return None


def hints_for(info: dict[str, Any], target: Any = None) -> list[str]:
    """Concrete fixes for what the probe found missing or broken."""
    hints: list[str] = []
    python = _python(target)
    runtimes = info.get("runtimes") or {}
    numpy = _major_minor(info.get("numpy"))
    if not runtimes:
        hints.append(f"no TFLite runtime: `{python} -m pip install ai-edge-litert`")
    tfl = runtimes.get("tflite_runtime")
    if tfl and _major_minor(tfl.get("version")) == (2, 14) and numpy and numpy >= (2, 0):
        hints.append(f"tflite-runtime {tfl.get('version')} needs numpy<2 (found "
                     f"{info.get('numpy')}): `{python} -m pip install \"numpy<2\"`")
    elif tfl and tfl.get("error"):
        hints.append(f"tflite_runtime does not import ({tfl['error']}); reinstall it: "
                     f"`{python} -m pip install --force-reinstall tflite-runtime`")
    if info.get("numpy") is None:
        hints.append(f"numpy is missing: `{python} -m pip install numpy`")
    wanted = getattr(target, "runtime", "auto") if target is not None else "auto"
    if wanted not in ("auto", None) and wanted in RUNTIMES and wanted not in runtimes:
        hints.append(f"target asks for runtime {wanted} but it is not installed")
    governor = info.get("governor")
    if governor and governor not in ("performance",):
        hints.append(f"CPU governor is {governor!r}: for stable timings set `performance` "
                     "(cpupower frequency-set -g performance)")
    free = info.get("disk_free_mb")
    if isinstance(free, (int, float)) and free < 200:
        hints.append(f"only {free} MB free in the work dir")
    return hints


def pick_runtime(runtimes: dict[str, dict]) -> tuple[str | None, str | None]:
    """The runtime the runner would use: the first of RUNTIMES that is installed and imports."""
    for name in RUNTIMES:
        entry = runtimes.get(name)
        if entry is not None and not entry.get("error"):
            return name, entry.get("version")
    return None, None


def _python(target: Any) -> str:
    """The target's Python: `python_exe` (inventory default per transport) or `python`."""
    if target is None:
        return "python3"
    exe = getattr(target, "python_exe", None)
    return exe or getattr(target, "python", None) or "python3"


def probe(transport: Any, target: Any) -> dict[str, Any]:
    """Probe a connected target. Never raises an InfraError: failures set reachable/reason."""
    python = _python(target)
    result: dict[str, Any] = {"target": transport.name, "reachable": True, "reason": None}
    try:
        res = transport.run([python, "-c", PROBE_SCRIPT, transport.workdir],
                            timeout=max(60.0, float(getattr(target, "connect_timeout", 10)) * 6))
    except InfraError as exc:
        return dict(result, reachable=exc.kind not in ("unreachable", "auth", "hostkey"),
                    reason=f"{exc.kind}: {exc.message}", error_kind=exc.kind,
                    phase="probe", hints=[exc.hint] if exc.hint else [])
    if res.exit_code == 127 or (not res.ok and "not found" in res.stderr):
        return dict(result, reason=f"python {python!r} not found on the device",
                    hints=[f"install Python 3 or set `python:` of target {transport.name}"])
    try:
        info = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return dict(result, reason=f"probe failed (exit {res.exit_code}): "
                    f"{(res.stderr or res.stdout).strip()[-300:]}", hints=[])
    runtime, version = pick_runtime(info.get("runtimes") or {})
    result.update(info)
    result["runtime"], result["runtime_version"] = runtime, version
    result["hints"] = hints_for(info, target)
    if target is not None:
        found = kind_probe(transport, target)
        result["kind_probe"] = found
        result["hints"] += found.get("hints") or []
    result["setup"] = _setup_status(transport, target, result["hints"], runtime)
    return result


def kind_probe(transport: Any, target: Any) -> dict[str, Any]:
    """What the target's device kind checks on the device (`DeviceKind.probe`: tools, delegate
    library and runtime versions), with its `summary` and `hints` when it gives them."""
    from harness.devices import KINDS
    from harness.devices.base import TargetContext

    kind = KINDS.get(getattr(target, "kind", None))
    if kind is None:
        return {}
    # a probe uses the transport and the target only: no suite, nothing written locally
    ctx = TargetContext(transport.name, target, transport,
                        None,  # type: ignore[arg-type]
                        Path("."), Path("."))
    try:
        return kind.probe(ctx)
    except HarnessError as exc:
        return {"hints": [f"{target.kind} probe failed: {exc}"]}


def _setup_status(transport: Any, target: Any, hints: list[str], runtime: str | None) -> dict:
    """`harness targets --setup` done or not; its command leads the hints when no runtime works."""
    from harness.config import Target
    from harness.device_setup import setup_status

    if not isinstance(target, Target):
        return {"state": None, "text": "", "fix": None}
    status = setup_status(transport, target)
    if status["fix"] and (runtime is None or status["state"] == "outdated"):
        hints.insert(0, f"set the device up: `{status['fix']}` (a venv with a TFLite runtime "
                        "verified there)")
    return status


def check_targets(names: list[str], inventory: Any, inventory_path: Path | None = None,
                  connect: Callable | None = None) -> list[dict[str, Any]]:
    """Connect to and probe each named target concurrently; unreachable ones are rows too."""
    from harness.transport import connect as default_connect

    connect = connect or default_connect

    def one(name: str) -> dict[str, Any]:
        target = inventory.targets[name]
        if target.kind == "arduino":
            return {"target": name, "reachable": None,
                    "reason": f"microcontroller: checked through {target.via or 'its host'}",
                    "hints": []}
        try:
            transport = (connect(name, target, inventory_path) if inventory_path is not None
                         else connect(name, target))
        except HarnessError as exc:
            return {"target": name, "reachable": False, "reason": exc.message,
                    "error_kind": getattr(exc, "kind", "user_error"),
                    "phase": getattr(exc, "phase", None),
                    "hints": [exc.hint] if exc.hint else []}
        try:
            return probe(transport, target)
        finally:
            transport.close()

    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
        return list(pool.map(one, names))


def render_check(results: list[dict[str, Any]]):
    """A Rich table: one row per target, hints under it."""
    from rich.table import Table

    table = Table(title="targets --check", show_lines=True)
    for col in ("target", "reachable", "arch", "OS", "Python", "runtime", "numpy", "setup",
                "governor", "temp", "disk free", "notes"):
        table.add_column(col, overflow="fold")
    for r in results:
        reach = r.get("reachable")
        mark = "[green]yes[/green]" if reach else ("[red]no[/red]" if reach is False else "-")
        runtime = (f"{r['runtime']} {r.get('runtime_version') or ''}".strip()
                   if r.get("runtime") else ("[red]none[/red]" if reach else ""))
        temp = f"{r['temperature_c']:.0f} °C" if isinstance(r.get("temperature_c"), (int, float)) else ""
        disk = f"{r['disk_free_mb'] / 1000:.1f} GB" if isinstance(r.get("disk_free_mb"), (int, float)) else ""
        notes = [r["reason"]] if r.get("reason") else []
        if (r.get("kind_probe") or {}).get("summary"):
            notes.append(r["kind_probe"]["summary"])
        notes += [f"hint: {h}" for h in r.get("hints") or []]
        table.add_row(str(r.get("target")), mark, r.get("arch") or "", r.get("os") or "",
                      r.get("python") or "", runtime, r.get("numpy") or "",
                      (r.get("setup") or {}).get("text") or "",
                      r.get("governor") or "", temp, disk, "\n".join(notes))
    return table


def any_unreachable(results: list[dict[str, Any]]) -> bool:
    return any(r.get("reachable") is False for r in results)
