"""Targets leased from a labgrid lab: acquire the target's place, read its resources, release it.

A target with `labgrid: {place, coordinator}` in the inventory is not reached at a fixed address.
Before its jobs, `lease(name, target)` acquires the place from the labgrid coordinator (waiting
while another controller holds it, up to `labgrid.acquire_timeout`), reads the place's resources
and yields the target with its address filled in:

- `NetworkService` (address, port, username) -> `host`, `port`, `user` of the SSH transport; a
  service behind its exporter (`proxy_required`) is reached with the exporter as `jump` host;
- a serial port (`RawSerialPort` / `USBSerialPort`, exported as `NetworkSerialPort`) ->
  `serial_port`, the device path on the exporter, for an Arduino reached `via` that machine.

The place is released when the block ends, also on an error or Ctrl-C; the release names the
holder (`fromuser`), so it never frees a place someone else holds. labgrid's own client session
does the talking (`labgrid.remote.client.ClientSession` and its coordinator stub): one session
per coordinator, on one event loop thread per process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from harness.errors import HarnessError, InfraError, UserError

if TYPE_CHECKING:
    from harness.config.inventory import Target

log = logging.getLogger("harness.lab")
COORDINATOR_ENV = "LG_COORDINATOR"
DEFAULT_PORT = 20408
POLL_S = 0.5           # how often a waiting lease looks at the place again
REPORT_EVERY_S = 60.0  # "still waiting" in the log this often
CONNECT_TIMEOUT_S = 30.0
SERIAL_CLASSES = ("NetworkSerialPort",)  # how an exporter publishes RawSerialPort/USBSerialPort
INSTALL_HINT = "install the lab extra: pip install 'harness[lab]' (labgrid)"


@dataclass(frozen=True, eq=False)
class Acquired:
    """A place this controller holds: what it was given and how long it waited."""

    place: str
    coordinator: str
    holder: str                       # labgrid's "host/user" of this controller
    resources: dict[tuple[str, str], Any]  # (name, class) -> labgrid ResourceEntry
    waited_s: float


def coordinator_of(name: str, target: "Target") -> str:
    """The coordinator a target's place lives on: `labgrid.coordinator`, else $LG_COORDINATOR."""
    assert target.labgrid is not None
    address = target.labgrid.coordinator or os.environ.get(COORDINATOR_ENV, "").strip()
    if not address:
        raise UserError(f"target {name!r}: labgrid place {target.labgrid.place!r} names no "
                        "coordinator",
                        hint=f"set labgrid.coordinator: host[:port] in the inventory, or "
                             f"{COORDINATOR_ENV}")
    return address if ":" in address.rsplit("]", 1)[-1] else f"{address}:{DEFAULT_PORT}"


@contextmanager
def lease(name: str, target: "Target",
          cancel: threading.Event | None = None) -> Iterator["Target"]:
    """Hold the target's labgrid place while the block runs; yields the target to connect to.

    A target without `labgrid` is yielded as it is. While another controller holds the place,
    "waiting for place P, held by H" is logged (a warning: the console shows it); `cancel`
    (set on Ctrl-C) ends the wait.
    Raises UserError (no such place, no usable resource, labgrid missing) or InfraError
    (coordinator unreachable; kind `timeout` after `acquire_timeout`; `interrupted` by cancel).
    """
    if target.labgrid is None:
        yield target
        return
    spec = target.labgrid
    try:
        address = coordinator_of(name, target)
        held = _client().acquire(address, spec.place, spec.acquire_timeout, cancel)
    except HarnessError as exc:
        log.error("%s: %s", name, exc)
        raise
    since = time.monotonic()
    _HELD.add(held)
    try:
        resolved = resolve_target(name, target, held)
        log.info("%s: acquired place %s on %s after %.1f s (%s)", name, spec.place, address,
                 held.waited_s, describe(resolved))
        yield resolved
    finally:
        if held in _HELD:
            _HELD.discard(held)
            _client().release(held)
            log.info("%s: released place %s (held %.1f s)", name, spec.place,
                     time.monotonic() - since)


def release_held(timeout: float = 10.0) -> list[str]:
    """Release every place this process holds, at once (best effort, within `timeout`); the
    places released. For an exit that cannot wait for the leases to end (a second Ctrl-C):
    labgrid keeps a place acquired when its holder dies."""
    released = []
    for held in list(_HELD):
        _HELD.discard(held)
        try:
            _client().release(held, timeout)
            released.append(held.place)
        except Exception as exc:  # exiting anyway: say what is left held
            log.error("place %s on %s may still be held: %s", held.place, held.coordinator, exc)
    return released


def describe(target: "Target") -> str:
    """What a leased target is reached by, for the log."""
    if target.kind == "arduino" or target.host is None:
        return f"serial port {target.serial_port} via {target.via}"
    jump = f" via {target.jump}" if target.jump else ""
    return f"ssh {target.user}@{target.host}:{target.port or 22}{jump}"


