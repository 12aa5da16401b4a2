"""Content-addressed push over a real sshd (and over the local transport)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.transport import LocalTransport, connect
from harness.artifacts.cache import sha256_file as file_sha256
from harness.transport.push import push, push_bundle, remote_sha256


@pytest.fixture
def artifact(tmp_path) -> tuple[Path, str]:
    path = tmp_path / "model.tflite"
    path.write_bytes(os.urandom(300_000))
    return path, file_sha256(path)


def test_second_push_sends_nothing(sshd, artifact, caplog):
    local, sha = artifact
    with connect("lo", sshd.target()) as tr:
        remote, sent = push(tr, local, sha, "tflite")
        assert sent and remote == f"{tr.workdir}/artifacts/{sha}.tflite"
        assert tr.bytes_sent == local.stat().st_size
        assert remote_sha256(tr, remote) == sha
        caplog.set_level(logging.INFO, logger="harness.transport.push")
        remote2, sent2 = push(tr, local, sha, "tflite")
        assert (remote2, sent2) == (remote, False)
        assert tr.bytes_sent == local.stat().st_size  # zero bytes more
    assert "already on device" in caplog.text
    # a new connection (a second run) also sends nothing
    with connect("lo", sshd.target()) as tr:
        assert push(tr, local, sha, "tflite") == (remote, False)
        assert tr.bytes_sent == 0
    assert not list(Path(remote).parent.glob("*.part-*"))  # no temp files left


def test_corrupted_copy_on_device_is_replaced(sshd, artifact):
    local, sha = artifact
    with connect("lo", sshd.target()) as tr:
        remote, _ = push(tr, local, sha, "tflite")
        Path(remote).write_bytes(b"garbage")  # the loopback device shares our disk
        assert push(tr, local, sha, "tflite") == (remote, True)
        assert file_sha256(Path(remote)) == sha


def test_python_fallback_when_sha256sum_is_missing(sshd, artifact, tmp_path):
    local, sha = artifact
    with connect("lo", sshd.target()) as tr:
        push(tr, local, sha, "tflite")
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for tool in ("sh", "cut"):
            (bin_dir / tool).symlink_to(shutil.which(tool))
        python = os.path.realpath(sys.executable)  # a real interpreter, not a shim
        res = tr.run(["env", f"PATH={bin_dir}", "sh", "-c",
                      "command -v sha256sum || echo none"])
        assert res.stdout.strip() == "none"
        from harness.transport.push import _HASH_SCRIPT
        res = tr.run(["env", f"PATH={bin_dir}", "sh", "-c", _HASH_SCRIPT, "sh",
                      f"artifacts/{sha}.tflite", python])
        assert res.stdout.strip() == sha


def test_push_refuses_a_file_that_does_not_match_its_hash(sshd, artifact):
    local, sha = artifact
    with connect("lo", sshd.target()) as tr:
        with pytest.raises(UserError):
            push(tr, local, "0" * 64, "tflite")
        with pytest.raises(UserError):
            push(tr, local, sha, "tfl;ite")
        assert tr.bytes_sent == 0


def test_push_over_the_local_transport(tmp_path, artifact):
    local, sha = artifact
    tr = LocalTransport("host", tmp_path / "work")
    remote, sent = push(tr, local, sha, "tflite")
    assert sent and Path(remote).read_bytes() == local.read_bytes()
    assert push(tr, local, sha, "tflite") == (remote, False)


def test_push_bundle_once(sshd, tmp_path):
    files = []
    for i in range(3):
        f = tmp_path / f"mod{i}.py"
        f.write_text(f"x = {i}\n")
        files.append(f)
    with connect("lo", sshd.target()) as tr:
        remote_dir, sent = push_bundle(tr, files, "abcdef0123456789")
        assert sent and sorted(p.name for p in Path(remote_dir).iterdir()) == [
            ".complete", "mod0.py", "mod1.py", "mod2.py"]
        before = tr.bytes_sent
        assert push_bundle(tr, files, "abcdef0123456789") == (remote_dir, False)
        assert tr.bytes_sent == before
