"""`harness targets --setup`: a fresh device made ready to run the harness, in one command.

On each selected target (SSH or local) it:

1. checks the device's own Python (`python:` of the target, default python3) and the free disk
   in the work dir;
2. creates `<workdir>/venv` with `python -m venv` (without ensurepip, i.e. no Debian package
   python3-venv, pip is bootstrapped from the wheelhouse's pip wheel when one is given);
3. installs a TFLite runtime that has a wheel there, in order: ai-edge-litert, else
   tflite-runtime with numpy<2 (tflite-runtime 2.14 is built against numpy 1.x), each from the
   device's package index or, offline, from the wheels pushed from `--wheelhouse DIR`;
4. verifies each one by running the real runner (`targets/`, pushed like a run does) on the tiny
   model shipped with the harness (`harness/data/probe_model.tflite`); a runtime that installs
   but fails (ai-edge-litert crashes under qemu, for one) is uninstalled and the next one tried;
5. records the venv's Python, the runtime and the hash of the requirement set in
   `<workdir>/setup.json` (`harness.transport.setup_record`): later connections run the runner
   with the venv's Python, unless the inventory's `python:` names another interpreter;
6. checks what the device kind needs besides (Edge TPU: libedgetpu.so.1 loadable; TensorRT:
   trtexec; Arduino: arduino-cli and pyserial on the host the board is plugged into) and reports
   it with the fix; system packages are never installed.

The setup is content-addressed on the requirement set (`requirements_sha256`): when the record
matches, a second call does nothing and says so.

Errors (each names the fix): what the device lacks is an `InfraError` (exit 3) with kind
`python_missing`, `venv_missing`, `no_wheel`, `disk_full`, `no_network`, `install_failed` or
`verify_failed`; a wrong command line (`--wheelhouse` that is not a folder of wheels) is a
`UserError` (exit 2).
"""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from harness import __version__
from harness.errors import HarnessError, InfraError, UserError
from harness.runtime_wheels import (DISK_SIGNS, NETWORK_SIGNS, PIP_OPTIONS, WHEEL_HINT, Candidate,
                                    DevicePython, candidates_for, classify, device_python,
                                    pip_reason, pip_tail, requirement_set, requirements_sha256)
from harness.transport import Transport
from harness.transport.setup_record import FORMAT_VERSION, SETUP_FILE, VENV_PYTHON, read_record
from harness.wheelhouse import Wheelhouse

if TYPE_CHECKING:
    from harness.config import Inventory, Target

log = logging.getLogger("harness.device_setup")

PROBE_MODEL = Path(__file__).resolve().parent / "data" / "probe_model.tflite"
PROBE_MODEL_NAME = "harness_setup_probe"
MIN_FREE_MB = 400  # a venv with ai-edge-litert and numpy takes ~160 MB, pip needs room to unpack

Say = Callable[[str, str], None]  # (target, message)


# --------------------------------------------------------------------------- one target

@dataclass
class SetupResult:
    """What setting up one target did."""

    target: str
    status: str = "failed"  # set_up | already_set_up | incomplete | failed | checked (a board)
    #                         | downloaded | skipped (--download)
    python: str | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    requirements_sha256: str | None = None
    device: str | None = None
    seconds: float = 0.0
    tried: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # what the kind needs besides, with the fix
    error: HarnessError | None = None

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.error.exit_code
        return 3 if self.missing else 0


