"""Storage and build plumbing without TensorFlow: atomic writes under concurrent writers, the
converter process surviving a killed converter, and which conversion failures are refusals."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import pytest

from harness.artifacts.cache import write_atomic
from harness.artifacts.convert import (KILL_ENV, ConversionError, ConverterFailed,
                                       ConverterProcess, converting)
from harness.fileio import replace_dir, temp_dir_beside


def test_concurrent_writers_of_one_cache_entry_never_collide(tmp_path: Path) -> None:
    path = tmp_path / "tflite" / "key.tflite"
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for _ in range(50):
                write_atomic(path, bytes([n]) * 10_000)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    data = path.read_bytes()
    assert len(data) == 10_000 and len(set(data)) == 1        # one writer's whole file
    assert [p.name for p in path.parent.iterdir()] == ["key.tflite"]  # no temp file left


def test_a_directory_built_twice_keeps_the_first(tmp_path: Path) -> None:
    dest = tmp_path / "saved_model"
    for content in ("first", "second"):
        work = temp_dir_beside(dest)
        (work / "saved_model.pb").write_text(content)
        replace_dir(work, dest)
    assert (dest / "saved_model.pb").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["saved_model"]


def test_only_the_converters_own_errors_are_refusals() -> None:
    def raising(exc: BaseException) -> bytes:
        raise exc

    with pytest.raises(ConversionError, match="error: 'tfl.custom' op is not supported"):
        converting(lambda: raising(RuntimeError("loc(x): error: 'tfl.custom' op is not supported")))
    for transient in (OSError(28, "No space left on device"), MemoryError()):
        with pytest.raises(type(transient)):
            converting(lambda: raising(transient))
    again = pickle.loads(pickle.dumps(ConversionError("nothing to keep", kind="not_applicable")))
    assert (str(again), again.kind) == ("nothing to keep", "not_applicable")


def test_a_killed_converter_process_ends_its_step_only(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KILL_ENV, "w8_a8")       # the process kills itself on that conversion
    process = ConverterProcess()
    try:
        with pytest.raises(ConverterFailed, match="died during convert w8_a8 .killed by SIGKILL"):
            process.run("convert", tmp_path / "saved_model", "w8_a8", None)
        # the next step gets a new process (this one fails inside it, as data, not by dying)
        with pytest.raises(ConverterFailed, match="ValueError: unknown build step 'nothing'"):
            process.run("nothing", tmp_path / "saved_model", "w8_a8", None)
    finally:
        process.close()
