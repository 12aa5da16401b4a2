"""Ctrl-C during `harness run`: the first stops the run cleanly, the second aborts at once.

The first SIGINT sets `cancel`: no new job starts, running commands are stopped by their
transports within a few seconds (their process groups on the devices killed), and the run is
finished from what was measured (results.csv, report.md, run.json), then exits 130. A second
SIGINT exits 130 immediately: the rows already appended stay in rows.jsonl, and every process the
run started on a device is stopped by its watchdog when the controller's pipes and connections
close (`harness.transport.groups`). Either way the run can be completed with
`harness run --resume <run_dir>`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from harness.errors import ExitCode
from harness.logs import terminal_stderr

EXIT_CODE = ExitCode.INTERRUPTED  # 128 + SIGINT, what a shell reports for Ctrl-C


def resume_command(run_dir: Path) -> str:
    """The command that completes an interrupted run."""
    return f"harness run --resume {run_dir}"


class RunInterrupt:
    """SIGINT handling for one `harness run` (install it from the main thread)."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.run_dir: Path | None = None
        self.signals = 0

    def started(self, run_dir: Path) -> None:
        """The run directory exists: an abort from now on can be resumed."""
        self.run_dir = run_dir

    @property
    def interrupted(self) -> bool:
        return self.cancel.is_set()

    @contextmanager
    def installed(self) -> Iterator["RunInterrupt"]:
        """SIGINT goes to this object while the block runs (only the main thread can take it;
        elsewhere the block runs without it)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)

    def _handle(self, signum: int, frame: Any) -> None:
        self.signals += 1
        if self.signals == 1:
            self.cancel.set()
            _say("\ninterrupted: no new job starts, running jobs are being stopped; what was "
                 "measured is kept and reported (Ctrl-C again to abort at once)\n")
            return
        resume = (f"; complete it with: {resume_command(self.run_dir)}\n" if self.run_dir
                  else "\n")
        _say(f"\naborted{resume}")
        if "harness.lab" in sys.modules:  # labgrid keeps a place whose holder died: free it now
            sys.modules["harness.lab"].release_held()
        os._exit(EXIT_CODE)


def _say(text: str) -> None:
    """Write to stderr from a signal handler (no locks, unlike print or logging)."""
    try:
        os.write(terminal_stderr(), text.encode())
    except OSError:
        pass