class DeviceSetup:
    """Sets up one connected target (see the module docstring)."""

    def __init__(self, name: str, target: "Target", transport: Transport,
                 wheelhouse: Wheelhouse | None = None, say: Say | None = None) -> None:
        self.name, self.target, self.transport = name, target, transport
        self.wheelhouse = wheelhouse
        self._say = say or (lambda _name, _message: None)
        self.workdir = transport.workdir.rstrip("/")
        self.venv_python = f"{self.workdir}/{VENV_PYTHON}"
        self.remote_wheelhouse: str | None = None

    def say(self, message: str) -> None:
        log.info("%s: %s", self.name, message)
        self._say(self.name, message)

    def run(self, argv: list[str], timeout: float | None = None):
        res = self.transport.run(argv, timeout=timeout or self.target.command_timeout)
        log.debug("%s: %s -> exit %s\n%s%s", self.name, " ".join(argv[:6]), res.exit_code,
                  res.stdout[-3000:], res.stderr[-3000:])
        return res

    # -- the whole setup ----------------------------------------------------------------------
    def setup(self) -> SetupResult:
        """Set the target up (or see that it is); a HarnessError is kept in the result."""
        started = time.monotonic()
        result = SetupResult(self.name, requirements_sha256=requirements_sha256(self.target))
        try:
            self._setup_or_skip(result)
        except HarnessError as exc:
            log.debug("%s: setup failed", self.name, exc_info=True)
            result.status, result.error = "failed", exc
        result.seconds = time.monotonic() - started
        return result

    def _setup_or_skip(self, result: SetupResult) -> None:
        want = result.requirements_sha256
        record = read_record(self.transport)
        if record is not None and record.get("requirements_sha256") == want:
            self.target.use_setup_python(record["python"], record.get("base_python"))
            runtime = record.get("runtime") or {}
            result.status, result.python = "already_set_up", record["python"]
            result.runtime, result.runtime_version = runtime.get("name"), runtime.get("version")
            result.device = record.get("device")
            self.say(f"already set up ({result.runtime} {result.runtime_version}, requirements "
                     f"{str(want)[:12]}): nothing to do")
        else:
            self._setup(result)
            result.status = "set_up"
        result.missing = self.kind_needs()
        if result.missing:
            result.status = "incomplete"

    def _setup(self, result: SetupResult) -> None:
        base = self.target.configured_python
        self.say(f"checking {base}")
        device = device_python(self.transport, self.target, self.name)
        result.device = device.describe()
        wheels = self.wheelhouse.wheels_for(device) if self.wheelhouse else []
        need = MIN_FREE_MB + sum(p.stat().st_size for p in wheels) // 1_000_000
        if device.free_mb < need:
            raise InfraError(f"{self.name}: only {device.free_mb} MB free in {self.workdir} on "
                             f"the device; setting up needs about {need} MB", kind="disk_full",
                             phase="setup", hint=self._disk_hint())
        self.run(["rm", "-f", SETUP_FILE], timeout=60)  # a half-made venv is never used
        self.target.use_setup_python(None, None)
        if self.wheelhouse is not None:
            self.remote_wheelhouse = self.wheelhouse.push(self.transport, base, device, self.say)
        self._create_venv(device, base)
        self.say(f"venv {self.workdir}/venv made with {device.describe()}")
        result.tried = []
        chosen = self._install_runtime(device, result.tried)
        installed = self._installed()
        result.python = self.venv_python
        result.runtime, result.runtime_version = chosen["name"], chosen["version"]
        self._write_record({
            "format_version": FORMAT_VERSION, "requirements_sha256": result.requirements_sha256,
            "requirements": requirement_set(self.target), "python": self.venv_python,
            "base_python": self.target.python, "base_executable": device.executable,
            "device": device.describe(), "runtime": chosen, "installed": installed,
            "tried": result.tried, "source": "wheelhouse" if self.wheelhouse else "index",
            "harness_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        self.target.use_setup_python(self.venv_python, self.target.python)

    # -- steps --------------------------------------------------------------------------------
    def _disk_hint(self) -> str:
        return (f"free space on the device (pip also unpacks in $TMPDIR and caches in "
                f"~/.cache/pip), or point `workdir:` of target {self.name} at a larger disk")

    def _pip_source(self) -> list[str]:
        if self.remote_wheelhouse is None:
            return []
        return ["--no-index", "--find-links", self.remote_wheelhouse]

    def _create_venv(self, device: DevicePython, base: str) -> None:
        venv = f"{self.workdir}/venv"
        res = self.run([base, "-m", "venv", "--clear", venv], timeout=600)
        if res.ok:
            return
        output = res.stdout + res.stderr
        if classify(output) == "disk_full":
            raise InfraError(f"{self.name}: the device ran out of disk space making the venv: "
                             f"{pip_reason(output, DISK_SIGNS)}", kind="disk_full",
                             phase="setup", hint=self._disk_hint())
        if "ensurepip" not in output and "No module named venv" not in output:
            raise InfraError(f"{self.name}: `{base} -m venv` failed (exit {res.exit_code}): "
                             f"{pip_tail(output)}", kind="venv_missing", phase="setup",
                             hint="check that the device's Python is complete (python3-venv)")
        pip_wheel = self.wheelhouse.pip_wheel(device) if self.wheelhouse else None
        if pip_wheel is None or "No module named venv" in output:
            missing = "ensurepip" if "No module named venv" not in output else "the venv module"
            package = re.search(r"apt(?:-get)? install (python3[\w.]*-venv)", output)
            raise InfraError(
                f"{self.name}: {base} ({device.describe()}) cannot make a virtual environment: "
                f"{missing} is not available", kind="venv_missing", phase="setup",
                hint="install the Debian package python3-venv on the device (`sudo apt-get "
                     f"install {package.group(1) if package else 'python3-venv'}`); or give "
                     "--wheelhouse DIR (made with `harness targets --download`), which brings "
                     "pip")
        self.say("no ensurepip on the device: bootstrapping pip from the wheelhouse")
        res = self.run([base, "-m", "venv", "--clear", "--without-pip", venv], timeout=600)
        if res.ok:
            res = self.run([self.venv_python, f"{self.remote_wheelhouse}/{pip_wheel}/pip",
                            "install", *PIP_OPTIONS, *self._pip_source(), "pip"], timeout=600)
        if not res.ok:
            raise InfraError(f"{self.name}: cannot bootstrap pip in the venv: "
                             f"{pip_tail(res.stdout + res.stderr)}", kind="venv_missing",
                             phase="setup", hint="install the Debian package python3-venv on "
                                                 "the device (`sudo apt-get install python3-venv`)")

    def _installed(self) -> list[str]:
        """`name==version` of every distribution in the venv."""
        res = self.run([self.venv_python, "-m", "pip", "list", "--format=json",
                        "--disable-pip-version-check"], timeout=300)
        try:
            return sorted(f"{d['name']}=={d['version']}"
                          for d in json.loads(res.stdout.strip().splitlines()[-1]))
        except (ValueError, IndexError, KeyError, TypeError):
            return []

    def _install_runtime(self, device: DevicePython, tried: list[str]) -> dict[str, str]:
        """Install, verify, fall back: the runtime that works ({name, version, dist}), or an
        InfraError naming what was tried."""
        fresh = self._dists()
        for candidate in candidates_for(self.target):
            why = self._pip_install(candidate)
            if why is None:
                self.say(f"verifying {candidate.dist} with the runner on the probe model")
                verdict = self._verify(candidate)
                if verdict["ok"]:
                    tried.append(f"{candidate.dist} {verdict['version']}: works")
                    self.say(tried[-1])
                    return {"name": verdict["name"], "version": verdict["version"],
                            "dist": candidate.dist}
                why = f"installed but {verdict['why']}"
                self.say(f"{candidate.dist} {why}: uninstalling it")
                self._uninstall(self._dists() - fresh)
            tried.append(f"{candidate.label}: {why}")
        if all(": no wheel " in line for line in tried):
            where = (f"in the wheelhouse {self.wheelhouse.path}" if self.wheelhouse
                     else "on the package index")
            hint = (f"fill the wheelhouse for this device: `harness targets --download "
                    f"--wheelhouse {self.wheelhouse.path} --targets {self.name}`; {WHEEL_HINT}"
                    if self.wheelhouse else WHEEL_HINT)
            raise InfraError(f"{self.name}: no TFLite runtime wheel for {device.describe()} "
                             f"{where}: tried {'; '.join(tried)}", kind="no_wheel",
                             phase="setup", hint=hint)
        raise InfraError(f"{self.name}: no TFLite runtime works on the device "
                         f"({device.describe()}): {'; '.join(tried)}", kind="verify_failed",
                         phase="setup", hint="`harness -v targets --setup` shows the pip and "
                                             f"runner output; {WHEEL_HINT}")

    def _pip_install(self, candidate: Candidate) -> str | None:
        """pip install one candidate: None when it installed, else why not (no wheel, pip
        failed); a full disk, or no network without a wheelhouse, is raised."""
        self.say(f"installing {candidate.label}")
        res = self.run([self.venv_python, "-m", "pip", "install", *PIP_OPTIONS,
                        "--only-binary=:all:", *self._pip_source(), *candidate.requirements])
        if res.ok:
            return None
        output = res.stdout + res.stderr
        kind = classify(output)
        if kind == "disk_full":
            raise InfraError(f"{self.name}: the device ran out of disk space installing "
                             f"{candidate.dist}: {pip_reason(output, DISK_SIGNS)}",
                             kind="disk_full", phase="setup", hint=self._disk_hint())
        if kind == "no_network" and self.wheelhouse is None:
            raise InfraError(f"{self.name}: the device cannot reach the package index "
                             f"({pip_reason(output, NETWORK_SIGNS)}) and no --wheelhouse was "
                             "given", kind="no_network", phase="setup",
                             hint="fetch the wheels on this machine and push them: `harness "
                                  f"targets --download --setup --wheelhouse DIR --targets "
                                  f"{self.name}`")
        if kind == "no_wheel":
            return f"no wheel {'in the wheelhouse' if self.wheelhouse else 'on the package index'}"
        return f"pip failed: {pip_tail(output)}"

    def _dists(self) -> set[str]:
        return {line.split("==")[0] for line in self._installed()}

    def _uninstall(self, dists: set[str]) -> None:
        """Back to the fresh venv: remove what a failed candidate brought."""
        if dists:
            self.run([self.venv_python, "-m", "pip", "uninstall", "-y",
                      "--disable-pip-version-check", *sorted(dists)], timeout=600)

    def _verify(self, candidate: Candidate) -> dict[str, Any]:
        """Run the real runner, pushed like a run does, on the probe model with the venv."""
        from harness.artifacts import Artifact
        from harness.artifacts.cache import sha256_file
        from harness.devices.runner_exec import run_runner
        from harness.plan import Job

        target = self.target.model_copy(update={"python": self.venv_python})
        with tempfile.TemporaryDirectory(prefix="harness-setup-") as tmp:
            ctx = _context(self.name, target, self.transport, Path(tmp))
            artifact = Artifact(PROBE_MODEL_NAME, "convert_only", path=PROBE_MODEL,
                                sha256=sha256_file(PROBE_MODEL),
                                size_bytes=PROBE_MODEL.stat().st_size)
            job = Job(self.name, PROBE_MODEL_NAME, "convert_only", candidate.module)
            try:
                ctx.ensure_runner()
                result, _outputs, _remote = run_runner(ctx, job, artifact)
            except InfraError as exc:
                return {"ok": False, "why": _crash_reason(exc)}
        if result.get("status") != "ok":
            error = result.get("error") or {}
            return {"ok": False, "why": f"the runner reported {error.get('kind')}: "
                                        f"{str(error.get('message'))[:200]}"}
        latency = result.get("latency") or []
        if not latency or not latency[0].get("n"):
            return {"ok": False, "why": "the runner measured nothing"}
        runtime = result.get("runtime") or {}
        return {"ok": True, "name": runtime.get("name", candidate.module),
                "version": str(runtime.get("version"))}

    def _write_record(self, record: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory(prefix="harness-setup-") as tmp:
            local = Path(tmp) / SETUP_FILE
            local.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
            part = f"{SETUP_FILE}.part"
            self.transport.put(local, part)
        res = self.run(["mv", "-f", part, SETUP_FILE], timeout=60)
        if not res.ok:
            raise InfraError(f"{self.name}: cannot write {self.workdir}/{SETUP_FILE}: "
                             f"{pip_tail(res.stderr)}", kind="workdir", phase="setup",
                             hint=self._disk_hint())

    # -- what the kind needs besides ----------------------------------------------------------
    def kind_needs(self) -> list[str]:
        """What the device kind needs besides the runtime and is missing, each with its fix."""
        return kind_needs(self.name, self.target, self.transport)


def kind_needs(name: str, target: "Target", transport: Transport) -> list[str]:
    """Ask the device kind's probe what is missing (the Edge TPU delegate, trtexec, arduino-cli
    and pyserial); system packages are reported, never installed."""
    from harness.devices import KINDS

    if target.kind == "cpu":
        return []
    with tempfile.TemporaryDirectory(prefix="harness-setup-") as tmp:
        found = KINDS[target.kind].probe(_context(name, target, transport, Path(tmp)))
    missing: list[str] = []
    if target.kind == "edgetpu" and not found.get("delegate_library"):
        missing.append("libedgetpu.so.1 (the Edge TPU delegate) does not load: install the Edge "
                       "TPU runtime, `sudo apt-get install libedgetpu1-std` from the Coral apt "
                       "repository (https://coral.ai/software/#debian-packages), and plug the "
                       "accelerator in (pycoral is not needed)")
    if target.kind == "tensorrt" and not found.get("trtexec"):
        from harness.devices.tensorrt import TRTEXEC_FIX

        missing.append(f"trtexec not found: {TRTEXEC_FIX}")
    if target.kind == "arduino":
        from harness.devices.arduino import CLI_INSTALL

        core = ":".join((target.fqbn or "arduino:mbed_nano:nano33ble").split(":")[:2])
        where = target.via or "the controller"
        if not found.get("arduino_cli"):
            missing.append(f"arduino-cli not found on {where}: {CLI_INSTALL.format(core=core)}")
        python = target.python or ("python3" if not transport.is_local else sys.executable)
        if not transport.run([python, "-c", "import serial"], timeout=60).ok:
            missing.append(f"pyserial missing for {python} on {where}: `{python} -m pip install "
                           "pyserial` (or set `python:` of the board to a Python that has it)")
    return missing


def _context(name: str, target: "Target", transport: Transport, local_dir: Path):
    """A TargetContext for the setup's probe run (a one-model suite) and the kinds' probes."""
    from harness.config.suite import LatencySpec, Measurements, ModelFile, Suite
    from harness.devices.base import TargetContext

    suite = Suite(name="setup", models=[ModelFile(name=PROBE_MODEL_NAME, path=str(PROBE_MODEL))],
                  variants=["convert_only"],
                  measurements=Measurements(latency=LatencySpec(
                      threads=[1], warmup_runs=2, warmup_seconds=0.0, runs=5, min_seconds=0.0,
                      rounds=1)))
    return TargetContext(name, target, transport, suite, local_dir, local_dir / "cache")


def _crash_reason(exc: InfraError) -> str:
    match = re.search(r"\(exit (-?\d+)\)", exc.message)
    if match and int(match.group(1)) > 128:
        try:
            return (f"the runner crashed ({signal.Signals(int(match.group(1)) - 128).name}) on "
                    "the probe model")
        except ValueError:
            pass
    return f"the runner failed on the probe model: {exc.message}"


# --------------------------------------------------------------------------- several targets

def setup_targets(names: list[str], inventory: "Inventory", inventory_path: Path | None = None,
                  wheelhouse: Wheelhouse | None = None, say: Say | None = None,
                  connect: Callable | None = None) -> list[SetupResult]:
    """Set up each named target concurrently; a failure is a result, never an exception."""
    from harness.transport import connect as default_connect

    connect = connect or (lambda name, target: default_connect(name, target, inventory_path))

    def one(name: str) -> SetupResult:
        started = time.monotonic()
        target = inventory.targets[name]
        transport = None
        try:
            if target.kind == "arduino":  # a board: what its host needs, no venv
                transport = connect(target.via, inventory.targets[target.via]) if target.via \
                    else connect(name, target)
                missing = kind_needs(name, target, transport)
                return SetupResult(name, status="incomplete" if missing else "checked",
                                   missing=missing, seconds=time.monotonic() - started)
            transport = connect(name, target)
            return DeviceSetup(name, target, transport, wheelhouse, say).setup()
        except HarnessError as exc:
            log.debug("%s: setup failed", name, exc_info=True)
            return SetupResult(name, error=exc, seconds=time.monotonic() - started)
        finally:
            if transport is not None:
                transport.close()

    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
        return list(pool.map(one, names))


def download_wheelhouse(names: list[str], inventory: "Inventory", wheelhouse: Wheelhouse,
                        inventory_path: Path | None = None, say: Say | None = None,
                        connect: Callable | None = None) -> list[SetupResult]:
    """Fill the wheelhouse on this machine with the wheels each target's Python needs (pip,
    then each runtime candidate with its dependencies); the targets only answer what Python and
    platform they have."""
    from harness.transport import connect as default_connect

    connect = connect or (lambda name, target: default_connect(name, target, inventory_path))
    say = say or (lambda _name, _message: None)
    lock = threading.Lock()
    done: dict[tuple, dict[str, str]] = {}

    def one(name: str) -> SetupResult:
        started = time.monotonic()
        target = inventory.targets[name]
        result = SetupResult(name)
        if target.kind == "arduino":  # a board runs no Python: nothing to download
            result.status = "skipped"
            return result
        try:
            transport = connect(name, target)
            try:
                device = device_python(transport, target, name)
            finally:
                transport.close()
            result.device = device.describe()
            key = (device.abi, tuple(device.platforms()), candidates_for(target))
            with lock:  # one pip download at a time into the folder, once per platform
                if key not in done:
                    done[key] = wheelhouse.fetch(device, candidates_for(target),
                                                 lambda message: say(name, message))
            result.tried = [f"{label}: {what}" for label, what in done[key].items()]
            runtimes = {label: what for label, what in done[key].items() if label != "pip"}
            if "downloaded" not in runtimes.values():
                raise InfraError(f"{name}: no TFLite runtime wheel for {device.describe()} on "
                                 f"the package index: tried "
                                 f"{'; '.join(f'{k}: {v}' for k, v in runtimes.items())}",
                                 kind="no_wheel", phase="download", hint=WHEEL_HINT)
            result.status = "downloaded"
        except HarnessError as exc:
            result.error = exc
        result.seconds = time.monotonic() - started
        return result

    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
        return list(pool.map(one, names))


def _download(name: str, device: DevicePython, target: "Target", wheelhouse: Wheelhouse,
              say: Say) -> list[str]:
    outcome: list[str] = []
    for label, requirements in [("pip", ("pip",))] + [(c.label, c.requirements)
                                                      for c in candidates_for(target)]:
        say(name, f"downloading {label} for {device.describe()} into {wheelhouse.path}")
        proc = wheelhouse.download(device, requirements)
        output = proc.stdout + proc.stderr
        if proc.returncode == 0:
            outcome.append(f"{label}: downloaded")
            continue
        kind = classify(output)
        if kind == "no_network":
            raise InfraError(f"this machine cannot reach the package index: "
                             f"{pip_reason(output, NETWORK_SIGNS)}", kind="no_network",
                             phase="download", hint="check the network or pip's index settings "
                                                    "(pip config list)")
        outcome.append(f"{label}: no wheel" if kind == "no_wheel" else
                       f"{label}: pip download failed: {pip_tail(output)}")
    return outcome


def exit_code(results: list[SetupResult]) -> int:
    """3 when a device lacks something, 2 for a user error, else 0."""
    codes = {r.exit_code for r in results}
    return 3 if 3 in codes else (2 if 2 in codes else 0)


STATUS_TEXT = {"set_up": "[green]set up[/green]", "already_set_up": "[green]already set up[/green]",
               "checked": "[green]ready[/green]", "downloaded": "[green]downloaded[/green]",
               "incomplete": "[yellow]incomplete[/yellow]", "failed": "[red]failed[/red]",
               "skipped": "[dim]skipped (a board)[/dim]"}


def render_setup(results: list[SetupResult], title: str = "targets --setup"):
    """A Rich table: one row per target, what was tried and the fixes under it."""
    from rich.table import Table

    table = Table(title=title, show_lines=True)
    for column in ("target", "result", "device", "python", "runtime", "time", "notes"):
        table.add_column(column, overflow="fold")
    for r in results:
        runtime = f"{r.runtime} {r.runtime_version or ''}".strip() if r.runtime else ""
        notes = [f"tried: {line}" for line in r.tried]
        notes += [f"[yellow]missing:[/yellow] {line}" for line in r.missing]
        if r.error is not None:
            notes.append(f"[red]error:[/red] {r.error.message}")
            if r.error.hint:
                notes.append(f"fix: {r.error.hint}")
        table.add_row(r.target, STATUS_TEXT.get(r.status, r.status), r.device or "",
                      r.python or "", runtime, f"{r.seconds:.1f} s", "\n".join(notes))
    return table


# ------------------------------------------------------------------------ harness targets --check

def setup_status(transport: Transport, target: "Target") -> dict[str, Any]:
    """Whether the target is set up: {"state": done|outdated|missing, "text", "fix"}."""
    fix = f"harness targets --setup --targets {transport.name}"
    record = read_record(transport)
    if record is None:
        return {"state": "missing", "text": "not set up", "fix": fix}
    runtime = record.get("runtime") or {}
    described = f"{runtime.get('name')} {runtime.get('version')}"
    if target.python is not None and target.python != record.get("base_python"):
        return {"state": "outdated", "fix": fix, "text": f"venv made from "
                f"{record.get('base_python') or 'the default python'}; `python: {target.python}` "
                "wins"}
    if record.get("requirements_sha256") != requirements_sha256(target):
        return {"state": "outdated", "text": f"outdated ({described})", "fix": fix}
    return {"state": "done", "text": f"done ({described})", "python": record.get("python"),
            "fix": None}


def wheelhouse_from_options(path: Path | None, *, download: bool) -> Wheelhouse | None:
    """`--wheelhouse` as the CLI gives it: a folder of wheels, or a folder to download into."""
    if path is None:
        if download:
            raise UserError("--download needs --wheelhouse DIR (where the wheels go)")
        return None
    return Wheelhouse.open(path, must_have_wheels=not download)

