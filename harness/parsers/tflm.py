"""TensorFlow Lite Micro `print_allocations()` output → the arena figures.

The RecordingMicroAllocator report: `[RecordingMicroAllocator] Arena allocation total N bytes`
(and head / tail), then one line per allocation kind: `'<what>' used N bytes with alignment
overhead (requested M bytes for K <unit>)`.
"""

from __future__ import annotations

import re
from typing import Any

from harness.errors import UserError

ALLOCATION_RE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
RECORD_RE = re.compile(r"'(?P<what>[^']+)' used (?P<used>\d+) bytes with alignment overhead "
                       r"\(requested (?P<requested>\d+) bytes for (?P<count>\d+) (?P<unit>[^)]*)\)")


def parse_print_allocations(text: str) -> dict[str, Any]:
    """Parse `print_allocations()` output.

    Returns {"total_bytes", "head_bytes", "tail_bytes", "records": [{"what", "used_bytes",
    "requested_bytes", "count", "unit"}]}; UserError if there is no "Arena allocation total" line.
    """
    out: dict[str, Any] = {"total_bytes": None, "head_bytes": None, "tail_bytes": None,
                           "records": []}
    for line in text.splitlines():
        m = ALLOCATION_RE.search(line)
        if m:
            out[f"{m.group(1)}_bytes"] = int(m.group(2))
            continue
        m = RECORD_RE.search(line)
        if m:
            out["records"].append({"what": m.group("what"), "used_bytes": int(m.group("used")),
                                   "requested_bytes": int(m.group("requested")),
                                   "count": int(m.group("count")), "unit": m.group("unit").strip()})
    if out["total_bytes"] is None:
        raise UserError("no 'Arena allocation total N bytes' line in the print_allocations output",
                        hint="call print_allocations() after the interpreter was created and "
                             "capture file descriptor 2, not sys.stderr")
    return out
