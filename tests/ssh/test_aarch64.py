"""The emulated aarch64 device (qemu-user + binfmt_misc, arm64 Debian root fs, chrooted sshd in a
network namespace), reached like a Raspberry Pi 4 over SSH."""

from __future__ import annotations

import os

import pytest

from harness.probe import probe
from harness.transport import connect
from harness.artifacts.cache import sha256_file as file_sha256
from harness.transport.push import push

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_probe_reports_aarch64_and_tflite_runtime(aarch64_sshd):
    _, server = aarch64_sshd
    target = server.target()
    with connect("rpi4emu", target) as tr:
        assert tr.run(["uname", "-m"]).stdout.strip() == "aarch64"
        info = probe(tr, target)
    assert info["reachable"] is True, info
    assert info["arch"] == "aarch64"
    assert info["hostname"] == "rpi4-emu"
    assert info["runtime"] == "tflite_runtime" and info["runtime_version"] == "2.14.0"
    assert info["numpy"].startswith("1.")
    assert "ai_edge_litert" not in info["runtimes"]
    assert not any("pip install" in h for h in info["hints"]), info["hints"]


def test_push_to_the_emulated_device_is_verified_and_skipped_next_time(aarch64_sshd, tmp_path):
    _, server = aarch64_sshd
    blob = tmp_path / "model.tflite"
    blob.write_bytes(os.urandom(200_000))
    sha = file_sha256(blob)
    with connect("rpi4emu", server.target()) as tr:
        remote, sent = push(tr, blob, sha, "tflite")
        assert sent and remote.startswith(tr.workdir + "/artifacts/")
        assert push(tr, blob, sha, "tflite") == (remote, False)
    assert (server.root / "upper" / remote.lstrip("/")).is_file()  # landed in the chroot overlay
