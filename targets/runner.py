#!/usr/bin/env python3
"""Device-side runner: read one job JSON, measure one model, write one result JSON.

Runs on every target (the local host in a fresh process, remote devices over SSH), so a number means
the same thing everywhere. The backend follows the job: `runtime: onnxruntime` → ONNX Runtime, a
`delegate` entry → TFLite with that external delegate, else a TFLite runtime. The work is done by
job.py (shipped beside this file). Standard library + numpy + a runtime only.

    python3 runner.py JOB.json
"""

import sys

from job import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
