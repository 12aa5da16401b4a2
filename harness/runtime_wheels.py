"""Which TFLite runtime wheels a device can use: the runtimes `harness targets --setup` tries, in
order, and the requirement set they make (content-addressed); the device's Python and platform as
pip's wheel tags see them; and what a failed pip run ran into (full disk, no network, no wheel).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import InfraError
from harness.transport import Transport

if TYPE_CHECKING:
    from harness.config import Target

RECIPE_VERSION = 1  # bump when the way a venv is made changes: every device is set up again
# pip names a network failure only in its "Retrying ... NewConnectionError" warnings: keep retries
PIP_OPTIONS = ["--disable-pip-version-check", "--no-input", "--progress-bar", "off",
               "--retries", "2", "--timeout", "30"]


@dataclass(frozen=True)
class Candidate:
    """One TFLite runtime setup can install: the distribution, what pip installs, the module the
    runner imports."""

    dist: str
    requirements: tuple[str, ...]
    module: str

    @property
    def label(self) -> str:
        extra = [r for r in self.requirements if r != self.dist]
        return self.dist + (f" with {', '.join(extra)}" if extra else "")


LITERT = Candidate("ai-edge-litert", ("ai-edge-litert",), "ai_edge_litert")
TFLITE_RUNTIME = Candidate("tflite-runtime", ("tflite-runtime", "numpy<2"), "tflite_runtime")
CANDIDATES = (LITERT, TFLITE_RUNTIME)
WHEEL_HINT = ("ai-edge-litert publishes Linux wheels for 64-bit x86_64 and aarch64 and CPython "
              "3.9 and later, tflite-runtime 2.14 for CPython 3.8-3.11: on a Raspberry Pi use the "
              "64-bit OS; set `python:` of the target to such an interpreter on the device")


def candidates_for(target: "Target") -> tuple[Candidate, ...]:
    """The runtimes to try, in order: the one the target asks for, else both."""
    if target.runtime == LITERT.module:
        return (LITERT,)
    if target.runtime == TFLITE_RUNTIME.module:
        return (TFLITE_RUNTIME,)
    return CANDIDATES


def requirement_set(target: "Target") -> dict[str, Any]:
    """What a setup installs on a target: the content the record is addressed by."""
    return {"recipe": RECIPE_VERSION, "base_python": target.python,
            "candidates": [list(c.requirements) for c in candidates_for(target)]}


def requirements_sha256(target: "Target") -> str:
    return hashlib.sha256(json.dumps(requirement_set(target), sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- the device's Python

# Runs with the device's Python (3.6+, standard library only): prints one JSON document.
PREFLIGHT = r'''
import json, os, platform, shutil, struct, sys
try:
    import importlib.util as iu
    has_venv = iu.find_spec("venv") is not None
except Exception:
    has_venv = None
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION").split()
except Exception:
    libc = list(platform.libc_ver())
wd = sys.argv[1]
while wd and not os.path.isdir(wd):
    wd = os.path.dirname(wd.rstrip("/")) or "/"
print(json.dumps({"version": platform.python_version(), "implementation": sys.implementation.name,
                  "machine": platform.machine(), "bits": struct.calcsize("P") * 8, "libc": libc,
                  "executable": sys.executable, "venv": has_venv,
                  "free_mb": shutil.disk_usage(wd).free // 1000000}))
'''


@dataclass(frozen=True)
class DevicePython:
    """The device's interpreter and platform, as far as wheels care."""

    version: str
    implementation: str
    machine: str
    bits: int
    libc: tuple[str, ...]
    executable: str
    has_venv: bool | None
    free_mb: int

    @classmethod
    def from_json(cls, info: dict[str, Any]) -> "DevicePython":
        return cls(str(info["version"]), str(info["implementation"]), str(info["machine"]),
                   int(info["bits"]), tuple(info.get("libc") or ()), str(info["executable"]),
                   info.get("venv"), int(info["free_mb"]))

    @property
    def major_minor(self) -> tuple[int, int]:
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)

    @property
    def arch(self) -> str:
        """The wheel architecture: a 32-bit userland on a 64-bit kernel is armv7l / i686."""
        machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(self.machine.lower(),
                                                              self.machine.lower())
        if self.bits == 32 and machine == "aarch64":
            return "armv7l"
        if self.bits == 32 and machine == "x86_64":
            return "i686"
        return machine

    @property
    def glibc(self) -> tuple[int, int] | None:
        if len(self.libc) == 2 and self.libc[0] == "glibc":
            try:
                major, minor = self.libc[1].split(".")[:2]
                return int(major), int(minor)
            except ValueError:
                return None
        return None

    @property
    def abi(self) -> str:
        major, minor = self.major_minor
        return f"cp{major}{minor}" + ("m" if (major, minor) < (3, 8) else "")

    def platforms(self) -> list[str]:
        """Wheel platform tags the device accepts, most specific first (pip does not widen
        `--platform` by itself)."""
        arch, out = self.arch, []
        if self.glibc:
            major, minor = self.glibc
            out += [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
            if (major, minor) >= (2, 17):
                out.append(f"manylinux2014_{arch}")
            if arch in ("x86_64", "i686"):
                out += ["manylinux2010_" + arch] if (major, minor) >= (2, 12) else []
                out += ["manylinux1_" + arch] if (major, minor) >= (2, 5) else []
        return out + [f"linux_{arch}"]

    def accepts(self, wheel_name: str) -> bool:
        """Whether a wheel file can be installed by this interpreter."""
        from packaging.tags import compatible_tags, cpython_tags
        from packaging.utils import InvalidWheelFilename, parse_wheel_filename

        try:
            tags = parse_wheel_filename(wheel_name)[3]
        except InvalidWheelFilename:
            return False
        platforms = self.platforms()
        supported = set(cpython_tags(self.major_minor, [self.abi], platforms)) | \
            set(compatible_tags(self.major_minor, f"cp{''.join(map(str, self.major_minor))}",
                                platforms))
        return bool(tags & supported)

    def describe(self) -> str:
        libc = f", {self.libc[0]} {self.libc[1]}" if len(self.libc) == 2 else ""
        name = "CPython" if self.implementation == "cpython" else self.implementation
        return f"{name} {'.'.join(map(str, self.major_minor))} on {self.arch}{libc}"


def device_python(transport: Transport, target: "Target", name: str) -> DevicePython:
    """Run the preflight with the target's configured Python; a missing one is `python_missing`."""
    python = target.configured_python
    try:
        res = transport.run([python, "-c", PREFLIGHT, transport.workdir], timeout=120)
    except InfraError as exc:
        if exc.kind != "tool_missing":  # the local transport: command not found
            raise
        res = None
    if res is None or res.exit_code == 127 or (not res.ok and "not found" in res.stderr):
        raise InfraError(f"{name}: no Python at {python!r} on the device", kind="python_missing",
                         phase="setup",
                         hint="install Python 3 there (Debian, Raspberry Pi OS: `sudo apt-get "
                              f"install python3 python3-venv`) or set `python:` of target {name} "
                              "in inventory.yaml to the device's interpreter")
    try:
        return DevicePython.from_json(json.loads(res.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise InfraError(f"{name}: {python} cannot run the setup check (exit {res.exit_code}): "
                         f"{pip_tail(res.stderr or res.stdout)}", kind="python_missing",
                         phase="setup", hint=f"`python:` of target {name} must be Python 3.6 or "
                                             "later") from exc


# --------------------------------------------------------------------------- pip's output

DISK_SIGNS = ("No space left on device", "[Errno 28]", "Disk quota exceeded")
NETWORK_SIGNS = ("NewConnectionError", "Failed to establish a new connection",
                 "Temporary failure in name resolution", "Name or service not known",
                 "Network is unreachable", "No route to host", "ConnectTimeoutError",
                 "ProxyError", "SSLError", "Could not fetch URL", "connection broken by",
                 "Max retries exceeded")
NO_WHEEL_SIGNS = ("No matching distribution found", "Could not find a version that satisfies")


def classify(output: str) -> str | None:
    """What a failed pip / venv run ran into: disk_full, no_network, no_wheel, or None."""
    if any(sign in output for sign in DISK_SIGNS):
        return "disk_full"
    if any(sign in output for sign in NETWORK_SIGNS):
        return "no_network"
    if any(sign in output for sign in NO_WHEEL_SIGNS):
        return "no_wheel"
    return None


def pip_tail(text: str, lines: int = 2) -> str:
    """The last lines of a command's output, on one line."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])[-400:] or "no output"


def pip_reason(output: str, signs: tuple[str, ...]) -> str:
    """The first line naming one of `signs`, cut to its OS error when it has one."""
    for line in output.splitlines():
        if any(sign in line for sign in signs):
            errno = re.search(r"\[Errno -?\d+\][^'\")\]]*", line)
            return errno.group(0).strip() if errno else line.strip()[-300:]
    return pip_tail(output)
