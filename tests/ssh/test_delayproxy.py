"""The TCP delay proxy used by bench/fleet_scaling.py carries an SSH session intact."""

from __future__ import annotations

import os

import pytest

from delayproxy import DelayProxy
from harness.transport import connect
from harness.artifacts.cache import sha256_file as file_sha256
from harness.transport.push import push
from sshd import host_pattern


@pytest.mark.slow  # a delaying proxy in front of sshd
def test_ssh_through_the_delay_proxy(sshd, tmp_path):
    proxy = DelayProxy(sshd.host, sshd.port, one_way=0.025).start()
    try:
        kind, blob = sshd.host_key_line.split()[1:3]
        sshd.known_hosts.write_text(f"{host_pattern('127.0.0.1', proxy.port)} {kind} {blob}\n")
        data = tmp_path / "blob.bin"
        data.write_bytes(os.urandom(1_000_000))
        with connect("far", sshd.target(port=proxy.port)) as tr:
            assert tr.port == proxy.port
            remote, sent = push(tr, data, file_sha256(data), "bin")  # verified on the far side
            assert sent
            tr.get(remote, tmp_path / "back.bin")
            assert (tmp_path / "back.bin").read_bytes() == data.read_bytes()
            assert tr.run(["seq", "1", "20000"]).stdout.split() == [str(i) for i in range(1, 20001)]
    finally:
        proxy.stop()
