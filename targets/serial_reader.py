#!/usr/bin/env python3
"""Device-side (the machine a microcontroller is plugged into): talk to the harness sketch over serial.

    python3 serial_reader.py --port /dev/ttyACM0 --runs 50 --warmup 5 --out results/x.json

Sends "hello" until the sketch answers "ready" (opening the port resets many boards), then
"run <runs> <warmup>", and collects every line until "done". Writes {"status", "error", "lines"}:
the lines are the sketch's protocol (see targets/arduino/harness_tflm.ino.in); the controller
parses them. Standard library + pyserial only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

BAUD = 115200


class SerialError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _open(port: str, baud: int) -> Any:
    try:
        import serial
    except ImportError as exc:
        raise SerialError("runtime_missing", f"pyserial is not installed for {sys.executable}; "
                          f"fix: {sys.executable} -m pip install pyserial") from exc
    if not os.path.exists(port):
        raise SerialError("device_missing", f"serial port {port} does not exist: plug the board "
                          "in, or set `serial_port:` in inventory.yaml (ls /dev/ttyACM* /dev/ttyUSB*)")
    try:
        return serial.Serial(port, baud, timeout=0.2)
    except (serial.SerialException, OSError) as exc:
        raise SerialError("device_missing", f"cannot open {port}: {exc} (is another program "
                          "using it? is the user in the dialout group?)") from exc


def _readline(conn: Any, pending: bytearray) -> str | None:
    """One complete line (without CR/LF) or None if nothing complete arrived yet."""
    if b"\n" not in pending:
        chunk = conn.read(conn.in_waiting or 1)
        if chunk:
            pending.extend(chunk)
    if b"\n" not in pending:
        return None
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return line.decode("utf-8", errors="replace").strip("\r ")


def read_session(port: str, runs: int, warmup: int, baud: int = BAUD, hello_timeout: float = 15.0,
                 run_timeout: float = 120.0, conn: Any = None) -> list[str]:
    """The protocol lines of one hello + run exchange."""
    own = conn is None
    conn = conn or _open(port, baud)
    lines: list[str] = []
    pending = bytearray()
    try:
        deadline = time.monotonic() + hello_timeout
        next_hello = 0.0
        while True:
            now = time.monotonic()
            if now > deadline:
                raise SerialError("timeout", f"no 'ready' from the board on {port} within "
                                  f"{hello_timeout:.0f} s (is the harness sketch uploaded? baud "
                                  f"{baud}?); received: {lines[-3:]}")
            if now >= next_hello:
                conn.write(b"hello\n")
                conn.flush()
                next_hello = now + 1.0
            line = _readline(conn, pending)
            if line is None:
                continue
            lines.append(line)
            if line == "ready":
                break
        conn.write(f"run {int(runs)} {int(warmup)}\n".encode())
        conn.flush()
        deadline = time.monotonic() + run_timeout
        while True:
            if time.monotonic() > deadline:
                raise SerialError("timeout", f"the board on {port} did not finish {runs} runs "
                                  f"within {run_timeout:.0f} s")
            line = _readline(conn, pending)
            if line is None:
                continue
            lines.append(line)
            if line == "done":
                return lines
    finally:
        if own:
            conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", required=True)
    parser.add_argument("--baud", type=int, default=BAUD)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv[1:])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        lines = read_session(args.port, args.runs, args.warmup, args.baud,
                             run_timeout=args.timeout)
        doc = {"status": "ok", "error": None, "lines": lines}
    except SerialError as exc:
        doc = {"status": "error", "error": {"kind": exc.kind, "message": str(exc)}, "lines": []}
    tmp = out.with_suffix(".part")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, out)
    return 0 if doc["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
