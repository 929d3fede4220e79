"""Rendering 2b: the same timestamped samples as the OpenMetrics backfill, in the Prometheus text
exposition format VictoriaMetrics imports (``/api/v1/import/prometheus``).

The only difference that matters: OpenMetrics timestamps are seconds, the text exposition
format's are milliseconds. Lines are produced by the OpenMetrics writer itself, so both engines
receive the very same series, values and times.

    loaded = load(scenario, vm, end_time=t)   # vm: anything with import_prometheus() and flush()
    loaded.time_at(minute)
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from simulator.render_openmetrics import Backfill, default_end_time, iter_chunks, start_time_for
from simulator.scenarios import Scenario


class Importer(Protocol):
    def import_prometheus(self, chunks: Iterable[str | bytes]) -> int: ...

    def flush(self) -> None: ...


def openmetrics_to_text(document: str) -> Iterator[str]:
    """Sample lines of an OpenMetrics document with their timestamps in whole milliseconds;
    comments (``# HELP``, ``# TYPE``, ``# EOF``) are dropped."""
    for line in document.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, ts = line.rpartition(" ")
        yield f"{head} {round(float(ts) * 1000)}\n"


def text_chunks(scenario: Scenario, *, start_time: float, interval_s: float = 30.0,
                max_lines: int = 200_000) -> Iterator[str]:
    """The whole scenario as text-format request bodies of at most ``max_lines`` samples."""
    for _, _, writer, chunk in iter_chunks(scenario, interval_s=interval_s, start_time=start_time):
        buf = io.StringIO()
        writer.write(chunk, buf)
        lines: list[str] = []
        for line in openmetrics_to_text(buf.getvalue()):
            lines.append(line)
            if len(lines) >= max_lines:
                yield "".join(lines)
                lines = []
        if lines:
            yield "".join(lines)


def load(scenario: Scenario, target: Importer, *, interval_s: float = 30.0,
         end_time: float | None = None) -> Backfill:
    """Import ``scenario`` with its last sample at ``end_time`` (default: a few minutes ago) and
    make it searchable. Returns where it sits in time (``tsdb_dir`` is unused here)."""
    end = default_end_time(interval_s) if end_time is None else end_time
    start = start_time_for(scenario, interval_s, end)
    result = Backfill(scenario, Path(), interval_s, start, end)
    for body in text_chunks(scenario, start_time=start, interval_s=interval_s):
        target.import_prometheus([body])
        result.samples += body.count("\n")
        result.files += 1
    target.flush()
    return result
