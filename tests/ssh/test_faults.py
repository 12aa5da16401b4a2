"""Fault injection on real links (root only): blackhole, random loss, slow link, dead sshd.

Each server lives in its own network namespace; faults are nft rules / tc qdiscs in that namespace.
The 30 s bound is the product requirement (a silently dead device must not hang a run), not a
benchmark. The targets use the inventory defaults for every timeout except the command timeout.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from harness.errors import InfraError
from harness.transport import connect
from harness.artifacts.cache import sha256_file as file_sha256
from harness.transport.push import push

pytestmark = pytest.mark.root
BOUND_S = 30.0


def _target(server, **kw):
    # inventory defaults: connect_timeout 10, keepalive 5, link_timeout 15
    return server.target(connect_timeout=10, **kw)


def test_blackholed_target_fails_to_connect_within_30s(netns_sshd):
    ns, server = netns_sshd
    ns.blackhole()
    t0 = time.monotonic()
    with pytest.raises(InfraError) as info:
        connect("dark", _target(server))
    elapsed = time.monotonic() - t0
    print(f"blackhole connect failure after {elapsed:.1f} s")
    assert info.value.kind == "unreachable" and info.value.phase == "connect"
    assert elapsed < BOUND_S


def test_target_blackholed_mid_command_fails_within_30s(netns_sshd):
    ns, server = netns_sshd
    with connect("dark", _target(server)) as tr:
        assert tr.run(["true"]).ok
        threading.Timer(1.0, ns.blackhole).start()
        t0 = time.monotonic()
        with pytest.raises(InfraError) as info:
            tr.run(["sleep", "120"])  # command_timeout is 300 s: only the link check can end it
        elapsed = time.monotonic() - t0
    print(f"blackhole mid-run failure after {elapsed:.1f} s")
    assert info.value.kind == "unreachable" and info.value.phase == "run"
    assert elapsed < BOUND_S


def test_target_blackholed_mid_put_fails_within_30s(netns_sshd, tmp_path):
    ns, server = netns_sshd
    blob = tmp_path / "big.bin"
    blob.write_bytes(os.urandom(20_000_000))
    with connect("dark", _target(server)) as tr:
        small = tmp_path / "small.bin"
        small.write_bytes(b"hello")
        tr.put(small, "small.bin")  # the SFTP session is open
        ns.slow("8mbit", "32kbit", "400ms")  # so the put is still running when the link dies
        threading.Timer(1.0, ns.blackhole).start()
        t0 = time.monotonic()
        with pytest.raises(InfraError) as info:
            tr.put(blob, "big.bin")
        elapsed = time.monotonic() - t0
    print(f"blackhole mid-put failure after {elapsed:.1f} s")
    assert info.value.kind == "unreachable" and info.value.phase == "push"
    assert elapsed < BOUND_S


def test_ten_percent_packet_loss_still_completes_put_and_run(netns_sshd, tmp_path):
    ns, server = netns_sshd
    ns.loss(10)
    blob = tmp_path / "model.tflite"
    blob.write_bytes(os.urandom(2_000_000))
    sha = file_sha256(blob)
    with connect("lossy", _target(server)) as tr:
        remote, sent = push(tr, blob, sha, "tflite")  # verified by sha256 on the device
        assert sent
        res = tr.run(["python3", "-c", "import sys; print(sum(range(10**6)))"])
        assert res.ok and res.stdout.strip() == str(sum(range(10**6)))
        assert push(tr, blob, sha, "tflite") == (remote, False)


def test_slow_link_put_completes(netns_sshd, tmp_path):
    ns, server = netns_sshd
    ns.slow("4mbit")
    blob = tmp_path / "model.tflite"
    blob.write_bytes(os.urandom(500_000))
    with connect("slow", _target(server)) as tr:
        remote, sent = push(tr, blob, file_sha256(blob), "tflite")
        assert sent and tr.run(["test", "-f", remote]).ok


def test_killed_sshd_then_back(netns_sshd):
    ns, server = netns_sshd
    with connect("flaky", _target(server)) as tr:
        threading.Timer(1.0, server.kill).start()
        with pytest.raises(InfraError) as info:
            tr.run(["sleep", "60"])
        assert info.value.kind == "unreachable" and info.value.phase == "run"
    with pytest.raises(InfraError) as info:
        connect("flaky", _target(server))
    assert info.value.kind == "unreachable" and info.value.phase == "connect"
    server.start()
    with connect("flaky", _target(server)) as tr:
        assert tr.run(["true"]).ok