# --------------------------------------------------------------------------- resources -> target

def resolve_target(name: str, target: "Target", held: Acquired) -> "Target":
    """The target with the address (or serial port) its place provides.

    An Arduino (`kind: arduino`, reached `via` the machine its board is plugged into) takes the
    place's serial port; every other kind takes its NetworkService.
    """
    from harness.config.inventory import HOST_RE, SAFE_PATH_RE, SSH_RE, USER_RE

    def by_class(classes: tuple[str, ...]) -> list[tuple[str, Any]]:
        return sorted((res_name, entry) for (res_name, cls), entry in held.resources.items()
                      if cls in classes)

    what = ", ".join(f"{cls} {res_name}" for res_name, cls in sorted(held.resources)) or "none"
    if target.kind == "arduino":
        found, wanted = by_class(SERIAL_CLASSES), "serial port (RawSerialPort or USBSerialPort)"
    else:
        found, wanted = by_class(("NetworkService",)), "NetworkService (address, port, username)"
    if len(found) != 1:
        problem = "has no" if not found else f"has {len(found)} resources of one kind:"
        raise UserError(f"target {name!r}: labgrid place {held.place!r} {problem} {wanted}; "
                        f"its resources: {what}",
                        hint="the harness needs exactly one; match it to the place with "
                             f"`labgrid-client -p {held.place} add-match EXPORTER/GROUP/CLASS`")
    res_name, entry = found[0]
    if not entry.avail:
        raise UserError(f"target {name!r}: {entry.cls} {res_name} of labgrid place "
                        f"{held.place!r} is not available (its exporter cannot see it)",
                        hint="check the board and the exporter next to it")
    args, extra = entry.args, entry.extra

    def bad(field: str, value: Any) -> UserError:
        return UserError(f"target {name!r}: labgrid place {held.place!r}: {entry.cls} "
                         f"{res_name} has {field} {value!r}, which the harness cannot use")

    if target.kind == "arduino":
        path = extra.get("path")
        if not isinstance(path, str) or not SAFE_PATH_RE.match(path):
            raise bad("path", path)
        return target.model_copy(update={"serial_port": path})
    host, user, port = args.get("address"), args.get("username"), args.get("port", 22)
    if not isinstance(host, str) or not HOST_RE.match(host):
        raise bad("address", host)
    if not isinstance(user, str) or not USER_RE.match(user):
        raise bad("username", user)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise bad("port", port)
    update: dict[str, Any] = {"host": host, "user": user, "port": port}
    proxy = extra.get("proxy")
    if extra.get("proxy_required") and target.jump is None:
        if not isinstance(proxy, str) or not SSH_RE.match(proxy):
            raise bad("proxy", proxy)
        update["jump"] = proxy  # labgrid reaches it through its exporter; so do we
    return target.model_copy(update=update)


# --------------------------------------------------------------------------- the client

