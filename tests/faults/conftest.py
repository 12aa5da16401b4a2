"""The fault matrix's bench: a one-model suite run by the real CLI on a local or loopback-SSH
target (tests/faults/faultbench.py), a root check and a real sshd.

Every case runs `harness run` in a fresh process (the real runner, a real TFLite runtime, a real
sshd for SSH targets), breaks something, and checks that no row is lost, no stale row appears, the
exit code is right and `harness run --resume` completes the run. The model is the session's tiny
converted model (tests/conftest.py), measured "as is" through the generic workload, so no case
trains anything; `min_seconds` is the knob that leaves time to break a job.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sshd as sshd_mod  # noqa: E402  (tests/ is on sys.path through faultbench)
from faultbench import Bench, unavailable  # noqa: E402
from sshd import SSHServer  # noqa: E402


@pytest.fixture
def need_root() -> None:
    if not sshd_mod.is_root():
        unavailable("needs root")


@pytest.fixture
def sshd_server(tmp_path_factory):
    """A real OpenSSH server on loopback (tests/sshd.py), stopped at teardown."""
    if not sshd_mod.have_sshd():
        unavailable("OpenSSH server not installed (apt-get install openssh-server)")
    server = SSHServer(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture
def bench(tmp_path: Path, tiny_models: dict, harness_cache: Path) -> Bench:
    """A fresh bench with the tiny float model and 4 samples of data."""
    import numpy as np

    shutil.copyfile(tiny_models["convert_only"], tmp_path / "tiny.tflite")
    np.savez(tmp_path / "data.npz", x=np.zeros((4, 64, 1), np.float32),
             y=np.zeros((4, 1), np.float32))
    return Bench(tmp_path, tmp_path / "tiny.tflite", harness_cache)
