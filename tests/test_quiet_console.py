"""A quiet console: the terminal shows progress, harness's own warnings and the tables; what
TensorFlow, the converter and the runtime print goes to the run's harness.log; `--verbose` shows
everything. Progress lines in logs tell the time."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from harness import logs
from harness.progress import PlainProgress, eta_text, remaining_seconds
from testutil import ROOT, run_cli

MAX_LINES = 25
# lines TensorFlow, its converter, the TFLite interpreter or Python warnings print during a build
LIBRARY_MARKERS = ("fully_quantize:", "Created TensorFlow Lite XNNPACK delegate",
                   "tf.lite.Interpreter is deprecated")
TOP, BOTTOM, SIDES = "┏┌╭", "└┗╰", "┃│┡├╇┼┣"


def table_lines(text: str) -> set[int]:
    """Indices of the lines that belong to Rich tables: from a top border to the bottom border,
    and the title line just above the top border."""
    lines = text.splitlines()
    inside: set[int] = set()
    start = None
    for i, line in enumerate(lines):
        first = line.lstrip()[:1]
        if start is None and first and first in TOP:
            start = i
            if i > 0 and lines[i - 1].strip() and lines[i - 1].lstrip()[:1] not in BOTTOM:
                inside.add(i - 1)  # the table's title
        if start is not None:
            inside.add(i)
            if first and first in BOTTOM:
                start = None
            elif first and first not in SIDES + TOP:
                raise AssertionError(f"line {i} inside a table is not a table line: {line!r}")
    return inside


def outside_tables(text: str) -> list[str]:
    skip = table_lines(text)
    return [line for i, line in enumerate(text.splitlines()) if i not in skip and line.strip()]


def test_table_lines_are_recognised() -> None:
    console = Console(file=io.StringIO(), width=60)
    from rich.table import Table

    table = Table(title="Latency")
    table.add_column("model")
    table.add_row("cnn")
    console.print("before")
    console.print(table)
    console.print("after")
    text = console.file.getvalue()
    assert outside_tables(text) == ["before", "after"]


# --------------------------------------------------------------------------- progress lines

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_progress_prints_starts_tenths_time_and_the_end() -> None:
    console = Console(file=io.StringIO(), width=200)
    clock = Clock()
    progress = PlainProgress(console, clock=clock, every=10, heartbeat=60)
    task = progress.add_task("measuring host", total=40, unit="jobs")
    for _ in range(3):                  # 3/40 is below a tenth: no line
        clock.now += 1
        progress.advance(task)
    clock.now = 4.0
    progress.advance(task)              # 4/40: the first tenth
    clock.now = 15.0
    progress.advance(task)              # 5/40, 11 s after the last line
    clock.now = 16.0
    progress.advance(task)              # 6/40, 1 s after: nothing
    clock.now = 80.0
    progress.tick()                     # a minute of silence: heartbeat
    clock.now = 81.0
    progress.update(task, completed=40)
    progress.advance(task)              # after the end: nothing more
    lines = console.file.getvalue().splitlines()
    assert lines == ["measuring host: 0/40 jobs",
                     "measuring host: 4/40 jobs, ETA 40 s",
                     "measuring host: 5/40 jobs, ETA 2 min",
                     "measuring host: 6/40 jobs, ETA 8 min",
                     "measuring host: 40/40 jobs, done in 1 min 21 s"]


def test_eta_text_and_remaining_time() -> None:
    assert remaining_seconds(10.0, 4, 40) == pytest.approx(90.0)
    assert remaining_seconds(10.0, 0, 40) is None and remaining_seconds(None, 1, 2) is None
    assert [eta_text(s) for s in (3, 42, 90, 3600 + 20 * 60, None)] == [
        "5 s", "45 s", "2 min", "1 h 20 min", ""]


# --------------------------------------------------------------------------- where output goes

def test_output_to_collects_descriptor_writes_and_child_processes(tmp_path: Path) -> None:
    log = tmp_path / "harness.log"
    log.write_text("earlier line\n")
    with logs.output_to(log):
        os.write(2, b"in-process stderr\n")  # what a C++ library in this process writes
        subprocess.run([sys.executable, "-c",
                        "import os; os.write(2, b'c++ stderr\\n'); os.write(1, b'c++ stdout\\n')"],
                       check=True)
    text = log.read_text()
    assert text.startswith("earlier line\n")
    assert {"in-process stderr", "c++ stderr", "c++ stdout"} <= set(text.splitlines())


KEEP_TERMINAL_SCRIPT = """
import os, sys
from pathlib import Path
from rich.console import Console
from harness import logs
console, err = Console(), Console(stderr=True)
with logs.keep_terminal(console, err) as kept:
    assert kept
    with logs.output_to(Path(sys.argv[1])):
        os.write(2, b"library stderr\\n")
        os.write(1, b"library stdout\\n")
        console.print("table line")
        err.print("progress line")
