"""A scenario backfilled into a real Prometheus with every core busy, then served with its
recording rules backfilled too.

`simulator.render_openmetrics.backfill` runs one promtool at a time beside the generator; at
fleet scale promtool's parsing is the bottleneck (about four times the generator's CPU), so here
the OpenMetrics text is cut into one-hour chunks and up to `jobs` promtools load them at once.
The samples are the simulator's own (`iter_chunks` / `OpenMetricsWriter.write`), only the file
boundaries differ. Serving then follows `simulator.serve.serve_scenario`: Prometheus 3.5 on the
TSDB, recording rules backfilled one layer of groups at a time, restarting after each, and
the overlapping blocks that leaves merged by Prometheus' own compaction before anything is timed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from pdobs.core.promql import format_duration
from pdobs.servers.prometheus import PrometheusServer
from pdobs.servers.tools import tool_path
from simulator.render_openmetrics import Backfill, backfill_rules, default_end_time, iter_chunks, rule_layers
from simulator.scenarios import Scenario
from simulator.serve import ScenarioPrometheus

Job = tuple[subprocess.Popen[str], Path, list[str]]


def _finish(job: Job) -> None:
    proc, path, cmd = job
    out, err = proc.communicate()
    path.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"promtool backfill failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                           f"{out[-3000:]}{err[-3000:]}")


def parallel_backfill(scenario: Scenario, tsdb: Path, work: Path, *, interval_s: float = 30.0,
                      jobs: int = 2, chunk_s: float = 3600.0) -> Backfill:
    promtool = tool_path("promtool")
    tsdb.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    end = default_end_time(interval_s)
    start = end - (scenario.n_steps(interval_s) - 1) * interval_s
    result = Backfill(scenario, tsdb, interval_s, start, end)
    began = time.monotonic()
    running: deque[Job] = deque()
    try:
        for index, (_, _, writer, chunk) in enumerate(
                iter_chunks(scenario, interval_s=interval_s, start_time=start, chunk_s=chunk_s)):
            path = work / f"chunk-{index:04d}.om"
            with path.open("w", buffering=1 << 20) as fh:
                result.samples += writer.write(chunk, fh)
            del chunk
            while len(running) >= jobs:
                _finish(running.popleft())
            cmd = [str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(path), str(tsdb)]
            running.append((subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
                            path, cmd))
            result.files += 1
        while running:
            _finish(running.popleft())
    finally:
        for proc, path, _ in running:
            proc.kill()
            proc.communicate()
            path.unlink(missing_ok=True)
    result.blocks = sorted(p for p in tsdb.iterdir() if p.is_dir())
    result.seconds = time.monotonic() - began
    return result


def overlapping_blocks(tsdb: Path) -> int:
    """How many blocks overlap an earlier one in time."""
    spans = []
    for block in tsdb.iterdir():
        meta = block / "meta.json"
        if meta.is_file():
            data = json.loads(meta.read_text())
            spans.append((data["minTime"], data["maxTime"]))
    spans.sort()
    overlaps, reach = 0, None
    for lo, hi in spans:
        if reach is not None and lo < reach:
            overlaps += 1
        reach = hi if reach is None else max(reach, hi)
    return overlaps


def wait_for_compaction(tsdb: Path, timeout_s: float = 300.0) -> float:
    """`create-blocks-from rules` writes one block per rule and 2-hour window (hundreds), all
    overlapping the raw blocks. Prometheus merges them on its first compaction, a minute after it
    starts; queries are timed after that, on the few blocks a running server would have."""
    began = time.monotonic()
    while overlapping_blocks(tsdb):
        if time.monotonic() - began > timeout_s:
            raise RuntimeError(f"{tsdb}: overlapping blocks still there after {timeout_s:.0f}s")
        time.sleep(2)
    return time.monotonic() - began


def serve(scenario: Scenario, work: Path, rule_files: Sequence[Path], *, interval_s: float = 30.0,
          evaluation_interval_s: float = 30.0, jobs: int = 2,
          compact: bool = True) -> tuple[ScenarioPrometheus, float, float]:
    """The scenario on a started Prometheus with its recording rules backfilled; also returns the
    seconds the rule backfill took and the seconds spent waiting for compaction."""
    tsdb = work / "tsdb"
    loaded = parallel_backfill(scenario, tsdb, work / "openmetrics", interval_s=interval_s, jobs=jobs)
    # No rule files loaded: live evaluation would only add load while the queries are timed.
    server = PrometheusServer(storage_dir=tsdb, evaluation_interval=format_duration(evaluation_interval_s),
                              workdir=work / "prometheus")
    began = time.monotonic()
    server.start()
    try:
        for layer in rule_layers(rule_files, work / "rule-layers"):
            backfill_rules(server.url, layer, tsdb, start=loaded.start_time, end=loaded.end_time,
                           eval_interval_s=evaluation_interval_s, workdir=work / "rule-blocks")
            shutil.rmtree(work / "rule-blocks", ignore_errors=True)
            server.restart()
        rules_s = time.monotonic() - began
        compact_s = wait_for_compaction(tsdb) if compact else 0.0
    except BaseException:
        server.stop()
        raise
    return ScenarioPrometheus(scenario, loaded, server), rules_s, compact_s