class _LabClient:
    """One labgrid client session per coordinator, on one asyncio loop in a daemon thread.

    Every lease of the process shares its coordinator's session: it keeps the places current
    (labgrid's message pump), and acquire and release are calls on its stub. One session, not
    one per lease: grpc lets channels to one address share a connection, and labgrid's
    streaming sessions then fail ("Internal error from Core"). A session whose coordinator went
    away is replaced on next use.
    """

    def __init__(self) -> None:
        try:
            from labgrid.remote import client  # noqa: F401
        except ImportError as exc:
            raise UserError(f"the inventory names a labgrid place, but labgrid cannot be "
                            f"imported: {exc}", hint=INSTALL_HINT) from exc
        self.loop = asyncio.new_event_loop()
        self.sessions: dict[str, Any] = {}
        self.opening: dict[str, asyncio.Lock] = {}
        threading.Thread(target=self.loop.run_forever, name="labgrid", daemon=True).start()

    def _run(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def acquire(self, address: str, place: str, timeout: float,
                cancel: threading.Event | None) -> Acquired:
        return self._run(self._acquire(address, place, timeout, cancel))

    def release(self, held: Acquired, timeout: float | None = None) -> None:
        """Release a place (three tries; the last failure is logged, not raised)."""
        for attempt in range(1 if timeout else 3):
            try:
                self._run(self._release(held), timeout)
                return
            except HarnessError as exc:
                if attempt == 2:
                    log.error("place %s on %s was NOT released: %s; release it with "
                              "`labgrid-client -x %s -p %s release`", held.place,
                              held.coordinator, exc, held.coordinator, held.place)
                    return
                time.sleep(1.0 + attempt)

    # -- coroutines, on the loop thread --

    async def _session(self, address: str) -> Any:
        from labgrid.remote.client import ClientSession, Error

        async with self.opening.setdefault(address, asyncio.Lock()):
            session = self.sessions.get(address)
            if session is not None and not session.stopping.is_set():
                return session
            if session is not None:
                await self._close(self.sessions.pop(address))
            session = ClientSession(address, asyncio.get_running_loop())
            try:
                await asyncio.wait_for(session.start(), CONNECT_TIMEOUT_S)
            except (Error, asyncio.TimeoutError) as exc:
                await self._close(session)
                raise InfraError(f"labgrid coordinator {address} is not reachable"
                                 + (f": {exc}" if str(exc) else ""), kind="unreachable",
                                 phase="lease",
                                 hint="start labgrid-coordinator there, or fix "
                                      f"labgrid.coordinator / {COORDINATOR_ENV}") from exc
            self.sessions[address] = session
            return session

    @staticmethod
    async def _close(session: Any) -> None:
        try:
            await session.stop()
            await session.close()
        except Exception as exc:  # closing a broken channel; nothing is held by it
            log.debug("closing the labgrid session: %s", exc)

    async def _acquire(self, address: str, name: str, timeout: float,
                       cancel: threading.Event | None) -> Acquired:
        import grpc
        from labgrid.remote.client import Error
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        started = time.monotonic()
        said: tuple[str, float] | None = None
        while True:
            session = await self._session(address)  # the same one unless the coordinator left
            me = f"{session.gethostname()}/{session.getuser()}"
            place = session.places.get(name)
            if place is None:
                known = ", ".join(sorted(session.places)) or "none"
                raise UserError(f"labgrid place {name!r} does not exist on coordinator "
                                f"{address}", hint=f"places there: {known}; create it with "
                                                   f"`labgrid-client -p {name} create`")
            holder = _holder(place, me)
            if cancel is not None and cancel.is_set():
                raise InfraError(f"interrupted while waiting for labgrid place {name!r}"
                                 + (f" (held by {holder})" if holder else ""),
                                 kind="interrupted", phase="lease")
            if holder is None:
                try:
                    session.check_matches(place)
                except Error as exc:
                    raise UserError(f"labgrid place {name!r}: {exc}",
                                    hint="is the exporter next to the board running?") from exc
                try:
                    await session.stub.AcquirePlace(pb2.AcquirePlaceRequest(placename=name))
                    await session.sync_with_coordinator()
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in (grpc.StatusCode.FAILED_PRECONDITION,
                                          grpc.StatusCode.PERMISSION_DENIED):
                        raise InfraError(f"labgrid place {name!r} on {address}: "
                                         f"{exc.details()}", kind="unreachable",
                                         phase="lease") from exc
                    holder = _holder(place, me) or exc.details()  # someone was quicker
                else:
                    held = Acquired(name, address, me, {}, time.monotonic() - started)
                    try:
                        resources = session.get_target_resources(place)
                    except Error as exc:
                        await self._release(held)
                        raise UserError(f"labgrid place {name!r}: {exc}") from exc
                    return Acquired(name, address, me, resources, held.waited_s)
            waited = time.monotonic() - started
            if said is None or said[0] != holder:
                log.warning("waiting for place %s, held by %s (up to %g s)", name, holder,
                            timeout)
                said = (holder, waited)
            elif waited - said[1] >= REPORT_EVERY_S:
                log.info("still waiting for place %s, held by %s: %.0f s so far", name,
                         holder, waited)
                said = (holder, waited)
            if waited >= timeout:
                raise InfraError(f"labgrid place {name!r} is still held by {holder} after "
                                 f"{waited:.0f} s", kind="timeout", phase="lease",
                                 hint="raise labgrid.acquire_timeout in the inventory, or ask "
                                      "the holder to release it")
            await asyncio.sleep(POLL_S)

    async def _release(self, held: Acquired) -> None:
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        session = await self._session(held.coordinator)
        try:  # `fromuser`: a no-op unless this controller still holds it
            await session.stub.ReleasePlace(pb2.ReleasePlaceRequest(placename=held.place,
                                                                    fromuser=held.holder))
            await session.sync_with_coordinator()
        except grpc.aio.AioRpcError as exc:
            raise InfraError(f"releasing labgrid place {held.place!r}: {exc.details()}",
                             kind="unreachable", phase="lease") from exc


def _holder(place: Any, me: str) -> str | None:
    """Who keeps a place from us, or None when it is free to acquire."""
    if place.acquired:
        mine = " (this user on this host: another harness, or one that was killed; "
        return place.acquired + (mine + "`labgrid-client release` frees it)"
                                 if place.acquired == me else "")
    if place.reservation:
        return f"reservation {place.reservation}"  # the coordinator says whose at acquire
    return None


_HELD: set[Acquired] = set()  # the places this process holds now
_CLIENT: _LabClient | None = None
_CLIENT_LOCK = threading.Lock()


def _client() -> _LabClient:
    global _CLIENT
    with _CLIENT_LOCK:
        if _CLIENT is None:
            _CLIENT = _LabClient()
        return _CLIENT
