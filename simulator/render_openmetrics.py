"""Rendering 2: timestamped OpenMetrics, backfilled into a real Prometheus TSDB.

The text is streamed to a file object one time window ("chunk") at a time, never held whole in
memory: inside a chunk the values are kept per series in ``array('d')`` (so 128 pods x 2 h at
30 s is ~100 MB), then written family by family as OpenMetrics requires (one ``# TYPE`` per
family, each metric's points in time order, histogram points complete, ``# EOF`` at the end).

:func:`backfill` writes one file per 2-hour chunk aligned to Prometheus' block boundaries and
hands each to ``promtool tsdb create-blocks-from openmetrics`` while it generates the next one
(two cores: Python and promtool in parallel), deleting each file once loaded.

Differences from a live Prometheus that backfilling cannot avoid: OpenMetrics cannot express a
staleness marker, so a series that disappears (a deleted pod, a target whose scrape fails) stays
visible to instant queries for the 5-minute lookback instead of vanishing at once. Queries
within 5 minutes after such an event differ from the promtool rendering, which writes ``stale``.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from simulator.model import Frame, Simulation
from simulator.scenarios import Scenario

BLOCK_S = 7200  # Prometheus' 2 h block range: chunks are aligned to it
_NAN = float("nan")


def default_end_time(interval_s: float = 30.0, margin_s: float = 180.0) -> float:
    """A scenario end a few minutes in the past, on the interval grid: close enough to now for
    retention and the UI, far enough that a server started on it has nothing in its head."""
    return math.floor((time.time() - margin_s) / interval_s) * interval_s


def start_time_for(scenario: Scenario, interval_s: float, end_time: float) -> float:
    """Timestamp of the scenario's minute 0 when its last sample falls at ``end_time``."""
    return end_time - (scenario.n_steps(interval_s) - 1) * interval_s


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _format_ts(t: float) -> str:
    return str(int(t)) if t == int(t) else repr(t)


