"""Device kinds: what each kind of device can run, how its artifacts are prepared, what it checks on
the device, and how its jobs are measured.

`KINDS` maps the inventory's `kind:` to its `DeviceKind` (`harness.devices.base`): `unsupported`,
`prepare`, `probe`, `build_rows`, `execute`. Kinds never import each other; what several need is
below them: `runner_exec` (jobs measured by `targets/runner.py`), `tools` (finding a tool on a
target), `harness.artifacts` and `harness.parsers`.
"""

from __future__ import annotations

from harness.devices.arduino import ArduinoKind
from harness.devices.base import DeviceKind
from harness.devices.cpu import CpuKind
from harness.devices.edgetpu import EdgeTpuKind
from harness.devices.tensorrt import TensorRtKind

KINDS: dict[str, DeviceKind] = {kind.name: kind for kind in (
    CpuKind(), EdgeTpuKind(), TensorRtKind(), ArduinoKind())}
