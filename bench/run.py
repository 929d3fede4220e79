"""The benchmark harness: `make bench` runs `python -m bench.run` and writes docs/benchmarks.md.

    python -m bench.run                                   # the published configuration
    python -m bench.run --pods 2 --hours 0.5 --dashboards pd-coordinator \\
        --scenarios collapsed --build-runs 1 --no-suite --out /tmp/b.md     # a quick look

Parts: detection latency and accuracy of the alerts (promtool, both Prometheus lines), dashboard
query cost recorded vs raw on a real Prometheus 3.5, build and promtool-suite cost. Results are
also written as JSON beside the Markdown (bench/out/ by default, not committed).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bench import build_cost, detection, machine, query_cost, report
from pdobs.core import config, paths

PARTS = ("detection", "query", "build")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _names(text: str) -> list[str]:
    return [x for x in text.split(",") if x]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(allow_abbrev=False, prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=paths.ROOT / "docs" / "benchmarks.md")
    p.add_argument("--json", type=Path, help="default: bench/out/benchmarks.json")
    p.add_argument("--config", type=Path, help="a user config file, as for build.py")
    p.add_argument("--parts", type=_names, default=list(PARTS), help=f"comma list of {', '.join(PARTS)}")
    p.add_argument("--pods", type=_ints, default=[8, 64, 128],
                   help="fleet sizes (model-server pods); the Drill-Down goal is judged at 64")
    p.add_argument("--hours", type=float, default=6.0, help="hours of backfilled data")
    p.add_argument("--ranges", type=_floats, default=[6.0, 1.0], help="dashboard time ranges, hours")
    p.add_argument("--dashboards", type=_names, help="dashboard uids (default: all)")
    p.add_argument("--scenarios", type=_names, help="simulator scenarios (default: all)")
    p.add_argument("--scenario-minutes", type=float, default=30.0,
                   help="length of each detection scenario (faults start at their default minute)")
    p.add_argument("--build-runs", type=int, default=3)
    p.add_argument("--no-suite", action="store_true", help="skip timing the promtool test suite")
    p.add_argument("--no-compaction-wait", action="store_true",
                   help="time queries at once, on the hundreds of blocks the rule backfill leaves (quick runs)")
    p.add_argument("--workdir", type=Path, help="keep the TSDB and files here (default: a temporary one)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        print(f"--parts: unknown {sorted(unknown)}; choose from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    try:
        cfg = config.load(args.config)
    except config.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    began = time.monotonic()
    results = report.Results(machine.describe(), "python -m bench.run " + shlex.join(argv or sys.argv[1:]),
                             0.0, (0.0, 0.0, 0.0))
    if "build" in args.parts:
        _say("build and test cost")
        results.build = build_cost.run(args.build_runs, suite=not args.no_suite)
    if "detection" in args.parts:
        _say("alert detection")
        results.detection = detection.run(cfg, args.scenarios, duration_min=args.scenario_minutes)
    if "query" in args.parts:
        _say("dashboard query cost")
        with tempfile.TemporaryDirectory(prefix="pdobs-bench-") as tmp:
            work = args.workdir or Path(tmp)
            results.query = query_cost.run(cfg, work, pods=args.pods, hours=args.hours,
                                           ranges_h=args.ranges, uids=args.dashboards,
                                           compact=not args.no_compaction_wait)
    results.wall_s = time.monotonic() - began
    results.load_at_end = machine.load_average()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.render(results))
    json_path = args.json or paths.ROOT / "bench" / "out" / "benchmarks.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(_as_json(results), indent=2, default=str) + "\n")
    _say(f"wrote {args.out} and {json_path} in {results.wall_s / 60:.1f} min")
    return 0


def _as_json(r: report.Results) -> dict:
    out: dict = {"machine": r.machine, "command": r.command, "wall_s": r.wall_s, "load_at_end": r.load_at_end}
    if r.build:
        out["build"] = asdict(r.build)
    if r.detection:
        d = r.detection
        out["detection"] = {
            "timing": asdict(d.timing), "lines": d.lines, "depth": d.depth, "fast_depth": d.fast_depth,
            "seconds": d.seconds,
            "agree": d.agree, "scenarios": d.scenarios,
            "alerts": [{"name": a.name, "for_s": a.for_s, "keep_s": a.keep_s, "warmup": a.expect.warmup,
                        "goal_s": a.goal_s, "quiet_below_s": a.quiet_below_s,
                        "honest_floor_s": a.honest_floor_s(d.timing), "design_floor_s": a.design_floor_s(d.timing)}
                       for a in d.alerts],
            "cells": [asdict(c) for c in d.cells if c.firing_s or c.episodes],
        }
    if r.query:
        out["query"] = query_cost.as_dict(r.query)
    return out


def _say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