class _Chunk:
    """Values of every series for a run of consecutive steps."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.values: dict[int, array] = {}
        self.steps: list[int] = []
        self.times: list[str] = []
        # Per (target, layout): the arrays in layout order, so recording a frame is a zip.
        self._rows: dict[tuple[int, int], list[array]] = {}

    def _array(self, sid: int) -> array:
        arr = self.values.get(sid)
        if arr is None:
            arr = self.values[sid] = array("d", [_NAN]) * self.length
        return arr

    def record(self, frame: Frame, pos: int) -> None:
        if frame.missed:
            return
        for entry in frame.entries:
            t = entry.target
            self._array(t.up_sid)[pos] = entry.up
            if not entry.up or t.layout is None:
                continue
            key = (t.tid, id(t.layout))
            rows = self._rows.get(key)
            if rows is None:
                rows = self._rows[key] = [self._array(sid) for sid in t.layout.sids]
            for arr, v in zip(rows, t.values, strict=True):
                arr[pos] = v


class OpenMetricsWriter:
    """Streams a :class:`Simulation` as OpenMetrics documents, one per chunk of steps."""

    def __init__(self, sim: Simulation, start_time: float) -> None:
        self.sim = sim
        self.start_time = start_time
        self._prefix: dict[int, str] = {}
        self.samples = 0

    def _prefix_of(self, sid: int) -> str:
        p = self._prefix.get(sid)
        if p is None:
            info = self.sim.registry.series[sid]
            target = self.sim.targets_by_tid[info.target]
            labels = ",".join(x for x in (target.label_str, info.metric_labels) if x)
            p = self._prefix[sid] = f"{info.name}{{{labels}}} "
        return p

    def collect(self, n_steps: int) -> _Chunk:
        chunk = _Chunk(n_steps)
        for pos in range(n_steps):
            frame = self.sim.advance()
            chunk.record(frame, pos)
            chunk.steps.append(frame.step)
            chunk.times.append(_format_ts(self.start_time + frame.step * self.sim.step_s))
        return chunk

    def write(self, chunk: _Chunk, out: TextIO) -> int:
        """Write one complete OpenMetrics document for ``chunk``; returns samples written."""
        reg = self.sim.registry
        values = chunk.values
        times = chunk.times
        written = 0
        for fam_name, mids in reg.family_metrics.items():
            metrics = [reg.metrics[m] for m in mids]
            metrics = [m for m in metrics if any(s in values for s in m.sids)]
            if not metrics:
                continue
            fam = reg.families[fam_name]
            out.write(f"# HELP {fam_name} {_escape_help(fam.help)}\n# TYPE {fam_name} {fam.kind}\n")
            for m in metrics:
                rows = [(self._prefix_of(s), values.get(s)) for s in m.sids]
                lines: list[str] = []
                for pos, ts in enumerate(times):
                    for prefix, arr in rows:
                        if arr is None:
                            continue
                        v = arr[pos]
                        if v == v:  # not NaN: the series has a sample at this step
                            lines.append(f"{prefix}{v!r} {ts}\n")
                written += len(lines)
                out.write("".join(lines))
        out.write("# EOF\n")
        self.samples += written
        return written


def write_openmetrics(
    scenario: Scenario, out: TextIO, *, interval_s: float = 30.0, start_time: float = 0.0
) -> int:
    """The whole scenario as one OpenMetrics document (fine for test-sized scenarios; use
    :func:`iter_chunks` / :func:`backfill` for big ones). Returns the number of samples."""
    writer = OpenMetricsWriter(scenario.simulation(interval_s), start_time)
    return writer.write(writer.collect(scenario.n_steps(interval_s)), out)


def iter_chunks(
    scenario: Scenario,
    *,
    interval_s: float = 30.0,
    start_time: float,
    chunk_s: float = BLOCK_S,
) -> Iterator[tuple[float, float, OpenMetricsWriter, _Chunk]]:
    """Yield ``(chunk_start, chunk_end, writer, chunk)`` for windows aligned to ``chunk_s``;
    ``writer.write(chunk, fileobj)`` renders each as its own OpenMetrics document."""
    writer = OpenMetricsWriter(scenario.simulation(interval_s), start_time)
    total = scenario.n_steps(interval_s)
    step = 0
    while step < total:
        t = start_time + step * interval_s
        window_end = (math.floor(t / chunk_s) + 1) * chunk_s
        n = min(total - step, max(1, math.ceil((window_end - t) / interval_s)))
        chunk = writer.collect(n)
        yield t, t + (n - 1) * interval_s, writer, chunk
        step += n


@dataclass
class Backfill:
    """Where a scenario went: minute ``m`` of the scenario is ``start_time + 60 * m``."""

    scenario: Scenario
    tsdb_dir: Path
    interval_s: float
    start_time: float
    end_time: float
    samples: int = 0
    files: int = 0
    seconds: float = 0.0
    blocks: list[Path] = field(default_factory=list)

    def time_at(self, minute: float) -> float:
        return self.start_time + 60.0 * minute


def _promtool(promtool: Path | None) -> Path:
    if promtool is not None:
        return promtool
    from pdobs.servers.tools import tool_path

    return tool_path("promtool")


def _run_checked(cmd: Sequence[str | os.PathLike[str]], what: str) -> None:
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )


def backfill(
    scenario: Scenario,
    tsdb_dir: str | Path,
    *,
    interval_s: float = 30.0,
    end_time: float | None = None,
    chunk_s: float = BLOCK_S,
    workdir: str | Path | None = None,
    promtool: Path | None = None,
) -> Backfill:
    """Generate ``scenario`` and load it into the TSDB at ``tsdb_dir`` with
    ``promtool tsdb create-blocks-from openmetrics``.

    ``end_time`` (default: a few minutes ago) is the timestamp of the last sample. Files are
    written under ``workdir`` (default: a temporary directory) and removed once loaded; at most
    two exist at a time.
    """
    tool = _promtool(promtool)
    tsdb = Path(tsdb_dir)
    tsdb.mkdir(parents=True, exist_ok=True)
    end = default_end_time(interval_s) if end_time is None else end_time
    start = start_time_for(scenario, interval_s, end)
    result = Backfill(scenario, tsdb, interval_s, start, end)
    began = time.monotonic()
    before = {p.name for p in tsdb.iterdir()}
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="pdsim-om-")) if own_tmp else Path(workdir)  # type: ignore[arg-type]
    work.mkdir(parents=True, exist_ok=True)
    pending: tuple[subprocess.Popen[str], Path, list[str]] | None = None

    def finish(job: tuple[subprocess.Popen[str], Path, list[str]]) -> None:
        proc, path, cmd = job
        out, err = proc.communicate()
        path.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"promtool backfill failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                f"{out[-3000:]}{err[-3000:]}"
            )

    try:
        for index, (_, _, writer, chunk) in enumerate(
            iter_chunks(scenario, interval_s=interval_s, start_time=start, chunk_s=chunk_s)
        ):
            path = work / f"chunk-{index:04d}.om"
            with path.open("w", buffering=1 << 20) as fh:
                result.samples += writer.write(chunk, fh)
            del chunk
            if pending is not None:
                finish(pending)
            cmd = [str(tool), "tsdb", "create-blocks-from", "openmetrics", str(path), str(tsdb)]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            pending = (proc, path, cmd)
            result.files += 1
        if pending is not None:
            finish(pending)
            pending = None
    finally:
        if pending is not None:
            pending[0].kill()
            pending[0].communicate()
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
    result.blocks = sorted(p for p in tsdb.iterdir() if p.name not in before and p.is_dir())
    result.seconds = time.monotonic() - began
    return result


def backfill_rules(
    prometheus_url: str,
    rule_files: Sequence[str | Path],
    tsdb_dir: str | Path,
    *,
    start: float,
    end: float,
    eval_interval_s: float = 30.0,
    workdir: str | Path | None = None,
    promtool: Path | None = None,
) -> list[Path]:
    """Evaluate the recording rules of ``rule_files`` over ``[start, end]`` against the
    Prometheus at ``prometheus_url`` (``promtool tsdb create-blocks-from rules``) and move the
    resulting blocks into ``tsdb_dir``. The server must be restarted to see them.

    promtool evaluates each rule against the server as it is, so a rule reading another rule's
    output needs that output loaded first: pass one layer of groups per call (see
    :func:`rule_layers`).
    """
    from pdobs.core.promql import format_duration

    tool = _promtool(promtool)
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="pdsim-rules-")) if own_tmp else Path(workdir)  # type: ignore[arg-type]
    out_dir = work / "blocks"
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        _run_checked(
            [tool, "tsdb", "create-blocks-from", "rules",
             f"--start={int(start)}", f"--end={math.ceil(end)}",
             f"--url={prometheus_url}", f"--eval-interval={format_duration(eval_interval_s)}",
             f"--output-dir={out_dir}", *map(str, rule_files)],
            "promtool create-blocks-from rules",
        )  # fmt: skip
        moved = []
        for block in sorted(out_dir.iterdir()):
            if block.is_dir():
                dest = Path(tsdb_dir) / block.name
                shutil.move(str(block), dest)
                moved.append(dest)
        return moved
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)


def rule_layers(rule_files: Sequence[str | Path], workdir: str | Path) -> list[list[Path]]:
    """Split recording rules into layers of whole groups so that no group reads a record
    produced in its own layer; each layer is written as rule files under ``workdir``.

    Alerting rules are dropped (promtool cannot backfill them).
    """
    import re

    import yaml

    groups: list[dict] = []
    for f in rule_files:
        doc = yaml.safe_load(Path(f).read_text()) or {}
        for g in doc.get("groups", []):
            rules = [r for r in g.get("rules", []) if "record" in r]
            if rules:
                groups.append({**g, "rules": rules})
    layers: list[list[dict]] = []
    current: list[dict] = []
    produced: set[str] = set()
    for g in groups:
        exprs = " ".join(str(r["expr"]) for r in g["rules"])
        reads_current = any(
            re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", exprs) for name in produced
        )
        if reads_current and current:
            layers.append(current)
            current, produced = [], set()
        current.append(g)
        produced.update(str(r["record"]) for r in g["rules"])
    if current:
        layers.append(current)
    out: list[list[Path]] = []
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    for i, layer in enumerate(layers):
        path = work / f"rules-layer-{i:02d}.yaml"
        path.write_text(yaml.safe_dump({"groups": layer}, sort_keys=False))
        out.append([path])
    return out
