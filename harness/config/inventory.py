"""The fleet: `inventory.yaml` schema, groups and target selection."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from harness.config.loader import load
from harness.errors import UserError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SAFE_PATH_RE = re.compile(r"^[A-Za-z0-9_./~+-]+$")
# SSH addresses: host names, IPv4, bracketed-free IPv6; users; `[user@]host[:port]` shorthands
HOST_RE = re.compile(r"^[A-Za-z0-9_.:%-]{1,253}$")
USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
SSH_RE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}@)?[A-Za-z0-9_.%-]{1,253}(?::[0-9]{1,5})?$")
DeviceKind = Literal["cpu", "edgetpu", "tensorrt", "arduino"]
Runtime = Literal["auto", "ai_edge_litert", "tflite_runtime", "tensorflow", "onnxruntime"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


COORDINATOR_RE = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.%-]{1,253})(?::[0-9]{1,5})?$")
PLACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")


class LabgridPlace(Strict):
    """A labgrid place the target is leased from (`harness.lab`): its NetworkService is the SSH
    address, its serial port the board's port for an Arduino `via` target."""

    place: str = Field(description="the place's name on the coordinator")
    coordinator: str | None = Field(None, description="host[:port] (default port 20408); "
                                                      "default: $LG_COORDINATOR")
    acquire_timeout: float = Field(1800.0, ge=0, description="how long to wait while another "
                                   "controller holds the place, s")

    @field_validator("place")
    @classmethod
    def _safe_place(cls, value: str) -> str:
        if not PLACE_RE.match(value):
            raise ValueError(f"{value!r} is not a place name (letters, digits, _ . + -)")
        return value

    @field_validator("coordinator")
    @classmethod
    def _safe_coordinator(cls, value: str | None) -> str | None:
        if value is not None and not COORDINATOR_RE.match(value):
            raise ValueError(f"{value!r} is not a coordinator address (host[:port])")
        return value


