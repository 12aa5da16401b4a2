"""A board simulator for tests only: the other end of a `socat` pty pair answers in the harness
sketch's serial protocol (targets/arduino/harness_tflm.ino.in), running the model with the
`tflite-micro` package.

It reads what the sketch would carry: the model bytes from the generated C array (model_data.cpp),
the input window, and kTensorArenaSize from the .ino, so a round trip checks the generated files
too. `arena_used_bytes` is what TFLM's RecordingMicroAllocator reports for that arena (the figure
`arena_used_bytes()` returns on the board). Latency is wall-clock time of `invoke()` on this
machine and is announced as `clock simulated`: the controller labels those rows simulated.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import tty
from pathlib import Path

import numpy as np

from harness.artifacts.tflm_array import read_sketch
from harness.artifacts.tflm_arena import capture_fd2
from harness.parsers.tflm import parse_print_allocations


class BoardSimulator(threading.Thread):
    """Serves the sketch protocol on `port` (a pty path) until stop()."""

    def __init__(self, sketch_dir: Path, port: str) -> None:
        super().__init__(daemon=True)
        from tflite_micro.python.tflite_micro import runtime

        self.model, self.window, self.arena_size = read_sketch(sketch_dir)
        self.sha = __import__("hashlib").sha256(self.model).hexdigest()[:16]
        self.interp, _ = capture_fd2(lambda: runtime.Interpreter.from_bytes(
            self.model, arena_size=self.arena_size))
        _, text = capture_fd2(self.interp.print_allocations)
        self.arena_used = parse_print_allocations(text)["total_bytes"]
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self._halt = threading.Event()
        self.commands: list[str] = []

    def _send(self, line: str) -> None:
        os.write(self.fd, (line + "\r\n").encode())

    def _hello(self) -> None:
        self._send("harness-tflm 1")
        self._send(f"model_sha256 {self.sha}")
        self._send("ready")

    def _set_input(self) -> None:
        details = self.interp.get_input_details(0)
        dtype = details["dtype"]
        x = np.resize(self.window, int(np.prod(details["shape"]))).reshape(details["shape"])
        if dtype != np.float32:
            q = details["quantization_parameters"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / q["scales"][0]) + q["zero_points"][0], info.min, info.max)
        self.interp.set_input(x.astype(dtype), 0)

    def _outputs(self) -> list[float]:
        details = self.interp.get_output_details(0)
        y = np.asarray(self.interp.get_output(0)).astype(np.float32).reshape(-1)
        if details["dtype"] != np.float32:
            q = details["quantization_parameters"]
            y = (y - q["zero_points"][0]) * q["scales"][0]
        return [float(v) for v in y]

    def _run(self, runs: int, warmup: int) -> None:
        self._send(f"arena_size_bytes {self.arena_size}")
        self._send(f"arena_used_bytes {self.arena_used}")
        self._send("clock simulated")
        self._set_input()
        for _ in range(warmup):
            self.interp.invoke()
        for _ in range(runs):
            start = time.perf_counter_ns()
            self.interp.invoke()
            self._send(f"latency_us {(time.perf_counter_ns() - start) // 1000}")
        for i, value in enumerate(self._outputs()):
            self._send(f"output {i} {value:.7f}")
        self._send("done")

    def run(self) -> None:
        import select

        pending = b""
        while not self._halt.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                continue
            try:
                pending += os.read(self.fd, 1024)
            except OSError:
                return
            while b"\n" in pending:
                raw, pending = pending.split(b"\n", 1)
                command = raw.decode(errors="replace").strip()
                self.commands.append(command)
                if command == "hello":
                    self._hello()
                elif command.startswith("run"):
                    parts = command.split()
                    self._run(int(parts[1]), int(parts[2]))
                elif command:
                    self._send(f"error command {command}")

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        os.close(self.fd)


class PtyPair:
    """`socat` linking two pseudo-terminals: `board` (the simulator's end) and `host`."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("socat") is None:
            raise RuntimeError("socat is not installed (apt-get install socat)")
        self.board, self.host = str(folder / "board"), str(folder / "host")
        self.proc = subprocess.Popen(
            ["socat", f"pty,raw,echo=0,link={self.board}", f"pty,raw,echo=0,link={self.host}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not (os.path.exists(self.board) and os.path.exists(self.host)):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("socat did not create the pty pair")
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def simulate(sketch_dir: Path, folder: Path) -> tuple[PtyPair, BoardSimulator]:
    """Start a pty pair and a simulator on its board end; returns both (close/stop them)."""
    pair = PtyPair(folder)
    sim = BoardSimulator(sketch_dir, pair.board)
    sim.start()
    return pair, sim
