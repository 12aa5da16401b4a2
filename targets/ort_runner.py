#!/usr/bin/env python3
"""Device-side runner for an `.onnx` model with ONNX Runtime (`"runtime": "onnxruntime"`).

runner.py runs such a job the same way (it picks the backend from the job); this entry point always
uses ONNX Runtime. Same measurements as a TFLite job (warm-up, shuffled rounds over thread counts,
raw samples in µs, outputs, peak RSS), so the numbers mean the same thing. A missing onnxruntime is
an `onnxruntime_missing` error (not `runtime_missing`: the target's TFLite jobs still run). The
work is done by job.py.

    python3 ort_runner.py JOB.json
"""

import sys

from job import main

if __name__ == "__main__":
    sys.exit(main(sys.argv, backend_kind="onnxruntime"))
