"""Content-addressed push: `<workdir>/artifacts/<sha256>.<ext>`, verified, never sent twice.

One round trip asks the device for the hash of the final path (sha256sum, or the target's python with
hashlib where coreutils are missing). If it matches, nothing is sent ("already on device"). Otherwise
the file goes to a temporary name, is hashed again on the device, and renamed into place, so a half
written or corrupted file never sits at a content-addressed path.
"""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

from harness.artifacts.cache import sha256_file
from harness.errors import InfraError, UserError
from harness.transport import disk
from harness.transport.base import Transport

log = logging.getLogger("harness.transport.push")

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
EXT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$")

# $1 path, $2 python: prints "<hex>" or "missing"; works with sha256sum, shasum or python hashlib.
_HASH_SCRIPT = r'''
if [ ! -f "$1" ]; then echo missing; exit 0; fi
if command -v sha256sum >/dev/null 2>&1; then sha256sum -- "$1" | cut -d" " -f1; exit 0; fi
if command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d" " -f1; exit 0; fi
exec "$2" -c "import hashlib,sys
h=hashlib.sha256()
with open(sys.argv[1],'rb') as f:
    for b in iter(lambda: f.read(1<<20), b''): h.update(b)
print(h.hexdigest())" "$1"
'''


def remote_sha256(transport: Transport, remote: str, python: str = "python3") -> str | None:
    """The sha256 of a file on the device, or None when it does not exist."""
    res = transport.run(["sh", "-c", _HASH_SCRIPT, "sh", remote, python])
    out = res.stdout.strip().splitlines()[-1:] if res.stdout.strip() else []
    if res.ok and out and out[0] == "missing":
        return None
    if res.ok and out and SHA256_RE.match(out[0]):
        return out[0]
    raise InfraError(f"{transport.name}: cannot hash {remote} on the device: "
                     f"{(res.stderr or res.stdout).strip()[-300:]}", kind="tool_missing",
                     phase="push", hint="the device needs sha256sum (coreutils) or python3")


def push(transport: Transport, local: Path, sha256: str, ext: str,
         python: str = "python3") -> tuple[str, bool]:
    """Put `local` at `<workdir>/artifacts/<sha256>.<ext>` unless it is already there.

    Returns (remote path, whether bytes were sent). Raises InfraError(phase="push") when the device
    fails or the bytes that arrived do not hash to `sha256`.
    """
    if not SHA256_RE.match(sha256):
        raise UserError(f"push: {sha256!r} is not a lowercase hex sha256")
    if not EXT_RE.match(ext):
        raise UserError(f"push: extension {ext!r} is not allowed")
    local = Path(local)
    if sha256_file(local) != sha256:
        raise UserError(f"push: {local} does not hash to {sha256[:12]}… (stale artifact cache?)",
                        hint="rebuild the artifact")
    remote = f"{transport.workdir.rstrip('/')}/artifacts/{sha256}.{ext}"
    try:
        if remote_sha256(transport, remote, python) == sha256:
            log.info("%s: %s already on device (%s)", transport.name, local.name, remote)
            return remote, False
        tmp = f"{remote}.part-{uuid.uuid4().hex[:8]}"
        transport.put(local, tmp)
        got = remote_sha256(transport, tmp, python)
        if got != sha256:
            transport.run(["rm", "-f", "--", tmp])
            raise InfraError(f"{transport.name}: {local.name} arrived corrupted (sha256 "
                             f"{(got or 'missing')[:12]}…, expected {sha256[:12]}…)",
                             kind="push_corrupt", phase="push",
                             hint="check the device's disk (full? failing SD card?)")
        mv = transport.run(["mv", "-f", "--", tmp, remote])
        if not mv.ok:
            raise InfraError(f"{transport.name}: cannot move {tmp} into place: {mv.stderr.strip()}",
                             kind="workdir", phase="push")
    except InfraError as exc:
        if exc.phase in (None, "run"):
            exc.phase = "push"
        raise
    log.info("%s: pushed %s (%d bytes) to %s", transport.name, local.name, local.stat().st_size,
             remote)
    return remote, True


def push_bundle(transport: Transport, files: list[Path], digest: str,
                python: str = "python3") -> tuple[str, bool]:
    """Put a set of files (e.g. the device runner) in `<workdir>/runner/<digest>/` once.

    `digest` must identify the files' names and contents. A `.complete` marker written last makes the
    next call a single round trip that sends nothing. Returns (remote dir, whether bytes were sent).
    """
    if not re.match(r"^[0-9a-f]{8,64}$", digest):
        raise UserError(f"push_bundle: {digest!r} is not a hex digest")
    remote_dir = f"{transport.workdir.rstrip('/')}/runner/{digest}"
    marker = f"{remote_dir}/.complete"
    try:
        check = transport.run(["sh", "-c", 'test -f "$1" && cat "$1" || echo missing', "sh", marker])
        if check.ok and check.stdout.strip() == digest:
            log.info("%s: runner %s already on device", transport.name, digest[:12])
            return remote_dir, False
        for path in files:
            transport.put(Path(path), f"{remote_dir}/{Path(path).name}")
        done = transport.run(["sh", "-c", 'printf "%s\\n" "$2" > "$1"', "sh", marker, digest])
        if not done.ok:
            raise disk.full_disk_error(transport, marker, 0, done.stderr) or InfraError(
                f"{transport.name}: cannot write {marker}: {done.stderr.strip()}",
                kind="workdir", phase="push")
    except InfraError as exc:
        if exc.phase in (None, "run"):
            exc.phase = "push"
        raise
    return remote_dir, True
