"""Progress that tells the time: Rich bars in a terminal, periodic plain lines in logs (CI).

The API drives a progress object through the part of `rich.progress.Progress` it uses:
`add_task(description, total=..., unit=...)`, `update(task, description=..., advance=...)` and
`advance(task)`. Tasks count artifacts (the build) or jobs (one task per target). In a terminal
each task is a bar with `done/total unit`, elapsed time and ETA; outside one (a CI log, a pipe) a
frozen bar says nothing, so `PlainProgress` prints a line such as

    measuring host: 12/40 jobs, ETA 1 min

when a task starts, each time it passes another tenth of its total, when it moved on and the last
line is `every` seconds old, at least every `heartbeat` seconds while it runs, and when it is done.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn,
                           Task, TextColumn, TimeElapsedColumn)
from rich.text import Text

EVERY_SECONDS = 10.0
EVERY_FRACTION = 0.10
HEARTBEAT_SECONDS = 60.0


def eta_text(seconds: float | None) -> str:
    """A rough remaining time: '20 s', '3 min', '1 h 20 min'; '' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    if seconds < 60:
        return f"{max(5, math.ceil(seconds / 5) * 5)} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def duration_text(seconds: float) -> str:
    """An elapsed time: '7 s', '3 min 5 s', '1 h 2 min'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class UnitColumn(ProgressColumn):
    """The task's `unit` field (artifacts, jobs), empty when it has none."""

    def render(self, task: Task) -> Text:
        return Text(str(task.fields.get("unit", "")), style="progress.download")


def remaining_seconds(elapsed: float | None, completed: float, total: float | None) -> float | None:
    """The time left at the average pace so far (None before the first step is done).

    The average over the whole task, not a recent-speed window: one job can take minutes, and a
    window shorter than a job would never hold two steps to estimate from.
    """
    if not total or completed <= 0 or elapsed is None:
        return None
    return elapsed / completed * max(total - completed, 0)


class EtaColumn(ProgressColumn):
    """'ETA 3 min' at the average pace so far; nothing before the first step or once finished."""

    def render(self, task: Task) -> Text:
        text = "" if task.finished else eta_text(
            remaining_seconds(task.elapsed, task.completed, task.total))
        return Text(f"ETA {text}" if text else "", style="progress.remaining")


def bar_progress(console: Console, *, redirect: bool = False) -> Progress:
    """Rich bars on `console`. `redirect`: route Python-level prints through the console (above
    the bars); off when library output is being sent to the log instead (`harness.logs`)."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), UnitColumn(), TimeElapsedColumn(), EtaColumn(),
                    console=console, transient=False, redirect_stdout=redirect,
                    redirect_stderr=redirect)


@dataclass
class _Task:
    description: str
    total: float | None
    unit: str
    started: float
    completed: float = 0.0
    last_line: float = 0.0
    last_completed: float = -1.0
    last_tenth: int = -1
    done: bool = False
    fields: dict[str, Any] = field(default_factory=dict)


class PlainProgress:
    """The Progress subset the API uses, printed as occasional plain lines (module doc)."""

    def __init__(self, console: Console, *, every: float = EVERY_SECONDS,
                 fraction: float = EVERY_FRACTION, heartbeat: float = HEARTBEAT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.every = every
        self.fraction = fraction
        self.heartbeat = heartbeat
        self.clock = clock
        self.tasks: dict[int, _Task] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the Progress interface ----------------------------------------------------------------
    def __enter__(self) -> "PlainProgress":
        self._thread = threading.Thread(target=self._beat, name="plain-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> int:
        with self._lock:
            task_id = len(self.tasks)
            task = _Task(description, total, str(fields.pop("unit", "")), self.clock(),
                         fields=fields)
            self.tasks[task_id] = task
            self._line(task)
            return task_id

    def update(self, task_id: int, *, description: str | None = None, total: float | None = None,
               completed: float | None = None, advance: float | None = None,
               **fields: Any) -> None:
        with self._lock:
            task = self.tasks[task_id]
            if description is not None:
                task.description = description
            if total is not None:
                task.total = total
            if completed is not None:
                task.completed = completed
            if advance is not None:
                task.completed += advance
            task.fields.update(fields)
            self._maybe_line(task)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    # -- when to print -------------------------------------------------------------------------
    def tick(self) -> None:
        """Print the heartbeat lines that are due (called every second by a thread)."""
        with self._lock:
            now = self.clock()
            for task in self.tasks.values():
                if not task.done and now - task.last_line >= self.heartbeat:
                    self._line(task)

    def _beat(self) -> None:
        while not self._stop.wait(1.0):
            self.tick()

    def _maybe_line(self, task: _Task) -> None:
        if task.done:
            return
        finished = task.total is not None and task.completed >= task.total
        tenth = self._tenth(task)
        moved = task.completed != task.last_completed
        if finished or tenth > task.last_tenth or \
                (moved and self.clock() - task.last_line >= self.every):
            self._line(task)

    def _tenth(self, task: _Task) -> int:
        if not task.total:
            return -1
        return math.floor(task.completed / task.total / self.fraction + 1e-9)

    def _line(self, task: _Task) -> None:
        now = self.clock()
        task.last_line, task.last_completed, task.last_tenth = now, task.completed, \
            self._tenth(task)
        count = f"{task.completed:g}" + (f"/{task.total:g}" if task.total is not None else "")
        text = f"{task.description}: {count} {task.unit}".rstrip()
        if task.total is not None and task.completed >= task.total:
            task.done = True
            text += f", done in {duration_text(now - task.started)}"
        else:
            eta = eta_text(remaining_seconds(now - task.started, task.completed, task.total))
            text += f", ETA {eta}" if eta else ""
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def make_progress(console: Console, *, redirect: bool = False) -> Progress | PlainProgress:
    """Bars when `console` is a terminal, plain lines otherwise."""
    return bar_progress(console, redirect=redirect) if console.is_terminal else \
        PlainProgress(console)
