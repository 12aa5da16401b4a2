"""Fixtures: real OpenSSH servers on loopback, in network namespaces, and an emulated aarch64 device."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
for p in (TESTS, TESTS / "ssh"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import sshd as sshd_mod  # noqa: E402
from sshd import Netns, SSHServer  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if not sshd_mod.have_sshd():
        skip = pytest.mark.skip(reason="OpenSSH server not installed (apt-get install "
                                       "openssh-server; see .ci/setup_ssh_tests.sh)")
        for item in items:
            if "tests/ssh/" in str(item.fspath).replace("\\", "/"):
                item.add_marker(skip)


@pytest.fixture
def sshd_factory(tmp_path_factory):
    """Start loopback sshds: `sshd_factory()` -> started SSHServer; all stopped at teardown."""
    servers: list[SSHServer] = []

    def make(**kwargs) -> SSHServer:
        server = SSHServer(tmp_path_factory.mktemp("sshd"), **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def sshd(sshd_factory) -> SSHServer:
    return sshd_factory()


@pytest.fixture
def netns_factory(tmp_path_factory):
    """`netns_factory()` -> (Netns, started SSHServer inside it); root only."""
    why = sshd_mod.netns_unavailable()
    if why:
        pytest.skip(why)
    made: list[tuple[Netns, SSHServer]] = []

    def make(**kwargs) -> tuple[Netns, SSHServer]:
        ns = Netns().create()
        try:
            server = SSHServer(tmp_path_factory.mktemp("nssshd"), netns=ns, **kwargs).start()
        except Exception:
            ns.destroy()
            raise
        made.append((ns, server))
        return ns, server

    yield make
    for ns, server in made:
        server.stop()
        ns.destroy()


@pytest.fixture
def netns_sshd(netns_factory) -> tuple[Netns, SSHServer]:
    return netns_factory()


def aarch64_unavailable() -> str | None:
    why = sshd_mod.netns_unavailable()
    if why:
        return why
    import aarch64

    return aarch64.binfmt_ready()


@pytest.fixture(scope="session")
def aarch64_rootfs() -> Path:
    why = aarch64_unavailable()
    if why:
        pytest.skip(f"emulated aarch64 target: {why}")
    import aarch64

    return aarch64.build()


@pytest.fixture
def aarch64_factory(aarch64_rootfs, netns_factory):
    """`aarch64_factory()` -> (Netns, SSHServer) serving the arm64 root fs through qemu-user."""
    return lambda: netns_factory(chroot=aarch64_rootfs)


@pytest.fixture
def aarch64_sshd(aarch64_factory) -> tuple[Netns, SSHServer]:
    return aarch64_factory()
