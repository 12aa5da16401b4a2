"""`arduino-cli compile` output → records (method "arduino_cli") and what a failed build says.

* `parse_size_report`: the size lines arduino-cli's builder prints after linking (its sizer:
  "Sketch uses N bytes (P%) of program storage space. Maximum is M bytes." and "Global variables
  use N bytes (P%) of dynamic memory, leaving R bytes for local variables. Maximum is M bytes.",
  or "Global variables use N bytes of dynamic memory." for a board without a data maximum) →
  measurement "memory": `program_bytes`, `program_max_bytes`, `program_used_pct`, `data_bytes`,
  `data_max_bytes`, `data_used_pct`, `data_free_bytes`; "Low memory available, stability problems
  may occur." makes the data records invalid, with that warning as hint.
* `build_failure`: why a build failed, from the compiler, linker and builder lines: operators the
  TFLM library's resolver lacks (g++: "has no member named 'AddGelu'"), linker regions that
  overflow ("region `RAM' overflowed by N bytes", "section `.bss' will not fit in region `RAM'"),
  a section over the board's maximum ("data section exceeds available space in board"), a
  header no installed library provides ("fatal error: TensorFlowLite.h: No such file or
  directory"), a board platform that is not installed.
* `parse_version`: "arduino-cli  Version: 1.4.0 Commit: ..." → "1.4.0".
"""

from __future__ import annotations

import re
from typing import Any

from harness.parsers.records import ToolRecords, record

METHOD = "arduino_cli"
PROGRAM_RE = re.compile(r"Sketch uses (\d+) bytes \((\d+)%\) of program storage space\. "
                        r"Maximum is (\d+) bytes\.")
DATA_FULL_RE = re.compile(r"Global variables use (\d+) bytes \((\d+)%\) of dynamic memory, "
                          r"leaving (-?\d+) bytes for local variables\. Maximum is (\d+) bytes\.")
DATA_RE = re.compile(r"Global variables use (\d+) bytes of dynamic memory\.")
LOW_MEMORY = "Low memory available, stability problems may occur."
# GCC and ld quote with '…' or `…', or with ‘…’ in a UTF-8 locale
MISSING_METHOD_RE = re.compile(r"has no member named ['‘`](Add\w+)['’]")
OVERFLOW_RE = re.compile(r"region ['‘`](\w+)['’] overflowed by (\d+) bytes")
NOT_FIT_RE = re.compile(r"section ['‘`]([\w.]+)['’] will not fit in region ['‘`](\w+)['’]")
SECTION_RE = re.compile(r"(text|data) section exceeds available space in board")
MISSING_HEADER_RE = re.compile(r"fatal error: ([\w./-]+\.h): No such file or directory")
PLATFORM_RE = re.compile(r"[Pp]latform '([\w:.-]+)' (?:is )?not (?:found|installed)")
VERSION_RE = re.compile(r"Version:\s*(\d+\.\d+\.\d+\S*)")


def parse_size_report(text: str) -> list[dict]:
    """Records from the builder's size lines (none when it printed none)."""
    records: list[dict] = []
    memory = dict(measurement="memory", method=METHOD, n=1)
    m = PROGRAM_RE.search(text)
    if m:
        used, pct, maximum = (int(g) for g in m.groups())
        records += [record(**memory, metric="program_bytes", value=used, unit="B"),
                    record(**memory, metric="program_max_bytes", value=maximum, unit="B"),
                    record(**memory, metric="program_used_pct", value=pct, unit="%",
                           valid=False if used > maximum else None)]
    m = DATA_FULL_RE.search(text)
    data: list[dict] = []
    if m:
        used, pct, free, maximum = (int(g) for g in m.groups())
        data = [record(**memory, metric="data_bytes", value=used, unit="B"),
                record(**memory, metric="data_max_bytes", value=maximum, unit="B"),
                record(**memory, metric="data_used_pct", value=pct, unit="%"),
                record(**memory, metric="data_free_bytes", value=free, unit="B",
                       message="left for the stack and the heap (local variables)")]
    elif (m := DATA_RE.search(text)):
        data = [record(**memory, metric="data_bytes", value=int(m.group(1)), unit="B")]
    if LOW_MEMORY in text:
        for entry in data:
            entry.update(valid=False, hint=LOW_MEMORY)
    return records + data


def build_failure(text: str) -> dict[str, Any]:
    """What a failed `arduino-cli compile` says: {"missing_methods": [...], "overflows":
    {region: bytes}, "sections": [...], "missing_headers": [...], "platform": str | None}."""
    overflows: dict[str, int | None] = {region: int(n) for region, n in OVERFLOW_RE.findall(text)}
    for _section, region in NOT_FIT_RE.findall(text):
        overflows.setdefault(region, None)
    platform = PLATFORM_RE.search(text)
    return {"missing_methods": sorted(set(MISSING_METHOD_RE.findall(text))),
            "overflows": overflows,
            "sections": sorted(set(SECTION_RE.findall(text))),
            "missing_headers": sorted(set(MISSING_HEADER_RE.findall(text))),
            "platform": platform.group(1) if platform else None}


def parse_version(text: str) -> str | None:
    """arduino-cli's version from `arduino-cli version`, or None."""
    m = VERSION_RE.search(text)
    return m.group(1) if m else None


def parse(text: str) -> ToolRecords:
    """The size report of an `arduino-cli compile` console output."""
    return ToolRecords("size_report", parse_size_report(text))