print("after the run")
"""


def test_consoles_keep_the_terminal_while_descriptors_go_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "harness.log"
    proc = subprocess.run([sys.executable, "-c", KEEP_TERMINAL_SCRIPT, str(log)],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    assert proc.stdout.splitlines() == ["table line", "after the run"]
    assert proc.stderr.splitlines() == ["progress line"]
    assert log.read_text().splitlines() == ["library stderr", "library stdout"]


def test_keep_terminal_leaves_a_replaced_stdout_alone(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    console = Console()
    with logs.keep_terminal(console) as kept:
        assert kept is False
    assert console.file is sys.stdout


def test_console_handler_shows_only_harness_warnings_unless_verbose() -> None:
    def shown(verbose: bool) -> str:
        console = Console(file=io.StringIO(), width=200)
        handler = logs.ConsoleHandler(console, verbose)
        for name, level, text in (("harness.artifacts", logging.WARNING, "w8_a16 did not convert"),
                                  ("harness", logging.INFO, "artifacts: 2 built"),
                                  ("py.warnings", logging.WARNING, "Interpreter is deprecated"),
                                  ("tensorflow", logging.ERROR, "tf says")):
            record = logging.LogRecord(name, level, __file__, 1, text, None, None)
            if handler.filter(record) and record.levelno >= handler.level:
                handler.emit(record)
        return console.file.getvalue()

    assert shown(False).splitlines() == ["warning: w8_a16 did not convert"]
    assert shown(True).splitlines() == ["WARNING harness.artifacts: w8_a16 did not convert",
                                        "INFO harness: artifacts: 2 built",
                                        "WARNING py.warnings: Interpreter is deprecated",
                                        "ERROR tensorflow: tf says"]


# --------------------------------------------------------------------------- a real run

@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`harness run suites/smoke.yaml --targets host` with an empty cache: trains, converts
    (the noisy part) and measures, as a new user's first run does."""
    tmp = tmp_path_factory.mktemp("quiet")
    cache = tmp / "cache"
    result = run_cli("run", "suites/smoke.yaml", "--targets", "host", "--out", str(tmp / "out"),
                     env={"HARNESS_CACHE": str(cache)})
    (run_dir,) = (tmp / "out" / "smoke").iterdir()
    return {"result": result, "run_dir": run_dir, "cache": cache, "tmp": tmp}


@pytest.mark.slow
def test_first_run_keeps_the_terminal_quiet(quiet_run: dict) -> None:
    result = quiet_run["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    outside = outside_tables(result.stdout) + outside_tables(result.stderr)
    print("\n".join(outside))
    assert len(outside) <= MAX_LINES, outside
    terminal = result.stdout + result.stderr
    assert not [m for m in LIBRARY_MARKERS if m in terminal]
    assert "Latency on host" in result.stdout                   # the tables are there
    # progress in a log: plain lines that count artifacts and jobs, not a frozen bar
    assert "building artifacts: 0/3 artifacts" in result.stderr
    assert "measuring host: 3/3 jobs, done in" in result.stderr
    # harness's own warning, once: the denylist variant has nothing to keep in float
    assert result.stderr.count("w8_a8_denylist did not convert") == 1
    assert f"report {quiet_run['run_dir'] / 'report.html'}" in result.stdout


@pytest.mark.slow
def test_library_output_lands_in_harness_log(quiet_run: dict) -> None:
    log = (quiet_run["run_dir"] / "harness.log").read_text()
    assert [m for m in LIBRARY_MARKERS if m in log], log[-3000:]
    assert "WARNING harness.artifacts: kettle_cnn w8_a8_denylist did not convert" in log
    assert "INFO harness: artifacts:" in log
    assert (quiet_run["run_dir"] / "report.html").is_file()


@pytest.mark.slow
def test_verbose_shows_everything(quiet_run: dict) -> None:
    """The trained model is reused (its cache copied), the conversions run again, in view."""
    cache = quiet_run["tmp"] / "cache-verbose"
    shutil.copytree(quiet_run["cache"], cache, ignore=shutil.ignore_patterns("tflite"))
    out = quiet_run["tmp"] / "out-verbose"
    result = run_cli("--verbose", "run", "suites/smoke.yaml", "--targets", "host", "--out",
                     str(out), env={"HARNESS_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    terminal = result.stdout + result.stderr
    assert [m for m in LIBRARY_MARKERS if m in terminal], terminal[-3000:]
    assert "INFO harness: artifacts:" in terminal                # info records too
