"""The record `harness targets --setup` leaves on a device, and the interpreter it gives a target.

`<workdir>/setup.json` names the venv the setup made and verified (`<workdir>/venv/bin/python`),
the interpreter it was made from, the runtime and the hash of the requirement set. `connect`
reads it once per connection (one round trip) and, unless the inventory's `python:` names another
interpreter, the target then runs the runner with the venv's Python.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from harness.transport.base import Transport

if TYPE_CHECKING:
    from harness.config.inventory import Target

log = logging.getLogger("harness.transport.setup_record")

SETUP_FILE = "setup.json"
VENV_DIR = "venv"
VENV_PYTHON = f"{VENV_DIR}/bin/python"
FORMAT_VERSION = 1
_VENV_OK = "harness-venv-ok"
# in the work dir: the record (if any), then a marker line when the venv's python is executable
_READ = (f'[ -f {SETUP_FILE} ] || exit 0; cat {SETUP_FILE}; echo; '
         f'[ -x {VENV_PYTHON} ] && echo {_VENV_OK}; exit 0')


def read_record(transport: Transport) -> dict[str, Any] | None:
    """The setup record of the device, or None (no record, unreadable, or its venv is gone)."""
    res = transport.run(["sh", "-c", _READ], timeout=60)
    lines = res.stdout.strip().splitlines()
    if not res.ok or not lines or lines[-1] != _VENV_OK:
        return None
    try:
        record = json.loads("\n".join(lines[:-1]))
    except ValueError:
        log.warning("%s: %s is not JSON; ignored (re-run `harness targets --setup`)",
                    transport.name, SETUP_FILE)
        return None
    if not isinstance(record, dict) or record.get("format_version") != FORMAT_VERSION \
            or not isinstance(record.get("python"), str):
        return None
    return record


def adopt(target: "Target", transport: Transport) -> dict[str, Any] | None:
    """Read the record and let the target run with its venv (unless `python:` names another
    interpreter). Returns the record, or None."""
    record = read_record(transport)
    if record is None:
        target.use_setup_python(None, None)
        return None
    if target.use_setup_python(record["python"], record.get("base_python")):
        log.debug("%s: runs with %s (harness targets --setup)", transport.name, record["python"])
    return record
