"""A wheelhouse: a folder of wheels on the controller for devices that cannot reach a package index.

`fetch` fills it with `pip download --only-binary=:all:` for one device's Python and platform tags
(pip, then each runtime with its dependencies, each resolved on its own); `push` sends the wheels
the device can use to `<workdir>/wheelhouse/` (each checked by sha256, sent once), where pip
installs them with `--no-index --find-links`.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.errors import InfraError, UserError
from harness.runtime_wheels import (NETWORK_SIGNS, PIP_OPTIONS, Candidate, DevicePython, classify,
                                    pip_reason, pip_tail)
from harness.transport import Transport

log = logging.getLogger("harness.wheelhouse")

REMOTE_DIR = "wheelhouse"  # under the target's work dir

# Runs with the device's Python: {"<file name>": "<sha256>"} of the wheels in a folder.
_REMOTE_WHEELS = r'''
import hashlib, json, os, sys
out = {}
d = sys.argv[1]
for n in (os.listdir(d) if os.path.isdir(d) else []):
    if n.endswith(".whl"):
        h = hashlib.sha256()
        with open(os.path.join(d, n), "rb") as f:
            for b in iter(lambda: f.read(1 << 20), b""):
                h.update(b)
        out[n] = h.hexdigest()
print(json.dumps(out))
'''


@dataclass(frozen=True)
class Wheelhouse:
    """A folder of wheels on the controller."""

    path: Path

    @classmethod
    def open(cls, path: Path, *, must_have_wheels: bool = True) -> "Wheelhouse":
        """The folder `--wheelhouse` names; with `must_have_wheels`, it must hold some."""
        path = Path(path).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise UserError(f"--wheelhouse {path}: not a folder")
        if must_have_wheels and not (path.is_dir() and any(path.glob("*.whl"))):
            raise UserError(f"--wheelhouse {path}: no wheels (*.whl) there",
                            hint=f"fill it on this machine: `harness targets --download "
                                 f"--wheelhouse {path} --targets NAME`")
        return cls(path)

    def wheels_for(self, device: DevicePython) -> list[Path]:
        """The wheels the device's Python can install."""
        return sorted(p for p in self.path.glob("*.whl") if device.accepts(p.name))

    def pip_wheel(self, device: DevicePython) -> str | None:
        """The newest pip wheel the device can use (to bootstrap pip without ensurepip)."""
        names = [p.name for p in self.wheels_for(device) if p.name.startswith("pip-")]
        return max(names, key=_version_key) if names else None

    def download(self, device: DevicePython, requirements: tuple[str, ...] | list[str],
                 ) -> subprocess.CompletedProcess:
        """`pip download` on this machine of wheels for the device's Python and platform."""
        self.path.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "pip", "download", *PIP_OPTIONS, "--only-binary=:all:",
                "--dest", str(self.path),
                "--python-version", ".".join(map(str, device.major_minor)),
                "--implementation", "cp", "--abi", device.abi,
                *[arg for p in device.platforms() for arg in ("--platform", p)], *requirements]
        log.debug("pip download: %s", " ".join(argv))
        return subprocess.run(argv, capture_output=True, text=True, check=False)

    def fetch(self, device: DevicePython, candidates: tuple[Candidate, ...],
              say: Callable[[str], None]) -> dict[str, str]:
        """Download pip and each candidate for the device: {label: "downloaded" | why not}.
        This machine not reaching the index is an InfraError (no_network)."""
        outcome: dict[str, str] = {}
        for label, requirements in [("pip", ("pip",))] + [(c.label, c.requirements)
                                                          for c in candidates]:
            say(f"downloading {label} for {device.describe()} into {self.path}")
            proc = self.download(device, requirements)
            output = proc.stdout + proc.stderr
            if proc.returncode == 0:
                outcome[label] = "downloaded"
                continue
            kind = classify(output)
            if kind == "no_network":
                raise InfraError(f"this machine cannot reach the package index "
                                 f"({pip_reason(output, NETWORK_SIGNS)})", kind="no_network",
                                 phase="download", hint="check the network, or pip's index "
                                                        "settings (`pip config list`)")
            outcome[label] = ("no wheel" if kind == "no_wheel"
                              else f"pip download failed: {pip_tail(output)}")
        return outcome

    def push(self, transport: Transport, python: str, device: DevicePython,
             say: Callable[[str], None]) -> str:
        """Send the wheels the device can use to `<workdir>/wheelhouse/` (those already there
        with the same sha256 are not sent again); returns that folder on the device."""
        from harness.artifacts.cache import sha256_file

        remote = f"{transport.workdir.rstrip('/')}/{REMOTE_DIR}"
        wheels = self.wheels_for(device)
        res = transport.run([python, "-c", _REMOTE_WHEELS, remote], timeout=300)
        try:
            there = json.loads(res.stdout.strip().splitlines()[-1]) if res.ok else {}
        except (ValueError, IndexError):
            there = {}
        missing = [p for p in wheels if there.get(p.name) != sha256_file(p)]
        say(f"wheelhouse: {len(wheels)} wheel(s) for {device.describe()}, {len(missing)} to send")
        for path in missing:
            transport.put(path, f"{REMOTE_DIR}/{path.name}")
        return remote


def _version_key(wheel_name: str) -> tuple:
    from packaging.version import InvalidVersion, Version

    try:
        return (Version(wheel_name.split("-")[1]),)
    except (InvalidVersion, IndexError):
        return (Version("0"),)
