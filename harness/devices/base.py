"""The device-kind seam: what every kind of device offers the plan and the orchestrator, and the
per-target context its jobs run in."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.artifacts import Artifact
from harness.config import Suite, Target
from harness.transport import Transport
from harness.transport.push import push, push_bundle

if TYPE_CHECKING:  # the plan imports the kinds; a Job is only a type here
    from harness.plan import Job

TARGETS_SRC = Path(__file__).resolve().parent.parent.parent / "targets"
Rows = list[dict[str, Any]]


@dataclass
class TargetContext:
    """Everything a device kind needs to run jobs on one target."""

    name: str
    target: Target
    transport: Transport
    suite: Suite
    local_dir: Path
    cache: Path
    profile_spec: dict | None = None
    runner_dir: str = ""
    environment: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # per-target caches of the device kind

    @property
    def fields(self) -> dict[str, Any]:
        return {"suite": self.suite.name, "target": self.name, "device_kind": self.target.kind}

    def push(self, local: Path, sha256: str, ext: str) -> str:
        """Content-addressed push; returns the path on the target, relative to its work dir."""
        remote, _sent = push(self.transport, local, sha256, ext, self.target.python_exe)
        return remote

    def ensure_runner(self) -> None:
        """Push the device-side code once (content-addressed by the bundle's hash)."""
        files = sorted(TARGETS_SRC.glob("*.py"))
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.name.encode() + path.read_bytes())
        self.runner_dir, _sent = push_bundle(self.transport, files, digest.hexdigest()[:16],
                                             self.target.python_exe)

    def record_environment(self, result: dict) -> None:
        """Keep the device environment (and runtime) reported by the runner."""
        if result.get("environment"):
            self.environment.update(result["environment"])
        if result.get("runtime"):
            self.environment.setdefault("runtimes", {})[result["runtime"]["name"]] = \
                result["runtime"]["version"]


class DeviceKind(ABC):
    """One kind of device (`kind:` in the inventory): what it can run, how its artifacts are
    prepared, what it checks on the device, and how a job is measured there."""

    name: str

    def unsupported(self, target: Target, variant: str) -> str | None:
        """Why the target cannot run this quantization variant, or None (the plan drops it)."""
        return None

    def prepare(self, target: Target, artifact: Artifact, cache: Path) -> Artifact:
        """The device's own artifact made from a built one (compiled, exported...); may raise
        HarnessError, or keep the error in `extra["deferred_error"]` for `execute` to report."""
        return artifact

    def probe(self, ctx: TargetContext) -> dict[str, Any]:
        """What this kind needs on the device (tools, delegate library), found once per target:
        a dict of findings (None for what is missing), cached in `ctx.state["probe"]`."""
        return {}

    def probed(self, ctx: TargetContext) -> dict[str, Any]:
        """`probe(ctx)`, run at most once per target."""
        if "probe" not in ctx.state:
            ctx.state["probe"] = self.probe(ctx)
        return ctx.state["probe"]

    def build_rows(self, artifact: Artifact, fields: dict[str, Any]) -> Rows:
        """Rows for what `prepare` built, recorded even when the device cannot be reached."""
        return []

    @abstractmethod
    def execute(self, ctx: TargetContext, job: "Job", artifact: Artifact) -> tuple[Rows, Rows]:
        """Measure one prepared artifact on the target: (rows, raw sample series). A failure the
        device reports is a row; HarnessError for what stops the job."""
