"""Device-side: what a number depends on (device, CPU, OS, Python, governor, temperature).

Standard library only (numpy's version when numpy imports).
"""

from __future__ import annotations

import os
import platform
import socket
from typing import Any, Optional


def read_text(path: str) -> Optional[str]:
    """A small system file's stripped text, or None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (x86 'model name', Arm 'Model'/'Hardware'), else platform."""
    info = read_text("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in info.splitlines():
            if line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """hostname, arch, cpu_model, cores, governor, temperature_c, os, python, numpy."""
    temp = read_text("/sys/class/thermal/thermal_zone0/temp")
    try:
        import numpy
        numpy_version = numpy.__version__
    except ImportError:
        numpy_version = None
    return {
        "hostname": socket.gethostname(),
        "arch": platform.machine(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "governor": read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "temperature_c": round(int(temp) / 1000, 1) if temp and temp.lstrip("-").isdigit() else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy_version,
    }
