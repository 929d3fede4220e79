"""Build and test cost: `python build.py` wall time and peak memory, and the promtool suite's
wall time (tests/test_alert_rules.py: every alert-test spec on both Prometheus lines)."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pdobs.core import paths

SUITE = Path("tests") / "test_alert_rules.py"


@dataclass
class BuildCost:
    runs: int
    wall_s: list[float] = field(default_factory=list)
    peak_rss_mib: list[float] = field(default_factory=list)
    files: int = 0  # files build.py wrote
    suite: str = str(SUITE)
    suite_wall_s: float | None = None
    suite_passed: int | None = None
    suite_failed: int | None = None
    suite_note: str = ""

    @property
    def wall_median_s(self) -> float:
        return statistics.median(self.wall_s)


def _run_measured(cmd: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """Wall time, peak RSS (MiB) of that one child, exit status and output."""
    began = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - began
    return wall, usage.ru_maxrss / 1024, proc.returncode, output


def measure_build(runs: int = 3) -> BuildCost:
    cost = BuildCost(runs)
    with tempfile.TemporaryDirectory(prefix="pdobs-bench-build-") as tmp:
        for i in range(runs):
            out = Path(tmp) / f"build-{i}"
            wall, rss, code, output = _run_measured([sys.executable, "build.py", "--out", str(out)], paths.ROOT)
            if code != 0:
                raise RuntimeError(f"build.py failed (exit {code}):\n{output[-3000:]}")
            cost.wall_s.append(wall)
            cost.peak_rss_mib.append(rss)
            cost.files = sum(1 for p in out.rglob("*") if p.is_file())
    return cost


def measure_suite(cost: BuildCost) -> None:
    if not (paths.ROOT / SUITE).is_file():
        cost.suite_note = f"{SUITE} not found"
        return
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(SUITE)]
    wall, _, code, output = _run_measured(cmd, paths.ROOT)
    cost.suite_wall_s = wall
    passed = re.search(r"(\d+) passed", output)
    failed = re.search(r"(\d+) failed", output)
    cost.suite_passed = int(passed.group(1)) if passed else 0
    cost.suite_failed = int(failed.group(1)) if failed else 0
    if code != 0:
        cost.suite_note = f"pytest exited {code}"


def run(build_runs: int = 3, suite: bool = True) -> BuildCost:
    cost = measure_build(build_runs)
    if suite:
        measure_suite(cost)
    else:
        cost.suite_note = "not run (--no-suite)"
    return cost
