"""Transports: how the controller reaches a target (local subprocess or SSH)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.transport.base import CommandResult, Transport
from harness.transport.local import LocalTransport

if TYPE_CHECKING:
    from harness.config.inventory import Target

__all__ = ["CommandResult", "LocalTransport", "Transport", "connect"]


def connect(name: str, target: "Target", inventory_path: str | Path | None = None) -> Transport:
    """Open the transport for one target: local for a target without an ssh address, SSH otherwise.

    Relative `identity_file` / `known_hosts` paths are resolved against the inventory's directory.
    A venv made by `harness targets --setup` (recorded on the device) becomes the target's Python
    unless its `python:` names another interpreter (`setup_record.adopt`). Raises
    `InfraError(kind=unreachable|auth|timeout|hostkey, phase="connect")` when the device cannot
    be reached, `UserError` for a target that cannot be connected to at all.
    """
    from harness.config.inventory import NAME_RE
    from harness.errors import UserError

    if not NAME_RE.match(name):
        raise UserError(f"target name {name!r} is not allowed (letters, digits, _ . -; max 64)")
    from harness.transport.setup_record import adopt

    if target.is_local:
        transport: Transport = LocalTransport(name, Path(target.workdir).expanduser())
        adopt(target, transport)
        return transport
    if target.ssh is None and target.host is None:
        if target.labgrid is not None:  # harness.lab.lease gives it the place's address
            raise UserError(f"target {name!r} is reached through labgrid place "
                            f"{target.labgrid.place!r}, which is not leased here",
                            hint="`harness run` leases it; or acquire it with labgrid-client "
                                 "and give the address")
        raise UserError(f"target {name!r} ({target.kind}) has no ssh address",
                        hint="set `ssh: user@host[:port]`, or reach it `via` another target")
    from harness.transport.ssh import SSHTransport

    base_dir = Path(inventory_path).resolve().parent if inventory_path else None
    ssh = SSHTransport(name, target, base_dir=base_dir).open()
    try:
        adopt(target, ssh)
    except BaseException:
        ssh.close()
        raise
    return ssh
