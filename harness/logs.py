"""Where output goes: the terminal gets harness's own progress, warnings and tables; what the
libraries print goes to the run's harness.log. `--verbose` leaves everything on the terminal.

Libraries write in three ways, each handled here:
- Python logging (TensorFlow's and absl's Python loggers, paramiko, ...) and Python warnings
  (`logging.captureWarnings`): the terminal handler shows only `harness.*` records (warnings and
  errors), the run's file handler (`harness.api`) takes every record;
- C++ code (the TFLite converter's `fully_quantize: ...` lines, `Created TensorFlow Lite XNNPACK
  delegate`, absl/oneDNN banners) and child processes write straight to file descriptors 1 and 2:
  `output_to(path)` points those descriptors at harness.log while a run lasts;
- the Rich consoles of the CLI would follow descriptors 1 and 2 there too: `keep_terminal`
  gives them private copies of the terminal's descriptors first (and points Python's
  faulthandler there, so a crash inside a library still shows on the terminal).
Outside a run (no harness.log), library warnings are not shown unless `--verbose`.

    setup(err_console, verbose)                   # once, when the CLI starts
    with keep_terminal(console, err_console) as quiet:
        api.run(..., capture_output=quiet)        # the run wraps its work in output_to(harness.log)
"""

from __future__ import annotations

import faulthandler
import io
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.text import Text

OWN_LOGGER = "harness"
LEVEL_STYLES = {logging.WARNING: "yellow", logging.ERROR: "red", logging.CRITICAL: "bold red"}


class ConsoleHandler(logging.Handler):
    """Log records on a Rich console, so they print above live progress bars.

    Quiet (the default): harness's own warnings and errors, as `warning: <message>`. Verbose:
    every record from DEBUG up, any logger, as `DEBUG <logger>: <message>`.
    """

    def __init__(self, console: Console, verbose: bool = False) -> None:
        super().__init__(logging.DEBUG if verbose else logging.WARNING)
        self.console = console
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == OWN_LOGGER or record.name.startswith(OWN_LOGGER + ".")
        return (self.verbose or own) and super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and self.verbose:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            prefix = (f"{record.levelname} {record.name}: " if self.verbose
                      else f"{record.levelname.lower()}: ")
            style = LEVEL_STYLES.get(record.levelno, "dim")
            self.console.print(Text(prefix + message, style=style), soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def setup(console: Console, verbose: bool = False) -> None:
    """The terminal side of logging: one `ConsoleHandler` on the root logger (replacing an earlier
    one), harness's level, and Python warnings routed into logging when quiet."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, ConsoleHandler)]:
        root.removeHandler(handler)
    root.addHandler(ConsoleHandler(console, verbose))
    logging.getLogger(OWN_LOGGER).setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(not verbose)


def _standard_fds() -> bool:
    """Whether sys.stdout and sys.stderr are descriptors 1 and 2 (not a test runner's buffers)."""
    try:
        return sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return False


_terminal_stderr: int | None = None  # the terminal's stderr while descriptor 2 goes to a log


def terminal_stderr() -> int:
    """The descriptor that reaches the user's terminal now: a kept copy while the run's library
    output is redirected (`keep_terminal`), else 2. Safe to use from a signal handler."""
    return _terminal_stderr if _terminal_stderr is not None else 2


@contextmanager
def keep_terminal(*consoles: Console) -> Iterator[bool]:
    """Point Rich consoles that print to stdout/stderr at private copies of descriptors 1 and 2.

    Yields True when it did, so descriptors 1 and 2 can then be redirected (`output_to`) while the
    consoles keep printing to the terminal; False (and changes nothing) when stdout or stderr is
    not a plain descriptor, e.g. under a test runner that replaced sys.stdout.
    """
    if not _standard_fds():
        yield False
        return
    sys.stdout.flush()
    sys.stderr.flush()
    streams = {fd: os.fdopen(os.dup(fd), "w", buffering=1, encoding=stream.encoding,
                             errors="replace")
               for fd, stream in ((1, sys.stdout), (2, sys.stderr))}
    for console in consoles:
        console.file = streams[2 if console.stderr else 1]
    global _terminal_stderr
    _terminal_stderr = streams[2].fileno()
    was_enabled = faulthandler.is_enabled()
    faulthandler.enable(file=streams[2])  # a crash in a library still shows on the terminal
    try:
        yield True
    finally:
        _terminal_stderr = None
        faulthandler.disable()
        if was_enabled:
            faulthandler.enable()
        for console in consoles:
            console.file = None  # back to following sys.stdout / sys.stderr
        for stream in streams.values():
            stream.close()


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send everything written to descriptors 1 and 2 to `path` (appended), then restore them.

    What C++ libraries and child processes print lands in the file as it is written (nothing is
    lost if the run dies), interleaved in time with the log records a file handler appends to the
    same file. Process-wide: enter it once, from the main thread, around the whole run.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)