class Target(Strict):
    """One device of the fleet. A target without `ssh`/`host` is this machine (local transport)."""

    kind: DeviceKind
    description: str | None = None
    # how to reach it
    ssh: str | None = Field(None, description="~/.ssh/config alias or user@host[:port]")
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    user: str | None = None
    identity_file: str | None = None
    jump: str | None = Field(None, description="jump host, user@host[:port]")
    known_hosts: str | None = None
    trust_on_first_use: bool = False
    labgrid: LabgridPlace | None = Field(None, description="lease the target from a labgrid place")
    connect_timeout: float = Field(10.0, gt=0, description="TCP connect + SSH handshake + auth, s")
    command_timeout: float = Field(900.0, gt=0, description="one remote command, s")
    keepalive: float = Field(5.0, gt=0, description="SSH keep-alive interval, s")
    link_timeout: float = Field(15.0, gt=0, description="TCP_USER_TIMEOUT: unacknowledged data may "
                                "wait this long before a silently dead link fails, s")
    lock_timeout: float = Field(600.0, ge=0, description="how long to wait while another "
                                "controller holds the device lock, s")
    workdir: str = "~/.cache/harness"
    python: str | None = Field(None, description="python on the target (default: python3; the "
                                                  "controller's own interpreter for a local target)")
    # what runs the model
    runtime: Runtime = "auto"
    runtimes: list[Runtime] = Field(default_factory=list, description="extra runtimes to compare")
    accelerator: Literal["edgetpu"] | None = None
    benchmark_model: str | None = None
    trtexec: str | None = None
    labels: list[str] = Field(default_factory=list)
    # microcontrollers
    via: str | None = None
    serial_port: str | None = None
    fqbn: str | None = None
    ram_kb: int | None = Field(None, gt=0)
    flash_kb: int | None = Field(None, gt=0)

    @field_validator("workdir", "python", "identity_file", "known_hosts", "benchmark_model", "trtexec",
                     "serial_port")
    @classmethod
    def _safe_path(cls, value: str | None) -> str | None:
        if value is not None and not SAFE_PATH_RE.match(value):
            raise ValueError(f"{value!r} has characters not allowed in a path "
                             "(allowed: letters, digits, _ . / ~ + -)")
        return value

    @field_validator("ssh", "jump")
    @classmethod
    def _safe_ssh(cls, value: str | None) -> str | None:
        if value is not None and not SSH_RE.match(value):
            raise ValueError(f"{value!r} is not an ssh address (an ~/.ssh/config alias or "
                             "user@host[:port])")
        return value

    @field_validator("host")
    @classmethod
    def _safe_host(cls, value: str | None) -> str | None:
        if value is not None and not HOST_RE.match(value):
            raise ValueError(f"{value!r} is not a host name or IP address")
        return value

    @field_validator("user")
    @classmethod
    def _safe_user(cls, value: str | None) -> str | None:
        if value is not None and not USER_RE.match(value):
            raise ValueError(f"{value!r} is not a user name")
        return value

    @model_validator(mode="after")
    def _labgrid_address(self) -> "Target":
        if self.labgrid is not None:
            given = [f for f in ("ssh", "host", "port", "user", "serial_port")
                     if getattr(self, f) is not None]
            if given:
                raise ValueError(f"`labgrid` gives the address; drop {', '.join(given)} (the "
                                 "place's NetworkService or serial port is used)")
        return self

    @model_validator(mode="after")
    def _one_address(self) -> "Target":
        if self.ssh is not None and self.host is not None:
            raise ValueError("give either `ssh` (alias or user@host[:port]) or `host`, not both")
        if self.ssh is not None and "@" in self.ssh and self.user is not None:
            raise ValueError(f"`user` is also given in ssh: {self.ssh!r}; keep one")
        if self.ssh is not None and ":" in self.ssh and self.port is not None:
            raise ValueError(f"`port` is also given in ssh: {self.ssh!r}; keep one")
        return self

    # the venv `harness targets --setup` made on the device, adopted when connecting
    _setup_python: str | None = PrivateAttr(None)

    @property
    def configured_python(self) -> str:
        """The device's own interpreter: `python:`, else python3 (this one for a local target)."""
        if self.python:
            return self.python
        return sys.executable if self.is_local else "python3"

    @property
    def python_exe(self) -> str:
        """The interpreter that runs the device-side runner: the venv recorded by `harness targets
        --setup` when it applies (see `use_setup_python`), else `configured_python`."""
        return self._setup_python or self.configured_python

    def use_setup_python(self, python: str | None, base_python: str | None) -> bool:
        """Run with `python`, a venv `harness targets --setup` made from `base_python` (the
        target's `python:` then, None when unset). An explicit `python:` naming another
        interpreter wins. None forgets it. Returns whether the venv is used."""
        use = python is not None and (self.python is None or self.python == base_python)
        self._setup_python = python if use else None
        return use

    @property
    def is_local(self) -> bool:
        return (self.ssh is None and self.host is None and self.labgrid is None
                and self.kind != "arduino")


class Inventory(Strict):
    """The whole fleet."""

    groups: dict[str, list[str]] = Field(default_factory=dict)
    targets: dict[str, Target]

    @model_validator(mode="after")
    def _check_names(self) -> "Inventory":
        for name in list(self.targets) + list(self.groups):
            if not NAME_RE.match(name):
                raise ValueError(f"name {name!r} is not allowed (letters, digits, _ . -; max 64)")
        for group, members in self.groups.items():
            if group in self.targets:
                raise ValueError(f"group {group!r} has the same name as a target")
            for member in members:
                if member not in self.targets:
                    raise ValueError(f"group {group!r} names unknown target {member!r}")
        for name, target in self.targets.items():
            if target.via is not None and target.via not in self.targets:
                raise ValueError(f"target {name!r}: via names unknown target {target.via!r}")
        return self

    def select(self, spec: str) -> list[str]:
        """Expand a comma-separated list of targets and groups, in order, without repeats."""
        chosen: list[str] = []
        for token in (t.strip() for t in spec.split(",")):
            if not token:
                continue
            names = self.groups.get(token) or ([token] if token in self.targets else None)
            if names is None:
                raise UserError(
                    f"--targets: unknown target or group {token!r}",
                    hint=f"known targets: {', '.join(self.targets)}; "
                         f"groups: {', '.join(self.groups) or 'none'}")
            chosen += [n for n in names if n not in chosen]
        if not chosen:
            raise UserError("--targets is empty", hint=f"known targets: {', '.join(self.targets)}")
        return chosen


def load_inventory(path: Path) -> Inventory:
    """Read and validate an inventory file."""
    return load(Inventory, path, "inventory")
