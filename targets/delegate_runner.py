#!/usr/bin/env python3
"""Device-side runner for a model that needs an external delegate (the Coral Edge TPU).

The job has a `delegate` entry:
    {"delegate": {"name": "edgetpu", "library": "libedgetpu.so.1", "options": {}}, "loop_rate": true}
runner.py runs such a job the same way (it picks the backend from the job); this entry point insists
on the delegate. A library or device that is missing is a `device_missing` error with the fix.
Latency is the `invoke()` time of the model; the Python loop rate (set input + invoke + read output,
as an application loop does) is reported separately as `loop_rate`. The work is done by job.py.

    python3 delegate_runner.py JOB.json
"""

import sys

from job import main

if __name__ == "__main__":
    sys.exit(main(sys.argv, backend_kind="delegate"))
