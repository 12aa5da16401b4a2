"""Parsers: what a tool printed → records. Pure text in, plain data out (no I/O, no rows).

One module per tool: `benchmark_model` (TFLite op profile and console), `edgetpu_compiler`,
`trtexec`, `tflm` (`print_allocations()`). `IMPORTERS` names the parser `harness import TOOL`
uses for each tool's files; device kinds and `harness.results.profile_rows` import the modules.
"""

from __future__ import annotations

from typing import Any, Callable

from harness.parsers import benchmark_model, edgetpu_compiler, trtexec

IMPORTERS: dict[str, Callable[[str], Any]] = {
    "benchmark_model": benchmark_model.parse,
    "edgetpu_compiler": edgetpu_compiler.parse,
    "trtexec": trtexec.parse,
}
