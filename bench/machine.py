"""The machine and tool versions a benchmark ran on, printed beside its figures."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from pdobs.servers import tools

_TOOLS = ("prometheus", "promtool", "promtool-2")


def _first_line(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)
    except OSError as exc:
        return f"unavailable ({exc})"
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return 0.0


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15-minute load: other work on the machine skews wall times, so it is printed."""
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def describe() -> dict[str, Any]:
    versions = {}
    for name in _TOOLS:
        try:
            versions[name] = _first_line([str(tools.tool_path(name)), "--version"])
        except tools.ToolMissingError as exc:
            versions[name] = str(exc)
    return {
        "nproc": os.cpu_count() or 0,
        "memory_gib": _memory_gib(),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "tools": versions,
        "load_at_start": load_average(),
    }
