"""harness.lab.lease against a real labgrid coordinator and exporter on loopback: the place's
NetworkService becomes the SSH address, a held place is waited for (and the wait ends on cancel
or after the timeout, naming the holder), and every failure names the place and leaves it free.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from harness.config.inventory import Target
from harness.errors import InfraError, UserError
from harness.lab import Acquired, lease, resolve_target

SERVICE = {"NetworkService": {"address": "127.0.0.1", "port": 2200, "username": "pi"}}


@pytest.fixture(scope="module")
def places(lab):
    """svc-1: one NetworkService; empty-1: no resource; two-1: two NetworkServices."""
    lab.export("bench", {"svc1": SERVICE,
                         "svc2a": {"ssh-a": dict(SERVICE["NetworkService"], port=2201,
                                                 cls="NetworkService")},
                         "svc2b": {"ssh-b": dict(SERVICE["NetworkService"], port=2202,
                                                 cls="NetworkService")}})
    lab.place("svc-1", ["bench/svc1/NetworkService"])
    lab.place("empty-1", [])
    lab.place("two-1", ["bench/svc2a/NetworkService", "bench/svc2b/NetworkService"])
    return lab


def target(lab, place: str, **labgrid) -> Target:
    return Target(kind="cpu", identity_file="/k/id", known_hosts="/k/known",
                  labgrid=dict(place=place, coordinator=lab.address, **labgrid))


def test_the_place_gives_the_address_and_is_released_after(places):
    with lease("rpi", target(places, "svc-1")) as leased:
        assert (leased.host, leased.port, leased.user) == ("127.0.0.1", 2200, "pi")
        assert leased.identity_file == "/k/id" and not leased.is_local
        holder = places.holder("svc-1")
        assert holder is not None and holder.endswith("/" + _me())
    assert places.holder("svc-1") is None


def test_released_when_the_block_fails(places):
    with pytest.raises(RuntimeError, match="boom"):
        with lease("rpi", target(places, "svc-1")):
            raise RuntimeError("boom")
    assert places.holder("svc-1") is None


def test_a_target_without_labgrid_is_left_alone():
    plain = Target(kind="cpu", host="10.0.0.9", user="pi")
    with lease("rpi", plain) as leased:
        assert leased is plain


def test_missing_place_is_named(places):
    with pytest.raises(UserError, match=r"labgrid place 'nope-1' does not exist on coordinator "
                                        r"127\.0\.0\.1:\d+.*svc-1"):
        with lease("rpi", target(places, "nope-1")):
            pass


def test_place_without_a_usable_resource_is_named_and_released(places):
    with pytest.raises(UserError, match=r"labgrid place 'empty-1' has no NetworkService "
                                        r"\(address, port, username\); its resources: none"):
        with lease("rpi", target(places, "empty-1")):
            pass
    assert places.holder("empty-1") is None
    with pytest.raises(UserError, match="'two-1' has 2 resources of one kind: NetworkService"):
        with lease("rpi", target(places, "two-1")):
            pass
    assert places.holder("two-1") is None


def test_unreachable_coordinator():
    from sshd import free_port

    lonely = Target(kind="cpu", labgrid={"place": "svc-1",
                                         "coordinator": f"127.0.0.1:{free_port()}"})
    with pytest.raises(InfraError, match="labgrid coordinator 127.0.0.1:.* is not reachable") as e:
        with lease("rpi", lonely):
            pass
    assert e.value.kind == "unreachable"


def test_waits_for_the_holder_then_takes_the_place(places, caplog):
    """Held by someone else: the lease waits, says who holds it, and gets it once released."""
    places.acquire_as("svc-1", "alice")
    got: dict = {}

    def take() -> None:
        started = time.monotonic()
        with lease("rpi", target(places, "svc-1", acquire_timeout=120)):
            got["waited"] = time.monotonic() - started
            got["holder"] = places.holder("svc-1")

    caplog.set_level(logging.INFO, logger="harness.lab")
    worker = threading.Thread(target=take)
    worker.start()
    _wait_for(lambda: "waiting for place svc-1, held by" in caplog.text)
    assert "/alice" in caplog.text and worker.is_alive()
    places.release_as("svc-1", "alice")
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert got["holder"].endswith("/" + _me()) and got["waited"] > 0
    assert places.holder("svc-1") is None


def test_timeout_names_the_holder(places):
    places.acquire_as("svc-1", "bob")
    try:
        with pytest.raises(InfraError, match=r"'svc-1' is still held by \S+/bob after") as e:
            with lease("rpi", target(places, "svc-1", acquire_timeout=1)):
                pass
        assert e.value.kind == "timeout" and e.value.phase == "lease"
        assert places.holder("svc-1").endswith("/bob")  # never taken from bob
    finally:
        places.release_as("svc-1", "bob")


def test_cancel_ends_the_wait_without_taking_the_place(places, caplog):
    places.acquire_as("svc-1", "carol")
    cancel = threading.Event()
    caught: list[BaseException] = []

    def wait() -> None:
        try:
            with lease("rpi", target(places, "svc-1", acquire_timeout=600), cancel):
                pass
        except InfraError as exc:
            caught.append(exc)

    caplog.set_level(logging.INFO, logger="harness.lab")
    worker = threading.Thread(target=wait)
    try:
        worker.start()
        _wait_for(lambda: "waiting for place svc-1, held by" in caplog.text)
        cancel.set()
        worker.join(timeout=30)
        assert not worker.is_alive()
        assert caught and caught[0].kind == "interrupted" and "carol" in str(caught[0])
        assert places.holder("svc-1").endswith("/carol")
    finally:
        places.release_as("svc-1", "carol")


# --------------------------------------------------------------------------- resources, pure

def _entry(cls: str, params: dict, avail: bool = True):
    from labgrid.remote.common import ResourceEntry

    return ResourceEntry({"cls": cls, "params": params, "avail": avail})


def _held(**resources) -> Acquired:
    return Acquired("p1", "lab:20408", "ctl/me",
                    {(name, entry.cls): entry for name, entry in resources.items()}, 0.0)


def test_serial_port_for_an_arduino_via_its_host():
    board = Target(kind="arduino", via="host", fqbn="arduino:mbed_nano:nano33ble",
                   labgrid={"place": "p1", "coordinator": "lab"})
    serial = _entry("NetworkSerialPort", {"host": "lab", "port": 50001, "speed": 115200,
                                          "extra": {"path": "/dev/ttyACM0"}})
    leased = resolve_target("nano", board, _held(console=serial))
    assert leased.serial_port == "/dev/ttyACM0" and leased.via == "host"
    with pytest.raises(UserError, match=r"'p1' has no serial port \(RawSerialPort or "
                                        r"USBSerialPort\); its resources: NetworkService ssh"):
        resolve_target("nano", board, _held(ssh=_entry("NetworkService", {
            "address": "10.0.0.2", "username": "pi"})))


def test_network_service_behind_its_exporter_is_reached_through_it():
    service = _entry("NetworkService", {"address": "fe80::2%eth1", "port": 22, "username": "pi",
                                        "extra": {"proxy": "exporter1", "proxy_required": True}})
    leased = resolve_target("rpi", Target(kind="cpu", labgrid={"place": "p1"}),
                            _held(NetworkService=service))
    assert (leased.host, leased.jump, leased.user) == ("fe80::2%eth1", "exporter1", "pi")


def test_unusable_resources_are_named():
    rpi = Target(kind="cpu", labgrid={"place": "p1"})
    gone = _entry("NetworkService", {"address": "10.0.0.2", "username": "pi"}, avail=False)
    with pytest.raises(UserError, match="NetworkService ssh of labgrid place 'p1' is not "
                                        "available"):
        resolve_target("rpi", rpi, _held(ssh=gone))
    odd = _entry("NetworkService", {"address": "10.0.0.2; rm -rf /", "username": "pi"})
    with pytest.raises(UserError, match="has address '10.0.0.2; rm -rf /'"):
        resolve_target("rpi", rpi, _held(ssh=odd))


def test_inventory_labgrid_field():
    from pydantic import ValidationError

    rpi = Target(kind="cpu", labgrid={"place": "rpi4-a", "coordinator": "lab.example:20408"})
    assert rpi.labgrid.acquire_timeout == 1800 and not rpi.is_local
    with pytest.raises(ValidationError, match="`labgrid` gives the address; drop host"):
        Target(kind="cpu", host="10.0.0.2", labgrid={"place": "rpi4-a"})
    with pytest.raises(ValidationError, match="not a coordinator address"):
        Target(kind="cpu", labgrid={"place": "rpi4-a", "coordinator": "lab example"})


def test_coordinator_from_the_environment(monkeypatch):
    from harness.lab import coordinator_of

    rpi = Target(kind="cpu", labgrid={"place": "rpi4-a"})
    monkeypatch.setenv("LG_COORDINATOR", "lab.example")
    assert coordinator_of("rpi", rpi) == "lab.example:20408"
    monkeypatch.delenv("LG_COORDINATOR")
    with pytest.raises(UserError, match="labgrid place 'rpi4-a' names no coordinator"):
        coordinator_of("rpi", rpi)


# --------------------------------------------------------------------------- helpers

def _me() -> str:
    import getpass
    import os

    return os.environ.get("LG_USERNAME", getpass.getuser())


def _wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_release_held_frees_the_places_of_a_process_that_must_exit_now(places):
    """What an abort (a second Ctrl-C) calls before it exits: the lease is still open."""
    from harness.lab import release_held

    with lease("rpi", target(places, "svc-1")):
        assert places.holder("svc-1") is not None
        assert release_held() == ["svc-1"]
        assert places.holder("svc-1") is None
    assert release_held() == []
