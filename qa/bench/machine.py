"""What the figures were measured on: CPU, memory, library versions, and how busy the machine was."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def load_average() -> float:
    """The 1-minute load average: above the core count, other work skewed the figures."""
    return round(os.getloadavg()[0], 2)


def machine_figures() -> dict[str, str | float | int | None]:
    return {
        "machine_cpu": _cpu_model(),
        "machine_cores": os.cpu_count() or 0,
        "machine_memory_gb": _memory_gb(),
        "machine_python": platform.python_version(),
        "machine_torch": _version("torch"),
        "machine_faiss": _version("faiss-cpu"),
        "machine_txtai": _version("txtai"),
    }
